package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/internal/pgtest"
	rrrec "github.com/rr-gateway/rr/recorder"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
	"github.com/rr-gateway/rr/wire"
)

// One throwaway PostgreSQL for the tests of peers on it (cluster_pg_test.go);
// no test may leave a goroutine running.
func TestMain(m *testing.M) {
	pgtest.Main(m, func() error { return goleak.Find() })
}

// env is one gateway with one person (alice, who may reach web-01 and
// web-02) and an agent for web-01.
type env struct {
	gw    *gatewaytest.Gateway
	alice gatewaytest.Key
}

func newEnv(t *testing.T, cfg gateway.Config) *env {
	return newEnvWith(t, gatewaytest.Config{Gateway: cfg})
}

// newEnvB is newEnv for a benchmark, which logs in once per iteration: the
// mail and address limits must not end it at the sixth (BULKTIME=10x).
func newEnvB(b *testing.B, cfg gateway.Config) *env {
	return newEnvWith(b, gatewaytest.Config{Gateway: cfg,
		Auth: auth.Config{Limits: auth.Limits{MailsPerPerson: 1 << 20, SourceAttempts: 1 << 20}}})
}

func newEnvWith(t testing.TB, cfg gatewaytest.Config) *env {
	t.Helper()
	alice := gatewaytest.NewKey(t, "alice")
	gw := gatewaytest.StartGateway(t, cfg)
	gw.AddPerson("alice", "advanced", "alice@example.com", "", alice)
	web01 := gw.AddHost("web-01")
	gw.AddHost("web-02") // declared, no agent: offline
	gw.AddHost("db-01")  // alice's team does not reach it
	for _, h := range []string{"web-01", "web-02", "db-01"} {
		gw.SetPassphrase(h, "pp-"+h)
	}
	gw.AddTeam("ops_RR", true, []string{"alice"}, "web-01", "web-02")
	gatewaytest.StartAgent(t, gw, "web-01", web01, nil)
	gw.WaitOnline("web-01")
	return &env{gw: gw, alice: alice}
}

// dial logs in as user with key, answering the passphrase of web-01 and
// the mailed code when asked.
func (e *env) dialB(t testing.TB, user string) *ssh.Client { return e.dial(t, user, e.alice.Signer) }

func (e *env) dial(t testing.TB, user string, key ssh.Signer) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", e.gw.PeopleAddr, &ssh.ClientConfig{
		User: user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(key),
			gatewaytest.Answers(t, e.gw.Outbox, map[string]string{"Passphrase for web-01": "pp-web-01"})},
		HostKeyCallback: ssh.FixedHostKey(e.gw.HostKey.PublicKey()),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatalf("dial as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newSession opens a session on c, closed when the test ends.
func newSession(t testing.TB, c *ssh.Client) *ssh.Session {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// run runs cmd as an exec request and returns stdout, stderr and the exit
// error.
func run(t *testing.T, c *ssh.Client, cmd string, stdin io.Reader) (string, string, error) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr, s.Stdin = &out, &errb, stdin
	err = s.Run(cmd)
	return out.String(), errb.String(), err
}

func exitStatus(err error) int {
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus()
	}
	if err == nil {
		return 0
	}
	return -1
}

func TestExecStreamsAndStatus(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c := e.dial(t, "rr+web-01", e.alice.Signer)
	out, errOut, err := run(t, c, "echo out; echo err >&2; exit 3", nil)
	if out != "out\n" || errOut != "err\n" || exitStatus(err) != 3 {
		t.Fatalf("got stdout %q stderr %q err %v; want out, err, status 3", out, errOut, err)
	}
	// The passphrase keyed that session and was dropped: a second session
	// on the connection would need it again, and has no terminal to ask.
	out, errOut, err = run(t, c, "echo $RR_SESSION_ID | wc -c", nil)
	if out != "" || !strings.Contains(errOut, "was used by this connection's first session") || exitStatus(err) != 1 {
		t.Fatalf("second session: %q %q %v", out, errOut, err)
	}
	c2 := e.dial(t, "rr+web-01", e.alice.Signer)
	out, _, err = run(t, c2, "echo $RR_SESSION_ID | wc -c", nil)
	if err != nil || strings.TrimSpace(out) != "17" {
		t.Fatalf("got %q, %v; want a 16-character session id", out, err)
	}
}

