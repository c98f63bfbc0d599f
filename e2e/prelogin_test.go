package e2e

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rr-gateway/rr/internal/testtool"
)

// TestFloodKeepsNoOneOut is issue 14's descriptor exhaustion with the real
// parts: the real rr-gateway, allowed 256 descriptors, gets 3 000 silent
// connections from 127.0.0.1; a person logging in with the real ssh from
// 127.0.0.2 still gets in, well under a second, and the gateway never runs
// out of descriptors.
func TestFloodKeepsNoOneOut(t *testing.T) {
	testtool.Need(t, "ssh")
	g, cmd := startProcGateway(t, "")
	lim := unix.Rlimit{Cur: 256, Max: 256}
	if err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		t.Fatal(err)
	}
	const flood = 3000
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}
	for range flood {
		c, err := d.Dial("tcp", g.people)
		if errors.Is(err, syscall.ECONNRESET) {
			continue // refused before the dial returned
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	ctx := testCtx(t, time.Minute)
	start := time.Now()
	out, err := g.w.ssh(t, ctx, "-b", "127.0.0.2", "rr@127.0.0.1").CombinedOutput()
	took := time.Since(start)
	if err != nil || !strings.Contains(string(out), "web-01") {
		t.Fatalf("ssh behind the flood (%v): %v\n%s", took, err, out)
	}
	t.Logf("real ssh from 127.0.0.2 behind %d junk connections: logged in and listed the hosts in %v", flood, took)
	if took > time.Second {
		t.Errorf("login took %v behind the flood, want well under 1 s", took)
	}
	if log := g.log(); strings.Contains(log, "too many open files") || !strings.Contains(log, "unauthenticated connections refused") {
		t.Errorf("gateway log: want refusals and no descriptor exhaustion:\n%.3000s", log)
	}
}

// TestSSHNIsClosed: ssh -N (a login that never opens a channel) is closed
// after the login grace time; the real client exits.
func TestSSHNIsClosed(t *testing.T) {
	testtool.Need(t, "ssh")
	g, _ := startProcGateway(t, "login_grace_time: 2s\n")
	ctx := testCtx(t, time.Minute)
	start := time.Now()
	cmd := g.w.ssh(t, ctx, "-N", "rr@127.0.0.1")
	err := cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("ssh -N still connected after %v", took)
	}
	if took < 2*time.Second || took > 20*time.Second {
		t.Fatalf("ssh -N ended after %v (%v), want about the 2 s login grace", took, err)
	}
	if !strings.Contains(g.log(), "connection closed: no channel open") {
		t.Errorf("the gateway did not log why:\n%.3000s", g.log())
	}
}
