package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/store"
)

// consoleSession is a piped rr-admin channel: lines are written as the
// test goes; out and err fill as output comes, and close returns all of it.
type consoleSession struct {
	s        *ssh.Session
	in       io.WriteCloser
	out, err *syncBuffer
	done     chan struct{} // one value per output that ended
}

func openConsole(t *testing.T, c *ssh.Client) *consoleSession {
	t.Helper()
	s := newSession(t, c)
	in, _ := s.StdinPipe()
	outp, _ := s.StdoutPipe()
	errp, _ := s.StderrPipe()
	if err := s.RequestSubsystem(gateway.SubsystemAdmin); err != nil {
		t.Fatal(err)
	}
	cs := &consoleSession{s: s, in: in, out: &syncBuffer{}, err: &syncBuffer{}, done: make(chan struct{}, 2)}
	go func() { io.Copy(cs.out, outp); cs.done <- struct{}{} }()
	go func() { io.Copy(cs.err, errp); cs.done <- struct{}{} }()
	return cs
}

func (cs *consoleSession) line(l string) { io.WriteString(cs.in, l+"\n") }

func (cs *consoleSession) close() (string, string) {
	cs.in.Close()
	<-cs.done
	<-cs.done
	return cs.out.String(), cs.err.String()
}

// TestConsoleChangesAskTheCode: with an admin's key alone, a change asks
// the mailed code first (reads do not); one code per connection, then
// changes go through, and every admin is mailed each change; three wrong
// answers refuse the change and end the asking on that connection; a
// login that gave the code (rr+HOST@) is not asked again.
func TestConsoleChangesAskTheCode(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	ctx := context.Background()
	boss := gatewaytest.NewKey(t, "boss")
	e.gw.AddPerson("boss", "admin", "boss@example.com", "", boss)
	e.gw.AddPerson("ann", "admin", "ann@example.com", "")
	ob := e.gw.Outbox

	cs := openConsole(t, e.dial(t, "rr", boss.Signer))
	n := ob.Count()
	cs.line("users")
	cs.line("team add red_RR --rapid-response")
	code, err := ob.CodeAfter(n)
	if err != nil || code == "" {
		t.Fatalf("no code mailed for the first change: %q %v", code, err)
	}
	cs.line(code)
	cs.line("team member add red_RR boss")
	cs.line("team host add red_RR db-01")
	out, errOut := cs.close()
	if strings.Count(errOut, "Code sent to b***@example.com: ") != 1 || strings.Contains(errOut, "rr-admin: ") ||
		!strings.Contains(out, "added team red_RR") || !strings.Contains(out, "team red_RR now reaches db-01") {
		t.Fatalf("out %q\nstderr %q", out, errOut)
	}
	// One code; then a notice per change to each of the two admins.
	if err := ob.WaitCount(n + 1 + 3*2); err != nil {
		t.Fatal(err)
	}
	var notices []string
	for _, m := range ob.Messages()[n+1:] {
		notices = append(notices, m.To+" "+m.Subject)
		if !strings.Contains(m.Body, "who:   boss") || !strings.Contains(m.Body, "from:  127.0.0.1:") {
			t.Errorf("notice without who or where: %q", m.Body)
		}
	}
	for _, want := range []string{"boss@example.com rr: boss ran team add red_RR on", "ann@example.com rr: boss ran team member add red_RR on",
		"ann@example.com rr: boss ran team host add red_RR on"} {
		if !strings.Contains(strings.Join(notices, "\n"), want) {
			t.Errorf("no notice %q in %q", want, notices)
		}
	}

	// Three wrong answers: refused, nothing more asked on the connection.
	cs = openConsole(t, e.dial(t, "rr", boss.Signer))
	n = ob.Count()
	cs.line("host passphrase web-01 $argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo")
	for range 3 {
		cs.line("000000")
	}
	cs.line("team member add ops_RR boss")
	out, errOut = cs.close()
	if !strings.Contains(errOut, "rr-admin: change refused: wrong code") ||
		!strings.Contains(errOut, "rr-admin: change refused: too many wrong codes on this connection; reconnect to try again") || out != "" {
		t.Fatalf("wrong codes: out %q\nstderr %q", out, errOut)
	}
	if ob.Count() != n+1 {
		t.Fatalf("%d mails after the wrong codes, want the one code", ob.Count()-n)
	}
	if teams, _ := e.gw.Store.TeamsOf(ctx, "boss"); len(teams) != 1 {
		t.Fatalf("a refused change went through: boss in %+v", teams)
	}
	evs, _ := e.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: "admin.host.passphrase"})
	if len(evs) != 1 || evs[0].Outcome != "denied" || evs[0].Detail != "second factor: wrong code" {
		t.Fatalf("audit of the refused change: %+v", evs)
	}

	// On a connection whose session gave the code on its terminal, the
	// console's changes ask nothing more (red_RR reaches web-01 now).
	if err := e.gw.Store.AddTeamHost(ctx, "red_RR", "web-01"); err != nil {
		t.Fatal(err)
	}
	c := e.dial(t, "rr", boss.Signer)
	s := newSession(t, c)
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	stdin, _ := s.StdinPipe()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	s.Stdout, s.Stderr = stdout, stderr
	n = ob.Count()
	if err := s.Start("web-01 -- echo the-$((6*7))"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, stderr, "Passphrase for web-01: ")
	io.WriteString(stdin, "pp-web-01\r")
	if code, err = ob.CodeAfter(n); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, code+"\r")
	waitFor(t, stdout, "the-42")
	s.Wait()
	n = ob.Count()
	cs = openConsole(t, c)
	cs.line("team rapid-response red_RR off")
	out, errOut = cs.close()
	if !strings.Contains(out, "rapid response off") || strings.Contains(errOut, "Code") {
		t.Fatalf("after a session gave the code: out %q stderr %q", out, errOut)
	}
	if err := ob.WaitCount(n + 2); err != nil { // the notices, no code
		t.Fatal(err)
	}
	for _, m := range ob.Messages()[n:] {
		if !strings.HasPrefix(m.Subject, "rr: boss ran team rapid-response") {
			t.Errorf("mail %q; want only the notices", m.Subject)
		}
	}
	// Notices go out one after the other, each audited before the next:
	// those of the first three changes are in the audit trail by now.
	evs, _ = e.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: "admin.notify"})
	if len(evs) < 3 || evs[0].Outcome != "allowed" || evs[0].Detail != "admin.team.add: mailed 2 admins" || evs[0].Actor != "boss" {
		t.Fatalf("notices audited: %+v", evs)
	}
}

