package gateway_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// goroutinesIn counts the goroutines whose stack has all of fns in it.
func goroutinesIn(fns ...string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		has := true
		for _, fn := range fns {
			has = has && strings.Contains(g, fn)
		}
		if has {
			count++
		}
	}
	return count
}

// TestIdlePTYSessionGoroutines: an idle PTY session holds two pumps (its
// host's stderr is read by the output pump, after the output); its
// connection's goroutine runs its bridge, and neither it nor the host's
// tunnel's is the goroutine that ran their logins (whose stacks grew
// deep): what an idle session costs in stacks.
func TestIdlePTYSessionGoroutines(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	_, in, out := ptyShell(t, e.dial(t, "rr+web-01", e.alice.Signer), "xterm", 24, 80)
	io.WriteString(in, "echo idle-$((6*7))\r")
	waitFor(t, out, "idle-42")
	if n := goroutinesIn("gateway.pump("); n != 2 {
		t.Errorf("%d pumps for one idle PTY session, want 2", n)
	}
	handedOff := "created by github.com/rr-gateway/rr/gateway.(*Server).connection in"
	if n := goroutinesIn("gateway.(*connDuty).run(", handedOff); n != 1 {
		t.Errorf("%d person connections served on a fresh goroutine, want 1", n)
	}
	if n := goroutinesIn("gateway.holdTunnel(", handedOff); n != 1 {
		t.Errorf("%d tunnels held on a fresh goroutine, want 1", n)
	}
	if n := goroutinesIn("gateway.(*bridge).run("); n != 0 {
		t.Errorf("%d bridges on goroutines of their own, want 0: the connection's runs it", n)
	}
	if n := goroutinesIn("gateway.(*personConn).runSession("); n != 0 {
		t.Errorf("%d session set-ups still running, want 0", n)
	}
}

// TestConnectionRunsItsFirstSession: the connection's goroutine runs the
// bridge of the session that started first; one started meanwhile runs on
// a goroutine of its own, and once the first has ended the connection's
// goroutine takes the next. Each works, and ends, as any session does.
func TestConnectionRunsItsFirstSession(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c := e.dial(t, "rr+web-01", e.alice.Signer)
	ownBridges := func(want int) {
		t.Helper()
		n := 0
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if n = goroutinesIn("gateway.(*bridge).run("); n == want {
				return
			}
		}
		t.Fatalf("%d bridges on goroutines of their own, want %d", n, want)
	}
	shell := func(name string, asked bool) (*ssh.Session, io.Writer, *syncBuffer) {
		s, in, out := ptyShell(t, c, "xterm", 24, 80)
		if asked {
			waitFor(t, out, "Passphrase for web-01: ")
			io.WriteString(in, "pp-web-01\r")
		}
		io.WriteString(in, "echo "+name+"-$((6*7))\r")
		waitFor(t, out, name+"-42")
		return s, in, out
	}
	first, in1, _ := shell("first", false)
	ownBridges(0)
	second, in2, _ := shell("second", true)
	ownBridges(1)
	io.WriteString(in1, "exit 3\r")
	if err := first.Wait(); exitStatus(err) != 3 {
		t.Fatalf("first session: %v, want exit status 3", err)
	}
	third, in3, _ := shell("third", true)
	ownBridges(1)
	io.WriteString(in3, "exit 4\r")
	if err := third.Wait(); exitStatus(err) != 4 {
		t.Fatalf("third session: %v, want exit status 4", err)
	}
	io.WriteString(in2, "exit 5\r")
	if err := second.Wait(); exitStatus(err) != 5 {
		t.Fatalf("second session: %v, want exit status 5", err)
	}
	ownBridges(0)
	// The connection is still served: a fourth session starts.
	fourth, in4, _ := shell("fourth", true)
	io.WriteString(in4, "exit\r")
	if err := fourth.Wait(); err != nil {
		t.Fatalf("fourth session: %v", err)
	}
}

