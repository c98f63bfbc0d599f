package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/internal/rrtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// setup starts a gateway with alice (every host) and an agent for web-01
// (edited by edit), and returns a client logged in as alice.
func setup(t *testing.T, edit func(*agent.Config)) (*rrtest.Gateway, *ssh.Client) {
	gw, dial := setupDialer(t, edit)
	return gw, dial()
}

// setupDialer is setup returning a function that logs in anew: each
// session's passphrase is asked for on its own connection.
func setupDialer(t *testing.T, edit func(*agent.Config)) (*rrtest.Gateway, func() *ssh.Client) {
	t.Helper()
	alice := rrtest.NewKey(t, "alice")
	gw := rrtest.StartGateway(t, rrtest.Config{})
	gw.AddPerson("alice", "advanced", "alice@example.com", "", alice)
	key := gw.AddHost("web-01")
	gw.SetPassphrase("web-01", "pp")
	gw.AddTeam("ops_RR", true, []string{"alice"}, "*")
	rrtest.StartAgent(t, gw, "web-01", key, edit)
	gw.WaitOnline("web-01")
	return gw, func() *ssh.Client {
		c, err := ssh.Dial("tcp", gw.PeopleAddr, &ssh.ClientConfig{User: "rr+web-01",
			Auth:            []ssh.AuthMethod{ssh.PublicKeys(alice.Signer), rrtest.Answers(t, gw.Outbox, map[string]string{"Passphrase": "pp"})},
			HostKeyCallback: ssh.FixedHostKey(gw.HostKey.PublicKey())})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

func session(t *testing.T, c *ssh.Client) *ssh.Session {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestExitSignal(t *testing.T) {
	_, c := setup(t, nil)
	err := session(t, c).Run("kill -KILL $$")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.Signal() != "KILL" {
		t.Fatalf("got %v, want exit signal KILL", err)
	}
}

func TestSignalRequestReachesProcess(t *testing.T) {
	_, c := setup(t, nil)
	s := session(t, c)
	stdout, _ := s.StdoutPipe()
	if err := s.Start("echo ready; exec sleep 100"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("read %q %v", buf, err)
	}
	if err := s.Signal(ssh.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := s.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.Signal() != "INT" {
		t.Fatalf("got %v, want exit signal INT", err)
	}
}

// TestClosingKillsProcessGroup: what a session started, even in the
// background, dies when the session's channel closes.
func TestClosingKillsProcessGroup(t *testing.T) {
	_, dial := setupDialer(t, func(c *agent.Config) { c.KillGrace = 200 * time.Millisecond })
	for _, pty := range []bool{false, true} {
		s := session(t, dial())
		if pty {
			if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
				t.Fatal(err)
			}
		}
		stdout, _ := s.StdoutPipe()
		if err := s.Start("trap '' HUP; sleep 1000 & echo pid=$!; sleep 1000"); err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, 64)
		for !bytes.Contains(got, []byte("\n")) {
			n, err := stdout.Read(buf)
			if err != nil {
				t.Fatalf("read: %v (%q)", err, got)
			}
			got = append(got, buf[:n]...)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(got)), "pid=")))
		if err != nil {
			t.Fatalf("pid from %q: %v", got, err)
		}
		if unix.Kill(pid, 0) != nil {
			t.Fatalf("background process %d not running", pid)
		}
		s.Close()
		deadline := time.Now().Add(10 * time.Second)
		for unix.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("pty=%v: background process %d survived its session", pty, pid)
			}
			time.Sleep(20 * time.Millisecond) // no event tells us a stranger's process died
		}
	}
}

func TestEnvironment(t *testing.T) {
	_, c := setup(t, nil)
	s := session(t, c)
	s.Setenv("LANG", "C.UTF-8")
	s.Setenv("LC_TIME", "C")
	if err := s.Setenv("EVIL", "1"); err == nil {
		t.Fatal("env EVIL accepted")
	}
	out, err := s.Output(`echo "$HOME|$USER|$LOGNAME|$SHELL|$PATH|$LANG|$LC_TIME|${EVIL-unset}|${TERM-unset}|$(pwd)"`)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "|")
	if len(f) != 10 || f[0] == "" || f[1] == "" || f[1] != f[2] || f[3] == "" || !strings.Contains(f[4], "/usr/bin") ||
		f[5] != "C.UTF-8" || f[6] != "C" || f[7] != "unset" || (f[8] != "unset" && f[8] != "dumb") || f[9] != f[0] {
		t.Fatalf("environment %q", out)
	}
}

