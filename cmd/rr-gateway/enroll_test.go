package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// TestEnrollRefusesAnEnrolledHost: rr-gateway enroll makes no token for a
// host whose agent is enrolled; -reenroll unbinds its key, spends the old
// tokens and prints one that enrolls the next agent; both are audited.
func TestEnrollRefusesAnEnrolledHost(t *testing.T) {
	db := filepath.Join(t.TempDir(), "rr.db")
	enroll := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := run(append([]string{"enroll", "-database", db}, args...), &out, &errb)
		return strings.TrimSpace(out.String()), errb.String(), code
	}
	tok, _, code := enroll("web-01")
	spare, _, _ := enroll("web-01")
	if code != 0 {
		t.Fatalf("enroll: %d", code)
	}
	st, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.UseEnrollToken(ctx, "web-01", store.EnrollTokenHash([]byte(tok)), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0n7nUe1s0aW6lQZ3VIVnGxP3vX8sO7xKYQy6dmsUr good", time.Now()); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := enroll("web-01"); code != 1 || out != "" ||
		!strings.Contains(errOut, "host web-01 has an enrolled agent; to replace it: rr-gateway enroll -reenroll web-01") {
		t.Fatalf("token for an enrolled host: %d %q %q", code, out, errOut)
	}
	again, errOut, code := enroll("-reenroll", "web-01")
	if code != 0 || len(again) < 40 {
		t.Fatalf("reenroll: %d %q", code, errOut)
	}
	if h, _ := st.Host(ctx, "web-01"); h.AgentKey != "" {
		t.Fatalf("key still bound after -reenroll: %q", h.AgentKey)
	}
	if err := st.UseEnrollToken(ctx, "web-01", store.EnrollTokenHash([]byte(spare)), "ssh-ed25519 ROGUE", time.Now()); err == nil {
		t.Fatal("a token made before the reenroll still enrolls")
	}
	if err := st.UseEnrollToken(ctx, "web-01", store.EnrollTokenHash([]byte(again)), "ssh-ed25519 NEXT", time.Now()); err != nil {
		t.Fatalf("the reenroll's token: %v", err)
	}
	evs, _ := st.AuditEvents(ctx, store.AuditFilter{Action: "agent.reenroll"})
	if len(evs) != 1 || !strings.HasPrefix(evs[0].Detail, "unbound key SHA256:") {
		t.Fatalf("audit of the reenroll: %+v", evs)
	}
	if _, _, code := enroll("-reenroll", "nowhere"); code != 1 {
		t.Fatalf("reenroll of an unknown host: exit %d", code)
	}
}

// TestTokenRuleOfTheFile: a declared host with its agent key in the file
// takes no token; one without takes them only with enroll: token, whose
// reason is audited; a host the file does not declare takes them.
func TestTokenRuleOfTheFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	yaml := "database: " + filepath.Join(dir, "rr.db") + `
hosts:
  - name: keyed
    agent_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0n7nUe1s0aW6lQZ3VIVnGxP3vX8sO7xKYQy6dmsUr
  - name: plain
  - name: fleet
    enroll: token
    enroll_reason: the fleet's image enrolls its agent at first boot
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"keyed": "its agent key is declared in the gateway's configuration file",
		"plain": "without enroll: token",
		"fleet": "",
		"other": "",
	} {
		var out, errb bytes.Buffer
		code := run([]string{"enroll", "-config", cfg, host}, &out, &errb)
		if (want == "") != (code == 0) || !strings.Contains(errb.String(), want) {
			t.Errorf("enroll %s: exit %d, %q; want %q", host, code, errb.String(), want)
		}
	}
	st, err := sqlite.Open(filepath.Join(dir, "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, _ := st.AuditEvents(context.Background(), store.AuditFilter{Action: "agent.token"})
	var reasons []string
	for _, ev := range evs {
		reasons = append(reasons, ev.Target+": "+ev.Detail)
	}
	if len(evs) != 2 || !strings.Contains(strings.Join(reasons, "\n"), "fleet: expires ") ||
		!strings.Contains(strings.Join(reasons, "\n"), "; the configuration file allows it: the fleet's image enrolls its agent at first boot") {
		t.Fatalf("audit %q", reasons)
	}
	for _, bad := range []string{"enroll: token", "enroll: always\n    enroll_reason: x", "enroll_reason: x",
		"enroll: token\n    enroll_reason: x\n    agent_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr0n7nUe1s0aW6lQZ3VIVnGxP3vX8sO7xKYQy6dmsUr"} {
		if err := os.WriteFile(cfg, []byte("hosts:\n  - name: h\n    "+bad+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := loadConfig(cfg)
		if err == nil {
			err = c.check()
		}
		if err == nil || !strings.Contains(err.Error(), "hosts[0] h: enroll") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
