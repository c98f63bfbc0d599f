package gateway_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/store"
)

// console runs input through one rr-admin channel on c and returns what
// it printed on stdout and stderr.
func console(t *testing.T, c *ssh.Client, input string) (string, string) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	errp, _ := s.StderrPipe()
	if err := s.RequestSubsystem(gateway.SubsystemAdmin); err != nil {
		t.Fatal(err)
	}
	io.WriteString(in, input)
	in.Close()
	errs := make(chan string)
	go func() { b, _ := io.ReadAll(errp); errs <- string(b) }()
	b, _ := io.ReadAll(out)
	return string(b), <-errs
}

// TestChangesReachOpenConnections: an admin demoted on a connection
// opened before runs no more admin commands there (not even in the
// console already open), and a person taken out of their team opens no
// more host sessions nor downloads.
func TestChangesReachOpenConnections(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	ctx := context.Background()
	boss := gatewaytest.NewKey(t, "boss")
	e.gw.AddPerson("boss", "admin", "boss@example.com", "", boss)
	c := e.dial(t, "rr", boss.Signer)
	if out, errs := console(t, c, "whoami\n"); !strings.Contains(out, "admin") {
		t.Fatalf("before: %q %q", out, errs)
	}
	p, err := e.gw.Store.PersonByName(ctx, "boss")
	if err != nil {
		t.Fatal(err)
	}
	p.Role = "standard"
	if err := e.gw.Store.UpdatePerson(ctx, p); err != nil {
		t.Fatal(err)
	}
	out, errs := console(t, c, "user add mallory --email m@x.test --role admin\n")
	if _, err := e.gw.Store.PersonByName(ctx, "mallory"); err == nil || !strings.Contains(errs, "log in again") {
		t.Fatalf("a demoted admin's old connection added an admin (%q, %q)", out, errs)
	}

	// alice, out of ops_RR, on a connection opened before.
	a := e.dial(t, "rr", e.alice.Signer)
	if err := e.gw.Store.RemoveTeamMember(ctx, "ops_RR", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := run(t, a, "web-01 -- true", nil); err == nil || !strings.Contains(stderr, "log in again") {
		t.Errorf("a session opened after leaving the team: %v %q", err, stderr)
	}
	s, err := a.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestSubsystem("sftp"); err == nil {
		t.Error("SFTP opened after leaving the team")
	}
	evs, _ := e.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: "recording.download", Actor: "alice"})
	if len(evs) != 1 || evs[0].Outcome != "denied" {
		t.Errorf("the refused SFTP session is not audited: %+v", evs)
	}
}

// TestChangeAuditNamesItsTarget: a change's audit target is the name it
// changed, never a flag (which may carry a secret).
func TestChangeAuditNamesItsTarget(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	boss := gatewaytest.NewKey(t, "boss")
	e.gw.AddPerson("boss", "admin", "boss@example.com", "", boss)
	cs := openConsole(t, e.dial(t, "rr", boss.Signer))
	n := e.gw.Outbox.Count()
	cs.line("user set --password-hash=hunter2-plaintext alice")
	code, err := e.gw.Outbox.CodeAfter(n) // a change asks the code first
	if err != nil {
		t.Fatal(err)
	}
	cs.line(code)
	cs.line("user set --email=new@example.com alice")
	cs.close()
	evs, err := e.gw.Store.AuditEvents(context.Background(), store.AuditFilter{Action: "admin.user.set"})
	if err != nil || len(evs) != 2 {
		t.Fatalf("audit: %+v %v", evs, err)
	}
	for _, ev := range evs {
		if ev.Target != "alice" || strings.Contains(ev.Detail, "hunter2") {
			t.Errorf("audit target %q, detail %q: want alice, and no secret", ev.Target, ev.Detail)
		}
	}
}

// TestRemovalReachesAnOpenSFTPSession: someone taken out of their team
// while an SFTP session of theirs is open lists and fetches nothing more
// on it (the session asks who they are at each request), and the refusal
// is audited.
func TestRemovalReachesAnOpenSFTPSession(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	ctx := context.Background()
	id := recordedSession(t, e)
	cl, err := sftp.NewClient(e.dialB(t, "rr"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if fis, err := cl.ReadDir("recordings"); err != nil || len(fis) != 1 {
		t.Fatalf("before: %d recordings listed, %v", len(fis), err)
	}
	if err := e.gw.Store.RemoveTeamMember(ctx, "ops_RR", "alice"); err != nil {
		t.Fatal(err)
	}
	if fis, err := cl.ReadDir("recordings"); err == nil {
		t.Errorf("after leaving the team alice still lists %d recordings", len(fis))
	}
	if f, err := cl.Open("recordings/" + id + ".gz"); err == nil {
		b, _ := io.ReadAll(f)
		f.Close()
		t.Errorf("after leaving the team alice still fetched %d bytes of %s", len(b), id)
	} else if !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("the open says %v, want permission denied", err)
	}
	evs, _ := e.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: "recording.download", Actor: "alice"})
	var refused bool
	for _, ev := range evs {
		refused = refused || ev.Outcome == "denied" && strings.Contains(ev.Detail, "may no longer download")
	}
	if !refused {
		t.Errorf("the refusal is not audited: %+v", evs)
	}
}