// agentHost adds host, which alice's team reaches, with an agent running
// under a fresh key, and returns that key.
func (e *env) agentHost(t *testing.T, host string) gatewaytest.Key {
	t.Helper()
	k := e.gw.AddHost(host)
	e.gw.SetPassphrase(host, "pp-"+host)
	if err := e.gw.Store.AddTeamHost(context.Background(), "ops_RR", host); err != nil {
		t.Fatal(err)
	}
	gatewaytest.StartAgent(t, e.gw, host, k, nil)
	e.gw.WaitOnline(host)
	return k
}

// runOn runs cmd on host as alice, logged in as rr+HOST.
func (e *env) runOn(t *testing.T, host, cmd string) (string, string, error) {
	t.Helper()
	c, err := ssh.Dial("tcp", e.gw.PeopleAddr, &ssh.ClientConfig{User: "rr+" + host,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(e.alice.Signer),
			gatewaytest.Answers(t, e.gw.Outbox, map[string]string{"Passphrase for " + host: "pp-" + host})},
		HostKeyCallback: ssh.FixedHostKey(e.gw.HostKey.PublicKey()), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return run(t, c, cmd, nil)
}

// agentLogin reports whether key logs in as host's agent.
func (e *env) agentLogin(host string, key ssh.Signer) error {
	c, err := ssh.Dial("tcp", e.gw.AgentAddr, &ssh.ClientConfig{User: host, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(e.gw.HostKey.PublicKey()), Timeout: 10 * time.Second})
	if err == nil {
		c.Close()
	}
	return err
}

// TestReenrollReplacesTheAgent: a host whose agent is enrolled takes no
// token; host reenroll drops its agent, whose key no longer logs in, and
// the token it prints enrolls the next agent, which gets the sessions.
func TestReenrollReplacesTheAgent(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	ctx := context.Background()
	old := e.agentHost(t, "web-03")
	boss := gatewaytest.NewKey(t, "boss")
	e.gw.AddPerson("boss", "admin", "boss@example.com", "", boss)

	cs := openConsole(t, e.dial(t, "rr", boss.Signer))
	n := e.gw.Outbox.Count()
	cs.line("host token web-03")
	code, err := e.gw.Outbox.CodeAfter(n)
	if err != nil {
		t.Fatal(err)
	}
	cs.line(code)
	cs.line("host reenroll web-03 --json")
	out, errOut := cs.close()
	if !strings.Contains(errOut, "rr-admin: host web-03 has an enrolled agent; to replace it: host reenroll web-03") {
		t.Fatalf("token for an enrolled host: %q", errOut)
	}
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" {
		t.Fatalf("reenroll printed %q (%v); stderr %q", out, err, errOut)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := e.gw.Srv.WaitHost(wctx, "web-03", false); err != nil {
		t.Fatal(err)
	}
	if err := e.agentLogin("web-03", old.Signer); err == nil {
		t.Fatal("the old agent key still logs in after host reenroll")
	}
	if _, stderr, err := e.runOn(t, "web-03", "true"); err == nil || !strings.Contains(stderr, "offline") {
		t.Fatalf("a session with the old agent dropped: %v %q", err, stderr)
	}

	next := gatewaytest.NewKey(t, "next")
	gatewaytest.StartAgent(t, e.gw, "web-03", next, func(c *gatewaytest.AgentConfig) { c.EnrollToken = tok.Token })
	e.gw.WaitOnline("web-03")
	if stdout, stderr, err := e.runOn(t, "web-03", "echo the-$((6*7))"); err != nil || stdout != "the-42\n" {
		t.Fatalf("session through the new agent: %q %q %v", stdout, stderr, err)
	}
	h, _ := e.gw.Store.Host(ctx, "web-03")
	if want := string(ssh.MarshalAuthorizedKey(next.Signer.PublicKey())); strings.TrimSpace(h.AgentKey) != strings.TrimSpace(want) {
		t.Fatalf("bound key %q, want the new agent's", h.AgentKey)
	}
	evs, _ := e.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: "admin.host.reenroll"})
	if len(evs) != 1 || evs[0].Outcome != "allowed" || !strings.Contains(evs[0].Detail, "1 agent connections dropped") ||
		!strings.Contains(evs[0].Detail, ssh.FingerprintSHA256(old.Signer.PublicKey())) {
		t.Fatalf("audit of the reenroll: %+v", evs)
	}
}

