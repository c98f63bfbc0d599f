package agent_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitLimit bounds every wait on an event in these tests.
const waitLimit = 15 * time.Second

const testHost = "web-01"

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tWriter sends log lines to t.Log (and, if buf is set, to buf too).
type tWriter struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (w *tWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// fakeGW is the gateway's agent port, reduced to what the agent sees: an
// SSH server that takes the agent's key (or what auth says) and hands each
// connection to the test.
type fakeGW struct {
	t       testing.TB
	ln      net.Listener
	addr    string
	hostKey ssh.Signer
	conns   chan *ssh.ServerConn

	authCalls atomic.Int32 // any method, "none" included
	keyCalls  atomic.Int32 // publickey attempts
	pwCalls   atomic.Int32 // password attempts

	mu     sync.Mutex
	open   []net.Conn
	closed bool
	wg     sync.WaitGroup
}

// startGW listens on addr ("127.0.0.1:0" for a fresh port) with hostKey.
// pubkey decides the publickey method (nil: the agent's key for testHost
// is accepted).
func startGW(t testing.TB, addr string, hostKey, agentKey ssh.Signer,
	pubkey func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error)) *fakeGW {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGW{t: t, ln: ln, addr: ln.Addr().String(), hostKey: hostKey, conns: make(chan *ssh.ServerConn, 16)}
	if pubkey == nil {
		pubkey = func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == testHost && bytes.Equal(k.Marshal(), agentKey.PublicKey().Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("unknown agent")
		}
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			g.keyCalls.Add(1)
			return pubkey(c, k)
		},
		PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
			g.pwCalls.Add(1)
			return nil, errors.New("no passwords here")
		},
		AuthLogCallback: func(ssh.ConnMetadata, string, error) { g.authCalls.Add(1) },
	}
	cfg.AddHostKey(hostKey)
	g.wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			if g.closed {
				g.mu.Unlock()
				nc.Close()
				return
			}
			g.open = append(g.open, nc)
			g.mu.Unlock()
			g.wg.Go(func() { g.serve(nc, cfg) })
		}
	})
	t.Cleanup(g.Close)
	return g
}

func (g *fakeGW) serve(nc net.Conn, cfg *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		nc.Close()
		return
	}
	g.wg.Go(func() { ssh.DiscardRequests(reqs) })
	g.wg.Go(func() {
		for nch := range chans {
			nch.Reject(ssh.Prohibited, "the gateway opens channels, not the agent")
		}
	})
	g.conns <- sc
}

// conn waits for the next agent connection.
func (g *fakeGW) conn() *ssh.ServerConn {
	g.t.Helper()
	select {
	case c := <-g.conns:
		return c
	case <-time.After(waitLimit):
		g.t.Fatal("no agent connected")
		return nil
	}
}

// Close stops listening, drops every connection and waits for its
// goroutines.
func (g *fakeGW) Close() {
	g.mu.Lock()
	g.closed = true
	g.ln.Close()
	for _, c := range g.open {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

type stateEvent struct {
	gateway string
	state   agent.State
	err     error
}

// runAgent runs an agent (cfg edited by edit) until the test ends, and
// returns its OnState events and a function that stops it and waits for
// Run to return.
func runAgent(t testing.TB, gateways []string, fingerprint string, key ssh.Signer, edit func(*agent.Config)) (<-chan stateEvent, func()) {
	t.Helper()
	states := make(chan stateEvent, 4096)
	cfg := agent.Config{
		Gateways:           gateways,
		GatewayHostKey:     fingerprint,
		Host:               testHost,
		Signer:             key,
		KeepaliveInterval:  time.Second,
		KeepaliveMaxMissed: 3,
		BackoffMin:         20 * time.Millisecond,
		BackoffMax:         100 * time.Millisecond,
		KillGrace:          300 * time.Millisecond,
		Logger:             slog.New(slog.NewTextHandler(&tWriter{t: t}, nil)),
		OnState: func(gw string, s agent.State, err error) {
			select {
			case states <- stateEvent{gw, s, err}:
			default:
			}
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			done <- err // for a second stop
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Fatal("Run did not return")
		}
	}
	t.Cleanup(stop)
	return states, stop
}

// waitState waits for the next event in state s and returns it.
func waitState(t testing.TB, states <-chan stateEvent, s agent.State) stateEvent {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case e := <-states:
			if e.state == s {
				return e
			}
		case <-timeout:
			t.Fatalf("no %v state", s)
		}
	}
}

// env is a gateway and an agent connected to it.
type env struct {
	gw    *fakeGW
	conn  *ssh.ServerConn
	key   ssh.Signer
	stop  func()
	state <-chan stateEvent
}

func setup(t *testing.T, edit func(*agent.Config)) *env {
	t.Helper()
	hk, key := newSigner(t), newSigner(t)
	gw := startGW(t, "127.0.0.1:0", hk, key, nil)
	states, stop := runAgent(t, []string{gw.addr}, ssh.FingerprintSHA256(hk.PublicKey()), key, edit)
	waitState(t, states, agent.StateConnected)
	return &env{gw: gw, conn: gw.conn(), key: key, stop: stop, state: states}
}

