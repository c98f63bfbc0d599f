package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rr-gateway/rr/internal/config"
)

// TestExampleConfig: configs/agent.yaml decodes strictly into the agent's
// file format.
func TestExampleConfig(t *testing.T) {
	var c fileConfig
	if err := config.Load("../../configs/agent.yaml", &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Gateways) == 0 || c.Host == "" || c.GatewayHostKey == "" || c.Key == "" {
		t.Fatalf("example lacks a required field: %+v", c)
	}
}

func TestUsage(t *testing.T) {
	var errb bytes.Buffer
	if code := run(nil, &errb); code != 2 || !strings.Contains(errb.String(), "Usage:") {
		t.Fatalf("no config: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"-h"}, &errb); code != 0 || !strings.Contains(errb.String(), "-config") {
		t.Fatalf("-h: exit %d, %q", code, errb.String())
	}
}

// TestSampleConfig: testdata/configs/agent-enroll.yaml, a new host's
// agent with several gateways and an enrollment token file, decodes
// strictly.
func TestSampleConfig(t *testing.T) {
	var c fileConfig
	if err := config.Load("../../testdata/configs/agent-enroll.yaml", &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Gateways) != 2 || c.Host != "web-02" || c.EnrollTokenFile == "" {
		t.Fatalf("sample not read as written: %+v", c)
	}
}