// TestPTYSessionStderrReachesThePerson: on a PTY session the host's
// stderr still reaches the person (the agent's "cannot start shell" and
// its exit status 126), though no pump waits on it while output flows.
func TestPTYSessionStderrReachesThePerson(t *testing.T) {
	gw, alice, key := aliceAndHost(t, "bad-01")
	notExecutable := filepath.Join(t.TempDir(), "shell")
	if err := os.WriteFile(notExecutable, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gatewaytest.StartAgent(t, gw, "bad-01", key, func(c *agent.Config) { c.Shell = notExecutable })
	gw.WaitOnline("bad-01")
	c, err := ssh.Dial("tcp", gw.PeopleAddr, &ssh.ClientConfig{
		User: "rr+bad-01",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(alice.Signer),
			gatewaytest.Answers(t, gw.Outbox, map[string]string{"Passphrase for bad-01": "pp-bad-01"})},
		HostKeyCallback: ssh.FixedHostKey(gw.HostKey.PublicKey()),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := newSession(t, c)
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	s.Stdout, s.Stderr = stdout, stderr
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, stderr, "rr-agent: cannot start shell:")
	var exit *ssh.ExitError
	if err := s.Wait(); !errors.As(err, &exit) || exit.ExitStatus() != 126 {
		t.Fatalf("session ended with %v, want exit status 126", err)
	}
}

// TestConnectionDroppedEndsItsSession: the person's TCP connection goes
// away while the session its goroutine runs is idle. The session still
// ends as "client gone", its row final, while the gateway keeps running.
func TestConnectionDroppedEndsItsSession(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c := e.dial(t, "rr+web-01", e.alice.Signer)
	_, in, out := ptyShell(t, c, "xterm", 24, 80)
	io.WriteString(in, "echo idle-$((6*7))\r")
	waitFor(t, out, "idle-42")
	c.Close()
	if row := onlySession(t, e, true); row.State != store.StateClosed || row.EndReason != "client gone" {
		t.Fatalf("row %+v, want closed: client gone", row)
	}
	for deadline := time.Now().Add(5 * time.Second); goroutinesIn("gateway.(*connDuty).run(") != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the connection is still served 5 s after it dropped")
		}
	}
}

// TestTunnelAdmittedOnItsLoginGoroutine: an agent's tunnel is admitted
// (host touched, presence, audit) on the goroutine that ran its login, so
// that the goroutine holding the idle tunnel never grew its stack for
// that work.
func TestTunnelAdmittedOnItsLoginGoroutine(t *testing.T) {
	st := &goroutineStore{}
	gw := gatewaytest.StartGateway(t, gatewaytest.Config{WrapStore: func(s *sqlite.Store) gateway.Store {
		st.Store = s
		return st
	}})
	key := gw.AddHost("web-01")
	gatewaytest.StartAgent(t, gw, "web-01", key, nil)
	gw.WaitOnline("web-01")
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.login == "" || st.admit == "" {
		t.Fatalf("login on goroutine %q, admission on %q: want both seen", st.login, st.admit)
	}
	if st.login != st.admit {
		t.Errorf("login on goroutine %s, admission on goroutine %s: want the same", st.login, st.admit)
	}
}

// goroutineStore notes the goroutine that looked the agent's host up (its
// login) and the one that first touched it (its admission).
type goroutineStore struct {
	*sqlite.Store
	mu           sync.Mutex
	login, admit string
}

func (s *goroutineStore) Host(ctx context.Context, name string) (store.Host, error) {
	s.mu.Lock()
	s.login = goroutineID()
	s.mu.Unlock()
	return s.Store.Host(ctx, name)
}

func (s *goroutineStore) TouchHost(ctx context.Context, name string, at time.Time) error {
	s.mu.Lock()
	if s.admit == "" {
		s.admit = goroutineID()
	}
	s.mu.Unlock()
	return s.Store.TouchHost(ctx, name, at)
}

// goroutineID is the calling goroutine's number, from its stack's header.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return strings.Fields(string(buf))[1]
}