// TestSecondKeyRefusedWhileLive: while a host's agent is connected, a
// connection of an agent with another key is refused (audited) and the
// sessions keep going to the first.
func TestSecondKeyRefusedWhileLive(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	other := gatewaytest.NewKey(t, "other")
	fp := ssh.FingerprintSHA256(other.Signer.PublicKey())
	if e.gw.Srv.AdmitTunnel(nil, "web-01", fp) {
		t.Fatal("a second agent key was admitted while the first is connected")
	}
	if stdout, _, err := run(t, e.dialB(t, "rr+web-01"), "echo still-first", nil); err != nil || stdout != "still-first\n" {
		t.Fatalf("session after the refusal: %q %v", stdout, err)
	}
	evs, _ := e.gw.Store.AuditEvents(context.Background(), store.AuditFilter{Action: "agent.connect"})
	var refused bool
	for _, ev := range evs {
		refused = refused || ev.Outcome == "denied" && strings.Contains(ev.Detail, "key "+fp+" while an agent with key")
	}
	if !refused {
		t.Fatalf("the refusal is not audited: %+v", evs)
	}
}

// TestReenrolledOnTheCommandLine: re-enrolled in the store while its
// agent is connected (rr-gateway enroll -reenroll, which cannot reach the
// running gateway), the old tunnel gets no session, and the new agent,
// whose key is bound now, replaces one still connected.
func TestReenrolledOnTheCommandLine(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	ctx := context.Background()
	e.agentHost(t, "web-03")
	reenroll := func(host string) string {
		token, hash := store.NewEnrollToken()
		if _, err := e.gw.Store.ReenrollHost(ctx, host, hash, time.Now().Add(time.Hour), time.Now()); err != nil {
			t.Fatal(err)
		}
		return token
	}
	// web-01: the next session finds the stale tunnel and drops it.
	reenroll("web-01")
	if _, stderr, err := run(t, e.dialB(t, "rr+web-01"), "true", nil); err == nil || !strings.Contains(stderr, "offline") {
		t.Fatalf("a session through a tunnel whose key is unbound: %v %q", err, stderr)
	}
	// web-03: the new agent comes while the old is connected.
	token := reenroll("web-03")
	next := gatewaytest.NewKey(t, "next")
	gatewaytest.StartAgent(t, e.gw, "web-03", next, func(c *gatewaytest.AgentConfig) { c.EnrollToken = token })
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := e.gw.Srv.WaitTunnelKey(wctx, "web-03", ssh.FingerprintSHA256(next.Signer.PublicKey())); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, err := e.runOn(t, "web-03", "echo the-$((6*7))"); err != nil || stdout != "the-42\n" {
		t.Fatalf("session through the new agent: %q %q %v", stdout, stderr, err)
	}
	for action, detail := range map[string]string{"agent.disconnect": "is no longer bound", "agent.replace": "no longer bound"} {
		evs, _ := e.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: action})
		var found bool
		for _, ev := range evs {
			found = found || strings.Contains(ev.Detail, detail)
		}
		if !found {
			t.Errorf("no %s audited with %q: %+v", action, detail, evs)
		}
	}
}

