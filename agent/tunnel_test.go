package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/internal/sshkit"
	"github.com/rr-gateway/rr/internal/testtool"
)

// TestHostKeyMismatch: a gateway with another key is refused before any
// credential is sent, reported as sshkit.ErrHostKeyMismatch, and retried.
func TestHostKeyMismatch(t *testing.T) {
	hk, pinned, key := newSigner(t), newSigner(t), newSigner(t)
	gw := startGW(t, "127.0.0.1:0", hk, key, nil)
	states, _ := runAgent(t, []string{gw.addr}, ssh.FingerprintSHA256(pinned.PublicKey()), key,
		func(c *agent.Config) { c.EnrollToken = "tok-secret" })
	for range 2 { // refused, and tried again
		e := waitState(t, states, agent.StateDisconnected)
		if !errors.Is(e.err, sshkit.ErrHostKeyMismatch) || e.gateway != gw.addr {
			t.Fatalf("disconnected from %s with %v, want ErrHostKeyMismatch", e.gateway, e.err)
		}
		if !strings.Contains(e.err.Error(), ssh.FingerprintSHA256(hk.PublicKey())) {
			t.Errorf("error %q does not name the key offered", e.err)
		}
	}
	if n := gw.authCalls.Load() + gw.keyCalls.Load() + gw.pwCalls.Load(); n != 0 {
		t.Fatalf("the gateway saw %d authentication attempts", n)
	}
}

// TestReconnect: the gateway goes away (listener and connection) and
// comes back on the same address; the agent's sessions of the lost
// connection are ended, and it connects again.
func TestReconnect(t *testing.T) {
	e := setup(t, nil)
	s := openSession(t, e.conn).collect()
	s.exec("trap '' HUP; sleep 1000 & echo pids=$$,$!; wait")
	m := s.out.waitFor(t, `pids=(\d+),(\d+)`)

	addr := e.gw.addr
	e.gw.Close()
	if ev := waitState(t, e.state, agent.StateDisconnected); ev.err == nil {
		t.Error("disconnected without a reason")
	}
	for _, pid := range m[1:] {
		waitGone(t, atoi(t, pid))
	}
	gatewayBack(t, e, addr)
}

// TestEnrollment: the gateway takes an unknown key only with the token
// (partial success, then password); once bound, the key alone will do.
func TestEnrollment(t *testing.T) {
	const token = "tok-0123456789"
	hk, key := newSigner(t), newSigner(t)
	var enrolled atomic.Bool
	var tokenChecks atomic.Int32
	gw := startGW(t, "127.0.0.1:0", hk, key, func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if c.User() != testHost || !bytes.Equal(k.Marshal(), key.PublicKey().Marshal()) {
			return nil, errors.New("unknown agent")
		}
		if enrolled.Load() {
			return &ssh.Permissions{}, nil
		}
		return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
			PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
				tokenChecks.Add(1)
				if c.User() != testHost || string(pw) != token {
					return nil, errors.New("bad token")
				}
				enrolled.Store(true)
				return &ssh.Permissions{}, nil
			},
		}}
	})
	logs := &tWriter{t: t}
	states, _ := runAgent(t, []string{gw.addr}, ssh.FingerprintSHA256(hk.PublicKey()), key, func(c *agent.Config) {
		c.EnrollToken = token
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	waitState(t, states, agent.StateConnected)
	if !enrolled.Load() || tokenChecks.Load() != 1 {
		t.Fatalf("enrolled %v after %d token checks", enrolled.Load(), tokenChecks.Load())
	}
	// Drop the connection: the agent comes back with its key alone.
	c := gw.conn()
	c.Close()
	waitState(t, states, agent.StateDisconnected)
	waitState(t, states, agent.StateConnected)
	if n := tokenChecks.Load(); n != 1 {
		t.Fatalf("token offered again (%d checks)", n)
	}
	if strings.Contains(logs.String(), token) {
		t.Fatal("the enrollment token was logged")
	}
}

// TestWrongTokenRetries: a refused token is a disconnection, retried.
func TestWrongTokenRetries(t *testing.T) {
	hk, key := newSigner(t), newSigner(t)
	gw := startGW(t, "127.0.0.1:0", hk, key, func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
			PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
				return nil, errors.New("bad token")
			},
		}}
	})
	states, _ := runAgent(t, []string{gw.addr}, ssh.FingerprintSHA256(hk.PublicKey()), key,
		func(c *agent.Config) { c.EnrollToken = "wrong" })
	for range 2 {
		if e := waitState(t, states, agent.StateDisconnected); e.err == nil || !strings.Contains(e.err.Error(), "unable to authenticate") {
			t.Fatalf("disconnected with %v", e.err)
		}
	}
}