func TestBinaryStdinRoundTrip(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c := e.dial(t, "alice+web-01", e.alice.Signer)
	data := make([]byte, 8<<20)
	rand.Read(data)
	out, _, err := run(t, c, "cat", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256([]byte(out)) != sha256.Sum256(data) {
		t.Fatalf("cat returned %d bytes that differ from the %d sent", len(out), len(data))
	}
	sessions, err := e.gw.Store.Sessions(context.Background(), store.SessionFilter{})
	if err != nil || len(sessions) != 1 {
		t.Fatalf("sessions: %v %v", sessions, err)
	}
	s := sessions[0]
	if s.State != store.StateClosed || s.BytesIn != int64(len(data)) || s.BytesOut != int64(len(data)) ||
		s.ExitStatus == nil || *s.ExitStatus != 0 || s.Person != "alice" || s.Team != "ops_RR" || s.Host != "web-01" || s.Command != "cat" {
		t.Fatalf("session row %+v", s)
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c := e.dial(t, "rr", e.alice.Signer)
	tests := []struct {
		cmd, want string
	}{
		{"nosuch -- true", `rr: no host "nosuch" that you may reach`},
		{"db-01 -- true", `rr: no host "db-01" that you may reach`}, // exists, not allowed: same words
		{"web-02 -- true", `rr: host "web-02" is offline`},
		{"-oProxyCommand=x", "rr: the command must start with a host name"},
		{"web-01 -- true", "rr: the passphrase for web-01 cannot be asked without a terminal"},
	}
	for _, tt := range tests {
		out, errOut, err := run(t, c, tt.cmd, nil)
		if out != "" || !strings.HasPrefix(errOut, tt.want) || strings.Count(errOut, "\n") != 1 || exitStatus(err) < 1 {
			t.Errorf("%q: stdout %q stderr %q err %v; want one line starting %q and a non-zero exit", tt.cmd, out, errOut, err, tt.want)
		}
	}
}

func TestForwardingRefused(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c := e.dial(t, "rr", e.alice.Signer)
	if _, err := c.Dial("tcp", e.gw.AgentAddr); err == nil {
		t.Fatal("direct-tcpip was allowed")
	}
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Fatal("tcpip-forward was allowed")
	}
	s := newSession(t, c)
	for _, req := range []string{wire.ReqX11, wire.ReqAuthAgent} {
		if ok, err := s.SendRequest(req, true, nil); ok || err != nil {
			t.Errorf("%s: ok=%v err=%v; want refused", req, ok, err)
		}
	}
	events, err := e.gw.Store.AuditEvents(context.Background(), store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, ev := range events {
		if ev.Action == "forward" && ev.Outcome == "denied" {
			denied++
		}
	}
	if denied != 4 {
		t.Fatalf("audit has %d refused forwardings, want 4: %+v", denied, events)
	}
}

func TestAuthRefusals(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	stranger := gatewaytest.NewKey(t, "stranger")
	dial := func(user string, auth ...ssh.AuthMethod) error {
		c, err := ssh.Dial("tcp", e.gw.PeopleAddr, &ssh.ClientConfig{User: user, Auth: auth,
			HostKeyCallback: ssh.FixedHostKey(e.gw.HostKey.PublicKey()), Timeout: 10 * time.Second})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial("rr"); err == nil {
		t.Error("none auth accepted")
	}
	if err := dial("rr", ssh.PublicKeys(stranger.Signer)); err == nil {
		t.Error("unknown key accepted")
	}
	if err := dial("bob", ssh.PublicKeys(e.alice.Signer)); err == nil {
		t.Error("alice's key accepted for the login name bob")
	}
	if err := dial("rr", ssh.Password("x"), ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) { return nil, nil })); err == nil {
		t.Error("password accepted")
	}
	if err := dial("alice", gatewaytest.Answers(t, nil, map[string]string{"Password": ""})); err == nil {
		t.Error("empty password accepted for a key-only person")
	}
	if err := dial("alice", ssh.PublicKeys(e.alice.Signer), gatewaytest.Answers(t, nil, nil)); err != nil {
		t.Errorf("alice under her own name: %v", err)
	}
}

func TestMenuWithoutTerminalListsHosts(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c := e.dial(t, "rr", e.alice.Signer)
	s := newSession(t, c)
	var out bytes.Buffer
	s.Stdout = &out
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("wait: %v", err)
	}
	got := out.String()
	if !strings.Contains(got, "web-01") || !strings.Contains(got, "online") ||
		!strings.Contains(got, "web-02") || !strings.Contains(got, "offline") || strings.Contains(got, "db-01") {
		t.Fatalf("host list:\n%s", got)
	}
}

