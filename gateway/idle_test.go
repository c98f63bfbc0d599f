package gateway_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
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
// host's stderr is read by the output pump, after the output), and its
// connection and the host's tunnel are served on goroutines that did not
// run their logins (whose stacks grew deep): what an idle session costs
// in stacks.
func TestIdlePTYSessionGoroutines(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	_, in, out := ptyShell(t, e.dial(t, "rr+web-01", e.alice.Signer), "xterm", 24, 80)
	io.WriteString(in, "echo idle-$((6*7))\r")
	waitFor(t, out, "idle-42")
	if n := goroutinesIn("gateway.pump("); n != 2 {
		t.Errorf("%d pumps for one idle PTY session, want 2", n)
	}
	// The connection's and the tunnel's loops run on goroutines the login
	// handed them to, not on the ones that logged them in.
	handedOff := "created by github.com/rr-gateway/rr/gateway.(*Server).connection in"
	if n := goroutinesIn("gateway.(*personConn).serve(", handedOff); n != 1 {
		t.Errorf("%d person connections served on a fresh goroutine, want 1", n)
	}
	if n := goroutinesIn("gateway.holdTunnel(", handedOff); n != 1 {
		t.Errorf("%d tunnels held on a fresh goroutine, want 1", n)
	}
	// The bridge runs on a goroutine of its own, not under the set-up's
	// frames (runSession's): its stack settles at 4 KiB, not 8.
	if n := goroutinesIn("gateway.(*bridge).run(", "gateway.(*personConn).runSession("); n != 0 {
		t.Errorf("%d bridges running under runSession's frames, want 0", n)
	}
	if n := goroutinesIn("gateway.(*bridge).run(", "created by github.com/rr-gateway/rr/gateway.(*personConn).runSession in"); n != 1 {
		t.Errorf("%d bridges handed to a fresh goroutine, want 1", n)
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
