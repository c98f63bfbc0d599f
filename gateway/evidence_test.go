package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/evidence"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/store"
)

// chanNotary hands each manifest to the test.
type chanNotary chan evidence.Manifest

func (c chanNotary) Manifest(_ context.Context, m evidence.Manifest) error {
	c <- m
	return nil
}

// TestKilledSessionIsSigned: a killed session's end is audited with who
// killed it, and its recording's manifest says killed and names that
// event, with the size and SHA-256 its row keeps.
func TestKilledSessionIsSigned(t *testing.T) {
	signed := make(chanNotary, 1)
	e := newEnv(t, gateway.Config{Notary: signed})
	id, victimErr := startVictim(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := e.gw.Srv.Kill(ctx, id, "bob", "contained"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, victimErr, "Session closed by bob")
	var m evidence.Manifest
	select {
	case m = <-signed:
	case <-ctx.Done():
		t.Fatal("no manifest signed")
	}
	row, err := e.gw.Store.Session(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	closed, err := e.gw.Store.AuditEvents(context.Background(), store.AuditFilter{SessionID: id, Action: "session.close"})
	if err != nil || len(closed) != 1 || !strings.Contains(closed[0].Detail, "killed by bob") {
		t.Fatalf("closing event %+v, %v", closed, err)
	}
	if m.Session != id || m.State != "killed" || m.Size != row.RecordingSize || m.SHA256 != row.RecordingSHA256 ||
		m.ClosedBySeq != closed[0].Seq || m.ClosedByHash != closed[0].Hash || m.Person != row.Person || m.Host != "web-01" {
		t.Fatalf("manifest %+v\nrow %+v\nclosed by %+v", m, row, closed[0])
	}
}