func TestMenuWithTerminalPicksHost(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	s, stdin, out := ptyShell(t, e.dial(t, "rr", e.alice.Signer), "xterm", 30, 100)
	waitFor(t, out, "Host (number or name")
	io.WriteString(stdin, "nope\r")
	waitFor(t, out, `"nope" is not in the list`)
	io.WriteString(stdin, "web-02\r")
	waitFor(t, out, "web-02 is offline")
	n := e.gw.Outbox.Count()
	io.WriteString(stdin, "1\r")
	waitFor(t, out, "Team: ops_RR\r\nPassphrase for web-01: ")
	io.WriteString(stdin, "pp-web-01\r")
	waitFor(t, out, "Code sent to a***@example.com: ")
	code, err := e.gw.Outbox.CodeAfter(n)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, code+"\r")
	io.WriteString(stdin, "stty size; exit 7\r")
	waitFor(t, out, "30 100")
	if strings.Contains(out.String(), "pp-web-01") || strings.Contains(out.String(), code) {
		t.Fatalf("a secret was echoed:\n%s", out.String())
	}
	if err := s.Wait(); exitStatus(err) != 7 {
		t.Fatalf("exit: %v; output:\n%s", err, out.String())
	}
}

func TestPTYShellWindowChange(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	s, stdin, out := ptyShell(t, e.dial(t, "rr+web-01", e.alice.Signer), "xterm-256color", 24, 80)
	io.WriteString(stdin, "echo T=$TERM; stty size\r")
	waitFor(t, out, "24 80")
	waitFor(t, out, "T=xterm-256color")
	if err := s.WindowChange(50, 132); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "stty size\r")
	waitFor(t, out, "50 132")
	io.WriteString(stdin, "exit\r")
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
}

// startCommand starts cmd (which prints "started" first) and returns once
// it has.
func startCommand(t *testing.T, c *ssh.Client, cmd string) (*ssh.Session, *syncBuffer, *syncBuffer) {
	t.Helper()
	s := newSession(t, c)
	out, errOut := &syncBuffer{}, &syncBuffer{}
	s.Stdout, s.Stderr = out, errOut
	if err := s.Start(cmd); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "started")
	return s, out, errOut
}

// ptyShell starts a shell on a terminal of the given size; the session
// closes when the test ends.
func ptyShell(t *testing.T, c *ssh.Client, term string, rows, cols int) (*ssh.Session, io.Writer, *syncBuffer) {
	t.Helper()
	return ptyStart(t, c, term, rows, cols, "")
}