// stuckMailer passes codes through to an Outbox and holds the notices of
// changes until release is closed: a mail server that hangs.
type stuckMailer struct {
	*gatewaytest.Outbox
	release chan struct{}
}

func (m *stuckMailer) Send(ctx context.Context, msg auth.Message) error {
	if strings.Contains(msg.Subject, " ran ") {
		select {
		case <-m.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return m.Outbox.Send(ctx, msg)
}

// TestNoticesNeverHoldTheConsole: with the mail server hanging, changes
// go through at once; past the bounded queue, a change's notice is
// dropped, and that is logged and audited; once the server answers, the
// queued ones go out.
func TestNoticesNeverHoldTheConsole(t *testing.T) {
	mailer := &stuckMailer{Outbox: gatewaytest.NewOutbox(), release: make(chan struct{})}
	e := newEnvWith(t, gatewaytest.Config{Auth: auth.Config{Mailer: mailer}})
	ctx := context.Background()
	boss := gatewaytest.NewKey(t, "boss")
	e.gw.AddPerson("boss", "admin", "boss@example.com", "", boss)

	const changes = 70
	cs := openConsole(t, e.dial(t, "rr", boss.Signer))
	n := mailer.Count()
	cs.line("team add t0")
	code, err := mailer.CodeAfter(n)
	if err != nil {
		t.Fatal(err)
	}
	cs.line(code)
	for i := 1; i < changes; i++ {
		cs.line(fmt.Sprintf("team add t%d", i))
	}
	out, errOut := cs.close()
	if strings.Count(out, "added team t") != changes || strings.Contains(errOut, "rr-admin: ") {
		t.Fatalf("%d of %d changes went through; stderr %q", strings.Count(out, "added team t"), changes, errOut)
	}
	evs, _ := e.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: "admin.notify"})
	lost := 0
	for _, ev := range evs {
		if ev.Outcome == "failed" && strings.Contains(ev.Detail, "not mailed: 64 notices wait already") {
			lost++
		}
	}
	if lost < changes-1-64 || len(evs) != lost {
		t.Fatalf("%d notices audited as lost, %d rows: %+v", lost, len(evs), evs)
	}
	close(mailer.release)
	if err := mailer.WaitCount(n + 1 + changes - lost); err != nil {
		t.Fatal(err)
	}
}