// exit is how a session ended, as the agent reported it.
type exit struct {
	status   int // -1 when none was sent
	signal   string
	core     bool
	gotClose bool
}

// tsess is the gateway's end of one session channel.
type tsess struct {
	t    testing.TB
	ch   ssh.Channel
	done chan exit
	out  *output
	err  *output
}

var sessionSeq atomic.Int32

// openSession opens a session channel over c, as the gateway does.
func openSession(t testing.TB, c ssh.Conn) *tsess {
	t.Helper()
	id := "s" + strconv.Itoa(int(sessionSeq.Add(1)))
	ch, reqs, err := c.OpenChannel(wire.ChannelSession, ssh.Marshal(&wire.SessionOpen{SessionID: id, Person: "alice", Team: "ops"}))
	if err != nil {
		t.Fatal(err)
	}
	s := &tsess{t: t, ch: ch, done: make(chan exit, 1)}
	go func() {
		e := exit{status: -1}
		for req := range reqs {
			switch req.Type {
			case wire.ReqExitStatus:
				var p wire.ExitStatus
				if ssh.Unmarshal(req.Payload, &p) == nil {
					e.status = int(p.Status)
				}
			case wire.ReqExitSignal:
				var p wire.ExitSignal
				if ssh.Unmarshal(req.Payload, &p) == nil {
					e.signal, e.core = p.Signal, p.CoreDumped
				}
			}
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
		e.gotClose = true
		s.done <- e
	}()
	t.Cleanup(func() { ch.Close() })
	return s
}

// collect reads stdout and stderr as they come.
func (s *tsess) collect() *tsess {
	s.out, s.err = collect(s.ch), collect(s.ch.Stderr())
	return s
}

// req sends a request and returns the agent's reply.
func (s *tsess) req(name string, payload any) bool {
	s.t.Helper()
	var p []byte
	if payload != nil {
		p = ssh.Marshal(payload)
	}
	ok, err := s.ch.SendRequest(name, true, p)
	if err != nil {
		s.t.Fatalf("request %s: %v", name, err)
	}
	return ok
}

func (s *tsess) exec(command string) {
	s.t.Helper()
	if !s.req(wire.ReqExec, &wire.Command{Command: command}) {
		s.t.Fatalf("exec %q refused", command)
	}
}

// wait waits for the channel to close and says how the session ended.
func (s *tsess) wait() exit {
	s.t.Helper()
	select {
	case e := <-s.done:
		return e
	case <-time.After(waitLimit):
		s.t.Fatal("session did not end")
		return exit{}
	}
}

// output is what a reader produced so far.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
	done    chan struct{} // closed at EOF
}

func collect(r io.Reader) *output {
	o := &output{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		io.Copy(o, r)
		close(o.done)
	}()
	return o
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until re matches what was read, and returns the match's
// submatches.
func (o *output) waitFor(t testing.TB, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(waitLimit)
	for {
		o.mu.Lock()
		m := rx.FindStringSubmatch(o.buf.String())
		changed := o.changed
		o.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-changed:
		case <-o.done:
			if m := rx.FindStringSubmatch(o.String()); m != nil {
				return m
			}
			t.Fatalf("output ended without %q: %q", re, o.String())
		case <-timeout:
			t.Fatalf("no %q in %q", re, o.String())
		}
	}
}

// all waits for EOF and returns everything read.
func (o *output) all(t testing.TB) string {
	t.Helper()
	select {
	case <-o.done:
		return o.String()
	case <-time.After(waitLimit):
		t.Fatalf("no EOF after %q", o.String())
		return ""
	}
}

// waitGone waits for process pid to exit, through a pidfd (readable once
// it has exited), not by polling.
func waitGone(t testing.TB, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return
	}
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(waitLimit/time.Millisecond))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("poll pidfd: %v", err)
		}
		if n == 0 {
			t.Fatalf("process %d survived its session", pid)
		}
		return
	}
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := agent.New(agent.Config{Gateways: []string{"no-port", "h:1", "h:1"}, GatewayHostKey: "MD5:x"})
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"want host:port", "listed twice", "gateway_host_key", "no host name", "no key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := agent.New(agent.Config{}); err == nil || !strings.Contains(err.Error(), "no gateways") {
		t.Errorf("empty config: %v", err)
	}
	good := agent.Config{Gateways: []string{"h:1"}, GatewayHostKey: "SHA256:x", Host: "h", Signer: newSigner(t)}
	if _, err := agent.New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	bad := good
	bad.User = "no-such-user-rr"
	if _, err := agent.New(bad); err == nil {
		t.Fatal("unknown user accepted")
	}
	bad = good
	bad.Shell = "sh"
	if _, err := agent.New(bad); err == nil {
		t.Fatal("relative shell accepted")
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[agent.State]string{agent.StateDialing: "dialing", agent.StateConnected: "connected",
		agent.StateDisconnected: "disconnected", agent.State(9): "State(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", int(s), s.String(), want)
		}
	}
}
