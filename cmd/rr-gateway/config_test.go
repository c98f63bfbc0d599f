package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleConfig loads configs/gateway.yaml: it must decode strictly,
// pass the checks, and state every default the code has.
func TestExampleConfig(t *testing.T) {
	c, err := loadConfig("../../configs/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	d := defaultConfig()
	if c.Listen != d.Listen || c.AgentListen != d.AgentListen || c.HostKey != d.HostKey || c.Database != d.Database {
		t.Fatalf("the example's values differ from the defaults: %+v vs %+v", c, d)
	}
	if _, err := c.people(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "g.yaml")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	if _, err := loadConfig(write("listen: :1\nlisen: :2\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("misspelt key: %v", err)
	}
	c, err := loadConfig(write("hosts: [{name: 'bad host'}, {name: a}, {name: a}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.check()
	if err == nil || !strings.Contains(err.Error(), "bad name") || !strings.Contains(err.Error(), "declared twice") {
		t.Fatalf("check: %v; want every problem named", err)
	}
	c, _ = loadConfig(write("people: [{name: a, keys: ['ssh-ed25519 nonsense'], hosts: ['x y']}]\n"))
	if _, err := c.people(); err == nil || !strings.Contains(err.Error(), "bad key") || !strings.Contains(err.Error(), "bad host") {
		t.Fatalf("people: %v", err)
	}
}

func TestKeygenAndFingerprint(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	key := filepath.Join(dir, "id")
	if code := run([]string{"keygen", key}, &out, &errb); code != 0 {
		t.Fatalf("keygen: %d %s", code, errb.String())
	}
	pub, _ := os.ReadFile(key + ".pub")
	if !strings.HasPrefix(out.String(), "ssh-ed25519 ") || out.String() != string(pub) {
		t.Fatalf("keygen printed %q, wrote %q", out.String(), pub)
	}
	out.Reset()
	if code := run([]string{"fingerprint", "-host-key", key}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "SHA256:") {
		t.Fatalf("fingerprint: %d %q %s", code, out.String(), errb.String())
	}
	if code := run([]string{"-no-such-flag"}, &out, &errb); code != 2 {
		t.Fatalf("bad flag: exit %d", code)
	}
}

func TestEnroll(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	db := filepath.Join(dir, "rr.db")
	if code := run([]string{"enroll", "-database", db, "web-01"}, &out, &errb); code != 0 {
		t.Fatalf("enroll: %d %s", code, errb.String())
	}
	if tok := strings.TrimSpace(out.String()); len(tok) < 40 {
		t.Fatalf("token %q", tok)
	}
	if code := run([]string{"enroll", "-database", db, "bad name"}, &out, &errb); code != 2 {
		t.Fatalf("bad host name: exit %d", code)
	}
}