// TestEveryGateway: one tunnel per address, each independent.
func TestEveryGateway(t *testing.T) {
	hk, key := newSigner(t), newSigner(t)
	gw1 := startGW(t, "127.0.0.1:0", hk, key, nil)
	gw2 := startGW(t, "127.0.0.1:0", hk, key, nil)
	states, _ := runAgent(t, []string{gw1.addr, gw2.addr}, ssh.FingerprintSHA256(hk.PublicKey()), key, nil)
	seen := map[string]bool{}
	for len(seen) < 2 {
		seen[waitState(t, states, agent.StateConnected).gateway] = true
	}
	if !seen[gw1.addr] || !seen[gw2.addr] {
		t.Fatalf("connected to %v", seen)
	}
	c2 := gw2.conn()
	gw1.Close() // the other tunnel does not care
	s := openSession(t, c2).collect()
	s.exec("echo two")
	if got := s.out.all(t); got != "two\n" {
		t.Fatalf("stdout %q", got)
	}
}

// stallConn stops delivering what the gateway sends once stalled is
// closed: the gateway looks dead while TCP stays up.
type stallConn struct {
	net.Conn
	stalled <-chan struct{}
	closed  chan struct{}
	once    sync.Once
}

func (c *stallConn) Read(p []byte) (int, error) {
	select {
	case <-c.stalled:
		<-c.closed
		return 0, net.ErrClosed
	default:
	}
	return c.Conn.Read(p)
}

func (c *stallConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestKeepaliveDropsSilentGateway: a gateway that stops answering is
// dropped within KeepaliveInterval×KeepaliveMaxMissed, and redialled.
func TestKeepaliveDropsSilentGateway(t *testing.T) {
	hk, key := newSigner(t), newSigner(t)
	gw := startGW(t, "127.0.0.1:0", hk, key, nil)
	stalled := make(chan struct{})
	var dials atomic.Int32
	states, _ := runAgent(t, []string{gw.addr}, ssh.FingerprintSHA256(hk.PublicKey()), key, func(c *agent.Config) {
		c.KeepaliveInterval, c.KeepaliveMaxMissed = 50*time.Millisecond, 3
		c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil || dials.Add(1) > 1 {
				return nc, err // only the first connection stalls
			}
			return &stallConn{Conn: nc, stalled: stalled, closed: make(chan struct{})}, nil
		}
	})
	waitState(t, states, agent.StateConnected)
	close(stalled)
	start := time.Now()
	waitState(t, states, agent.StateDisconnected)
	if d := time.Since(start); d > 10*time.Second { // a bound for "within seconds", not a measurement
		t.Errorf("silent gateway dropped after %v", d)
	}
	waitState(t, states, agent.StateConnected)
}

// TestUnreapableProcessDoesNotHoldTheTunnel: a session whose process does
// not end even after SIGKILL (here: traced by a stopped strace, so that
// its end is never reported to the agent; on a host in trouble, a process
// stuck on a hung disk) is left to it, and the tunnel is dialled again
// when its gateway comes back.
func TestUnreapableProcessDoesNotHoldTheTunnel(t *testing.T) {
	strace := testtool.Path(t, "strace", "")
	defer agent.SetUnkillableWait(300 * time.Millisecond)()
	e := setup(t, nil)
	s := openSession(t, e.conn).collect()
	s.exec("echo pid=$$; exec sleep 1000")
	pid := atoi(t, s.out.waitFor(t, `pid=(\d+)`)[1])
	defer syscall.Kill(pid, syscall.SIGKILL)
	tracer := exec.Command(strace, "-o", "/dev/null", "-p", strconv.Itoa(pid))
	if err := tracer.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { tracer.Process.Kill(); tracer.Wait() }()
	for deadline := time.Now().Add(5 * time.Second); !traced(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Skip("strace cannot attach here (ptrace not permitted)")
		}
	}
	tracer.Process.Signal(syscall.SIGSTOP)

	addr := e.gw.addr
	e.gw.Close() // the gateway restarts
	waitState(t, e.state, agent.StateDisconnected)
	gatewayBack(t, e, addr)
}

// traced reports whether pid has a tracer (/proc/PID/status TracerPid).
func traced(pid int) bool {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "TracerPid:"); ok {
			return strings.TrimSpace(v) != "0"
		}
	}
	return false
}

// gatewayBack starts a gateway again on addr, where e's was, and checks
// that the agent connects to it and serves a session.
func gatewayBack(t *testing.T, e *env, addr string) {
	t.Helper()
	gw := startGW(t, addr, e.gw.hostKey, e.key, nil)
	waitState(t, e.state, agent.StateConnected)
	s := openSession(t, gw.conn()).collect()
	s.exec("echo back")
	if got := s.out.all(t); got != "back\n" {
		t.Fatalf("stdout %q", got)
	}
}
