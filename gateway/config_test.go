package gateway_test

import (
	"strings"
	"testing"

	"github.com/rr-gateway/rr/gateway"
)

// TestNoRecordersRefused: a gateway without recorders does not start
// (sessions are never run unrecorded); NopRecorders must be named.
func TestNoRecordersRefused(t *testing.T) {
	_, err := gateway.New(gateway.Config{})
	if err == nil || !strings.Contains(err.Error(), "no recorders") {
		t.Fatalf("New without recorders: %v; want it refused", err)
	}
	_, err = gateway.New(gateway.Config{Recorders: gateway.NopRecorders{}})
	if err == nil || strings.Contains(err.Error(), "recorders") {
		t.Fatalf("New with NopRecorders named: %v; want only the other fields missing", err)
	}
}