func TestBinaryRoundTripAndEOF(t *testing.T) {
	_, c := setup(t, nil)
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	s := session(t, c)
	s.Stdin = bytes.NewReader(data)
	var errb bytes.Buffer
	s.Stderr = &errb
	out, err := s.Output("cat; echo done >&2")
	if err != nil || sha256.Sum256(out) != sha256.Sum256(data) || errb.String() != "done\n" {
		t.Fatalf("round trip: %d bytes, err %v, stderr %q", len(out), err, errb.String())
	}
}

func TestEnrollmentWithToken(t *testing.T) {
	gw := rrtest.StartGateway(t, rrtest.Config{})
	ctx := context.Background()
	gw.Store.UpsertHost(ctx, "web-07")
	sum := sha256.Sum256([]byte("tok-123"))
	if err := gw.Store.CreateEnrollToken(ctx, "web-07", sum[:], time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	key := rrtest.NewKey(t, "web07")
	actx, cancel := context.WithCancel(ctx)
	a, err := agent.New(agent.Config{Gateways: []string{gw.AgentAddr}, GatewayHostKey: gw.Fingerprint, Host: "web-07",
		Signer: key.Signer, EnrollToken: "tok-123", BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Logger: rrtest.Logger(t, "agent")})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); a.Run(actx) }()
	gw.WaitOnline("web-07")
	cancel()
	<-done
	// The key is bound: the same agent comes back without the token.
	rrtest.StartAgent(t, gw, "web-07", key, nil)
	gw.WaitOnline("web-07")
	h, _ := gw.Store.Host(ctx, "web-07")
	if !strings.HasPrefix(h.AgentKey, "ssh-ed25519 ") {
		t.Fatalf("bound key %q", h.AgentKey)
	}
}

func TestReconnectsAfterGatewayRestart(t *testing.T) {
	gw, _ := setup(t, nil)
	states := make(chan agent.State, 256)
	k := gw.AddHost("web-02")
	rrtest.StartAgent(t, gw, "web-02", k, func(c *agent.Config) {
		c.OnState = func(_ string, s agent.State, _ error) {
			select {
			case states <- s:
			default:
			}
		}
	})
	gw.WaitOnline("web-02")
	gw.Restart()
	gw.WaitOnline("web-02")
	gw.WaitOnline("web-01")
	// The agent's own view: connected, lost it, connected again.
	want := []agent.State{agent.StateConnected, agent.StateDisconnected, agent.StateConnected}
	timeout := time.After(20 * time.Second)
	for len(want) > 0 {
		select {
		case s := <-states:
			if s == want[0] {
				want = want[1:]
			}
		case <-timeout:
			t.Fatalf("states still expected: %v", want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := agent.New(agent.Config{Gateways: []string{"no-port"}, GatewayHostKey: "MD5:x"})
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"want host:port", "gateway_host_key", "no host name", "no key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := agent.New(agent.Config{Gateways: []string{"h:1"}, GatewayHostKey: "SHA256:x", Host: "h",
		Signer: rrtest.NewKey(t, "k").Signer, User: "no-such-user-rr"}); err == nil {
		t.Fatal("unknown user accepted")
	}
}

// TestPTYExitWithBackgroundHolder: a command that exits while something it
// started still holds the terminal ends the session at once, with its exit
// status, and what it left behind is killed.
func TestPTYExitWithBackgroundHolder(t *testing.T) {
	_, c := setup(t, func(c *agent.Config) { c.KillGrace = 200 * time.Millisecond })
	s := session(t, c)
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	out, err := s.Output("trap '' HUP; sleep 1000 & echo pid=$!; exit 4")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 4 {
		t.Fatalf("got %v, want exit status 4", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "pid=")))
	if err != nil {
		t.Fatalf("pid from %q: %v", out, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for unix.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("background process %d survived its session", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