// ptyStart is ptyShell running cmd ("": a shell) on the terminal.
func ptyStart(t *testing.T, c *ssh.Client, term string, rows, cols int, cmd string) (*ssh.Session, io.Writer, *syncBuffer) {
	t.Helper()
	s := newSession(t, c)
	if err := s.RequestPty(term, rows, cols, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	stdin, _ := s.StdinPipe()
	out := &syncBuffer{}
	s.Stdout, s.Stderr = out, out // as a terminal shows both
	start := s.Shell
	if cmd != "" {
		start = func() error { return s.Start(cmd) }
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
	return s, stdin, out
}

// recorder is a SessionRecorder that keeps everything, to check the hook.
type recorder struct {
	mu      sync.Mutex
	in, out bytes.Buffer
	resizes []string
	end     *gateway.SessionEnd
	fail    bool
	failAt  int // with it set, Output fails once it holds that many bytes (a disk filling mid-session)
}

func (r *recorder) Start(context.Context, gateway.SessionInfo) (gateway.SessionRecorder, error) {
	if r.fail {
		return nil, errors.New("disk full")
	}
	return r, nil
}
func (r *recorder) Input(p []byte) error { r.mu.Lock(); defer r.mu.Unlock(); r.in.Write(p); return nil }
func (r *recorder) Output(p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failAt > 0 && r.out.Len()+len(p) > r.failAt {
		return errors.New("disk full")
	}
	r.out.Write(p)
	return nil
}
func (r *recorder) Resize(c, rows uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resizes = append(r.resizes, string(rune('0'+c%10)))
	return nil
}
func (r *recorder) Close(end gateway.SessionEnd) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.end = &end
	return nil
}

func TestRecorderSeesBothDirections(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, gateway.Config{Recorders: rec})
	c := e.dial(t, "rr+web-01", e.alice.Signer)
	out, _, err := run(t, c, "cat; echo bye >&2", strings.NewReader("hello\n"))
	if err != nil || out != "hello\n" {
		t.Fatalf("got %q %v", out, err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// stdout and stderr are two streams: their order relative to each
	// other is not defined, only within each.
	if rec.in.String() != "hello\n" || (rec.out.String() != "hello\nbye\n" && rec.out.String() != "bye\nhello\n") {
		t.Fatalf("recorded in %q out %q", rec.in.String(), rec.out.String())
	}
	if rec.end == nil || rec.end.ExitStatus == nil || *rec.end.ExitStatus != 0 || rec.end.Reason != "exit 0" {
		t.Fatalf("recorder end %+v", rec.end)
	}
}

func TestRecorderFailureRefusesSession(t *testing.T) {
	e := newEnv(t, gateway.Config{Recorders: &recorder{fail: true}})
	c := e.dial(t, "rr+web-01", e.alice.Signer)
	out, errOut, err := run(t, c, "echo must-not-run", nil)
	if out != "" || !strings.Contains(errOut, "cannot be recorded") || exitStatus(err) != 1 {
		t.Fatalf("stdout %q stderr %q err %v", out, errOut, err)
	}
}

// TestRecordingFailureEndsSession: a recording that fails mid-session ends
// the session, tells the person why, and nothing it did not record
// reaches them.
func TestRecordingFailureEndsSession(t *testing.T) {
	rec := &recorder{failAt: 100 << 10}
	e := newEnv(t, gateway.Config{Recorders: rec})
	c := e.dial(t, "rr+web-01", e.alice.Signer)
	out, errOut, err := run(t, c, "seq 1 1000000", nil)
	rec.mu.Lock()
	recorded := rec.out.String()
	rec.mu.Unlock()
	if err == nil || !strings.Contains(errOut, "recording failed") {
		t.Fatalf("session after the recording failed: %v, stderr %q", err, errOut)
	}
	if len(out) > len(recorded) || !strings.HasPrefix(recorded, out) {
		t.Fatalf("the person got %d bytes, %d were recorded: unrecorded output went out", len(out), len(recorded))
	}
	if row := onlySession(t, e, true); row.EndReason != "recording failed; session closed" {
		t.Errorf("end reason %q", row.EndReason)
	}
}

// aliceAndHost is a gateway where alice may reach host (passphrase
// "pp-HOST"), which has no agent yet: its key is returned.
func aliceAndHost(t *testing.T, host string) (*gatewaytest.Gateway, gatewaytest.Key, gatewaytest.Key) {
	alice := gatewaytest.NewKey(t, "alice")
	gw := gatewaytest.StartGateway(t, gatewaytest.Config{})
	gw.AddPerson("alice", "advanced", "alice@example.com", "", alice)
	key := gw.AddHost(host)
	gw.SetPassphrase(host, "pp-"+host)
	gw.AddTeam("ops_RR", true, []string{"alice"}, "*")
	return gw, alice, key
}

func TestAgentLostEndsSession(t *testing.T) {
	gw, alice, key := aliceAndHost(t, "web-01")
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(agent.Config{Gateways: []string{gw.AgentAddr}, GatewayHostKey: gw.Fingerprint,
		Host: "web-01", Signer: key.Signer, Logger: gatewaytest.Logger(t, "agent")})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	gw.WaitOnline("web-01")

	e := &env{gw: gw, alice: alice}
	s, _, errOut := startCommand(t, e.dial(t, "rr+web-01", alice.Signer), "echo started; sleep 600")
	cancel() // the agent goes away
	<-done
	err = s.Wait()
	if err == nil || !strings.Contains(errOut.String(), "connection to the host was lost") {
		t.Fatalf("wait: %v, stderr %q", err, errOut.String())
	}
	rows, _ := gw.Store.Sessions(context.Background(), store.SessionFilter{})
	if len(rows) != 1 || rows[0].State != store.StateClosed || rows[0].EndReason != "agent lost" {
		t.Fatalf("rows %+v", rows)
	}
}

func TestShutdownTellsAndEndsSessions(t *testing.T) {
	e := newEnv(t, gateway.Config{ShutdownGrace: 300 * time.Millisecond})
	s, _, errOut := startCommand(t, e.dial(t, "rr+web-01", e.alice.Signer), "echo started; sleep 600")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if !strings.Contains(errOut.String(), "the gateway is shutting down") || !strings.Contains(errOut.String(), "the gateway shut down") {
		t.Fatalf("stderr %q", errOut.String())
	}
	rows, _ := e.gw.Store.Sessions(context.Background(), store.SessionFilter{})
	if len(rows) != 1 || rows[0].State != store.StateClosed || rows[0].EndReason != "the gateway shut down; session closed" {
		t.Fatalf("rows %+v", rows)
	}
}

func TestAgentEnrollment(t *testing.T) {
	gw := gatewaytest.StartGateway(t, gatewaytest.Config{})
	ctx := context.Background()
	if err := gw.Store.UpsertHost(ctx, "web-09"); err != nil {
		t.Fatal(err)
	}
	token := "s3cret-token"
	sum := sha256.Sum256([]byte(token))
	if err := gw.Store.CreateEnrollToken(ctx, "web-09", sum[:], time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	dial := func(k gatewaytest.Key, tok string) error {
		auth := []ssh.AuthMethod{ssh.PublicKeys(k.Signer)}
		if tok != "" {
			auth = append(auth, ssh.Password(tok))
		}
		c, err := ssh.Dial("tcp", gw.AgentAddr, &ssh.ClientConfig{User: "web-09", Auth: auth,
			HostKeyCallback: ssh.FixedHostKey(gw.HostKey.PublicKey()), Timeout: 10 * time.Second})
		if err == nil {
			c.Close()
		}
		return err
	}
	k1, k2 := gatewaytest.NewKey(t, "k1"), gatewaytest.NewKey(t, "k2")
	if err := dial(k1, "wrong"); err == nil {
		t.Fatal("wrong token accepted")
	}
	if err := dial(k1, ""); err == nil {
		t.Fatal("unbound key accepted without a token")
	}
	if err := dial(k1, token); err != nil {
		t.Fatalf("enrollment: %v", err)
	}
	if err := dial(k1, ""); err != nil {
		t.Fatalf("bound key refused: %v", err)
	}
	if err := dial(k2, token); err == nil {
		t.Fatal("token used twice")
	}
	h, _ := gw.Store.Host(ctx, "web-09")
	if !strings.HasPrefix(h.AgentKey, "ssh-ed25519 ") {
		t.Fatalf("agent key %q", h.AgentKey)
	}
}

func TestAgentOnUnknownHostRefused(t *testing.T) {
	gw := gatewaytest.StartGateway(t, gatewaytest.Config{})
	k := gatewaytest.NewKey(t, "k")
	_, err := ssh.Dial("tcp", gw.AgentAddr, &ssh.ClientConfig{User: "ghost", Auth: []ssh.AuthMethod{ssh.PublicKeys(k.Signer)},
		HostKeyCallback: ssh.FixedHostKey(gw.HostKey.PublicKey()), Timeout: 10 * time.Second})
	if err == nil {
		t.Fatal("agent for an unknown host accepted")
	}
	// People cannot use the agents' port, and agents not the people's.
	web := gw.AddHost("web-01")
	if _, err := ssh.Dial("tcp", gw.PeopleAddr, &ssh.ClientConfig{User: "web-01", Auth: []ssh.AuthMethod{ssh.PublicKeys(web.Signer)},
		HostKeyCallback: ssh.FixedHostKey(gw.HostKey.PublicKey()), Timeout: 10 * time.Second}); err == nil {
		t.Fatal("agent key accepted on the people's port")
	}
}

// syncBuffer is the harness's buffer that a test can wait on.
type syncBuffer = gatewaytest.SyncBuffer

// waitFor waits up to 10 s for want to appear in b.
func waitFor(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	if !b.WaitFor(want, 10*time.Second) {
		t.Fatalf("timed out waiting for %q in:\n%s", want, b.String())
	}
}

func TestIdleTimeoutAndMaxLength(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    gateway.Config
		cmd    string
		reason string
	}{
		{"idle", gateway.Config{IdleTimeout: time.Second}, "echo started; sleep 30", "the session was idle too long; closed"},
		{"max length", gateway.Config{MaxSessionLength: 1500 * time.Millisecond},
			"echo started; while :; do echo tick; sleep 0.05; done", "the session reached its maximum length; closed"},
	} {
		rec := &recorder{}
		tc.cfg.Recorders = rec
		e := newEnv(t, tc.cfg)
		s, _, errOut := startCommand(t, e.dial(t, "rr+web-01", e.alice.Signer), tc.cmd)
		s.Wait()
		if !strings.Contains(errOut.String(), "rr: "+tc.reason) {
			t.Errorf("%s: stderr %q", tc.name, errOut.String())
		}
		rows, _ := e.gw.Store.Sessions(context.Background(), store.SessionFilter{})
		rec.mu.Lock()
		if len(rows) != 1 || rows[0].EndReason != tc.reason || rec.end == nil || rec.end.Reason != tc.reason {
			t.Errorf("%s: row %+v, recorder end %+v", tc.name, rows, rec.end)
		}
		rec.mu.Unlock()
	}
}

// TestSpoolUnwritableRefusesSessions: when the spool cannot take a new
// file, the session is refused, not run unrecorded.
func TestSpoolUnwritableRefusesSessions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	sp, err := rrrec.NewSpool(rrrec.SpoolConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var st *sqlite.Store
	e := newEnv(t, gateway.Config{Recorders: lateSpool{sp: sp, st: &st}})
	st = e.gw.Store
	os.RemoveAll(dir)
	os.WriteFile(dir, []byte("not a folder"), 0o600) // the disk "fails"
	c := e.dial(t, "rr+web-01", e.alice.Signer)
	out, errOut, err := run(t, c, "echo must-not-run", nil)
	if out != "" || !strings.Contains(errOut, "cannot be recorded") || exitStatus(err) != 1 {
		t.Fatalf("stdout %q stderr %q err %v", out, errOut, err)
	}
}

// lateSpool builds SpoolRecorders once the store exists.
type lateSpool struct {
	sp *rrrec.Spool
	st **sqlite.Store
}

func (l lateSpool) Start(ctx context.Context, info gateway.SessionInfo) (gateway.SessionRecorder, error) {
	return gateway.SpoolRecorders(l.sp, *l.st, slog.Default(), nil).Start(ctx, info)
}

// TestKillOutlivesTheConsole: a kill whose console connection drops while
// the session is still closing (its process ignores SIGHUP, so it lasts
// until the agent's SIGKILL) still finishes, and the audit says it did.
func TestKillOutlivesTheConsole(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	id, victimErr := startVictim(t, e)

	console := e.dialB(t, "rr")
	cs, err := console.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	in, _ := cs.StdinPipe()
	if err := cs.RequestSubsystem("rr-admin"); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(in, "kill %s leaving now\n", id)
	waitFor(t, victimErr, "Session closed by alice")
	console.Close() // while the kill still waits for the session's end

	deadline := time.Now().Add(15 * time.Second)
	for {
		evs, err := e.gw.Store.AuditEvents(context.Background(), store.AuditFilter{Action: "session.kill"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 {
			if evs[0].Outcome != "allowed" {
				t.Fatalf("kill audited as %q (%s), want allowed", evs[0].Outcome, evs[0].Detail)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no kill in the audit after 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s, err := e.gw.Store.Session(context.Background(), id)
	if err != nil || s.KilledBy != "alice" || s.EndReason != "killed by alice: leaving now" {
		t.Fatalf("row: %+v, %v", s, err)
	}
}

// startVictim starts bob's long session on web-01 that ignores SIGHUP,
// and returns its id and the person's stderr.
func startVictim(t *testing.T, e *env) (string, *syncBuffer) {
	t.Helper()
	victim := e.dialB(t, "rr+web-01")
	_, _, victimErr := startCommand(t, victim, "trap '' HUP; echo started; sleep 60")
	live, err := e.gw.Store.Sessions(context.Background(), store.SessionFilter{LiveOnly: true})
	if err != nil || len(live) != 1 {
		t.Fatalf("live sessions: %v, %v", live, err)
	}
	return live[0].ID, victimErr
}

// TestUploadStartsWhenTheSessionEnds: the upload of a recording is asked
// for once its session's row is closed — asked for earlier, it would find
// the session live and leave the file to the next rescan, an hour here.
// The uploader here is as quick as can be: each kick waits until it has
// looked at the session.
func TestUploadStartsWhenTheSessionEnds(t *testing.T) {
	sp, err := rrrec.NewSpool(rrrec.SpoolConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var (
		st     *sqlite.Store
		mu     sync.Mutex
		seen   []store.SessionState // each state the uploader found the session in
		looked = make(chan struct{}, 8)
	)
	sink := &chanSink{uploaded: make(chan string, 1)}
	up, err := rrrec.NewUploader(rrrec.UploaderConfig{Spool: sp, Sink: sink, Rescan: time.Hour,
		Final: func(ctx context.Context, id string) (rrrec.Closed, bool, error) {
			sess, err := st.Session(ctx, id)
			if err != nil {
				return rrrec.Closed{}, false, err
			}
			mu.Lock()
			seen = append(seen, sess.State)
			mu.Unlock()
			select {
			case looked <- struct{}{}:
			default:
			}
			return rrrec.Closed{Size: sess.RecordingSize, SHA256: sess.RecordingSHA256}, sess.State != store.StateLive, nil
		},
		Moved:    func(ctx context.Context, id, loc string) error { return st.MoveSessionRecording(ctx, id, loc) },
		Location: func(name string) string { return "test://" + name },
	})
	if err != nil {
		t.Fatal(err)
	}
	kick := func() {
		up.Kick()
		select {
		case <-looked:
		case <-time.After(10 * time.Second):
		}
	}
	e := newEnv(t, gateway.Config{Recorders: kickingSpool{sp: sp, st: &st, kick: kick}})
	st = e.gw.Store
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); up.Run(ctx) }()
	defer func() { cancel(); <-done }()

	c := e.dial(t, "rr+web-01", e.alice.Signer)
	if out, _, err := run(t, c, "echo recorded", nil); out != "recorded\n" || err != nil {
		t.Fatalf("session: %q %v", out, err)
	}
	select {
	case name := <-sink.uploaded:
		id := strings.TrimSuffix(name, ".gz")
		sess, err := st.Session(context.Background(), id)
		if err != nil || sess.State != store.StateClosed || sess.RecordingSHA256 == "" {
			t.Fatalf("uploaded %s of a session %+v, %v", name, sess, err)
		}
	case <-time.After(10 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("no upload 10s after the session ended; the uploader found it %q", seen)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != store.StateClosed {
		t.Fatalf("the uploader was asked while the session was %q; want once, when closed", seen)
	}
}

// kickingSpool builds SpoolRecorders, which kick the uploader, once the
// store exists.
type kickingSpool struct {
	sp   *rrrec.Spool
	st   **sqlite.Store
	kick func()
}

func (k kickingSpool) Start(ctx context.Context, info gateway.SessionInfo) (gateway.SessionRecorder, error) {
	return gateway.SpoolRecorders(k.sp, *k.st, slog.Default(), k.kick).Start(ctx, info)
}

// chanSink takes every upload, verified, and says which.
type chanSink struct{ uploaded chan string }

func (s *chanSink) Upload(_ context.Context, name, _ string, _ int64, _ string) error {
	s.uploaded <- name
	return nil
}
func (s *chanSink) Verify(context.Context, string, string, int64, string) error { return nil }
