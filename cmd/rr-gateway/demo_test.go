package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rr-gateway/rr/auth/mail"
)

// TestMailWithoutSMTPRefused: a gateway with no mail section does not
// start (it used to print every code in its log), and says in one line
// what to do; the mailers that print codes need demo: true.
func TestMailWithoutSMTPRefused(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "g.yaml")
	// Everything else would start: a listen address that cannot be
	// bound is the only other problem, and comes later.
	os.WriteFile(p, []byte("listen: 'no such address'\nhost_key: "+dir+"/hk\ndatabase: "+dir+"/rr.db\nrecordings: {spool: "+dir+"/spool}\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"-config", p}, &out, &errb); code != 1 {
		t.Fatalf("exit %d; stderr %s", code, errb.String())
	}
	msg := errb.String()
	if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "mail.smtp.host") || !strings.Contains(msg, "demo: true") {
		t.Fatalf("want one line naming mail.smtp.host and demo: true; got %q", msg)
	}

	for _, tc := range []struct {
		yaml string
		ok   bool
	}{
		{"mail: {mode: console}\n", false},
		{"mail: {mode: file, outbox: " + dir + "/out}\n", false},
		{"mail: {mode: smtp}\n", false},
		{"demo: true\nmail: {mode: console}\n", true},
		{"demo: true\nmail: {mode: file, outbox: " + dir + "/out}\n", true},
		{"mail: {mode: smtp, smtp: {host: mail.example.com}}\n", true},
	} {
		os.WriteFile(p, []byte(tc.yaml), 0o600)
		c, err := loadConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := c.mailer(nil)
		if (err == nil) != tc.ok {
			t.Errorf("%q: mailer %T, err %v; want ok=%v", tc.yaml, m, err, tc.ok)
		}
		if _, printer := m.(*mail.FileMailer); printer && !c.Demo {
			t.Errorf("%q: a mailer that prints codes without demo: true", tc.yaml)
		}
	}
}

// TestDemoWarnsLoudly: demo: true is said at start, at warning level.
func TestDemoWarnsLoudly(t *testing.T) {
	for _, demo := range []bool{false, true} {
		var b bytes.Buffer
		c := defaultConfig()
		c.Demo, c.Mail.Mode = demo, "console"
		c.warnDemo(slog.New(slog.NewTextHandler(&b, nil)))
		if got := strings.Contains(b.String(), "level=WARN") && strings.Contains(b.String(), "DEMO MODE"); got != demo {
			t.Errorf("demo %v: logged %q", demo, b.String())
		}
	}
}
