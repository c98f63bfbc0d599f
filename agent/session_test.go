package agent_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/wire"
)

func TestExecStdoutStderrAndStatus(t *testing.T) {
	e := setup(t, nil)
	s := openSession(t, e.conn).collect()
	s.exec("echo out; echo err >&2; echo more; exit 3")
	if got := s.out.all(t); got != "out\nmore\n" {
		t.Errorf("stdout %q", got)
	}
	if got := s.err.all(t); got != "err\n" {
		t.Errorf("stderr %q", got)
	}
	if x := s.wait(); x.status != 3 || x.signal != "" {
		t.Fatalf("exit %+v, want status 3", x)
	}
}

func TestBinaryRoundTripAndEOF(t *testing.T) {
	e := setup(t, nil)
	data := make([]byte, 4<<20+123)
	rand.Read(data)
	s := openSession(t, e.conn).collect()
	s.exec("cat; echo done >&2")
	go func() {
		s.ch.Write(data)
		s.ch.CloseWrite() // cat ends only if this EOF reaches it
	}()
	out := s.out.all(t)
	if sha256.Sum256([]byte(out)) != sha256.Sum256(data) {
		t.Fatalf("round trip: %d bytes back of %d, not the same", len(out), len(data))
	}
	if got := s.err.all(t); got != "done\n" {
		t.Errorf("stderr %q", got)
	}
	if x := s.wait(); x.status != 0 {
		t.Fatalf("exit %+v", x)
	}
}

func TestExitSignal(t *testing.T) {
	e := setup(t, nil)
	s := openSession(t, e.conn).collect()
	s.exec("kill -9 $$")
	if x := s.wait(); x.signal != "KILL" || x.status != -1 {
		t.Fatalf("exit %+v, want signal KILL", x)
	}
}

func TestSignalRequestINT(t *testing.T) {
	e := setup(t, nil)
	s := openSession(t, e.conn).collect()
	s.exec("echo ready; exec sleep 100")
	s.out.waitFor(t, "ready\n")
	if !s.req(wire.ReqSignal, &wire.Signal{Name: "INT"}) {
		t.Fatal("signal refused")
	}
	if x := s.wait(); x.signal != "INT" {
		t.Fatalf("exit %+v, want signal INT", x)
	}
	s2 := openSession(t, e.conn)
	if s2.req(wire.ReqSignal, &wire.Signal{Name: "INT"}) {
		t.Error("signal before any process accepted")
	}
}

// TestPTYSignalGoesToTheForegroundJob: with a terminal, INT goes to its
// foreground job (as ^C would), not to the shell.
func TestPTYSignalGoesToTheForegroundJob(t *testing.T) {
	e := setup(t, nil)
	s := openSession(t, e.conn).collect()
	if !s.req(wire.ReqPTY, &wire.PTYRequest{Term: "xterm", Columns: 80, Rows: 24}) || !s.req(wire.ReqShell, nil) {
		t.Fatal("pty-req or shell refused")
	}
	s.ch.Write([]byte("echo ready; sleep 100\n"))
	s.out.waitFor(t, `ready\r?\n`)
	time.Sleep(200 * time.Millisecond) // sleep is the foreground job now
	if !s.req(wire.ReqSignal, &wire.Signal{Name: "INT"}) {
		t.Fatal("signal refused")
	}
	s.ch.Write([]byte("echo after=$?\n"))
	s.out.waitFor(t, `after=130`)
	s.ch.Write([]byte("exit 4\n"))
	if x := s.wait(); x.status != 4 {
		t.Fatalf("exit %+v, want the shell's own exit 4", x)
	}
}

func TestPTYShellTermAndWindowChange(t *testing.T) {
	e := setup(t, nil)
	s := openSession(t, e.conn).collect()
	if !s.req(wire.ReqPTY, &wire.PTYRequest{Term: "xterm-rr", Columns: 100, Rows: 30}) {
		t.Fatal("pty-req refused")
	}
	if !s.req(wire.ReqShell, nil) {
		t.Fatal("shell refused")
	}
	s.ch.Write([]byte("echo T=$TERM S=$(stty size) A=$0\n"))
	m := s.out.waitFor(t, `T=(\S+) S=(\d+ \d+) A=(\S+)`)
	if m[1] != "xterm-rr" || m[2] != "30 100" || !strings.HasPrefix(m[3], "-") {
		t.Fatalf("TERM %q, size %q, argv[0] %q", m[1], m[2], m[3])
	}
	if _, err := s.ch.SendRequest(wire.ReqWindowChange, false, ssh.Marshal(&wire.WindowChange{Columns: 120, Rows: 40})); err != nil {
		t.Fatal(err)
	}
	// Requests are handled in order: once this one is answered, the
	// window-change has been applied (data may overtake requests).
	if s.req("sync@test", nil) {
		t.Fatal("unknown request accepted")
	}
	s.ch.Write([]byte("echo W=$(stty size)\n"))
	if m := s.out.waitFor(t, `W=(\d+ \d+)`); m[1] != "40 120" {
		t.Fatalf("size after window-change %q", m[1])
	}
	s.ch.Write([]byte("exit 5\n"))
	if x := s.wait(); x.status != 5 {
		t.Fatalf("exit %+v, want 5", x)
	}
}

// TestClosingKillsEverything: what a session started, even in the
// background, ignoring SIGHUP, or as a job of an interactive shell (a
// process group of its own), dies when the gateway closes the channel.
func TestClosingKillsEverything(t *testing.T) {
	e := setup(t, nil)
	for _, tc := range []struct {
		name     string
		pty      bool
		shell    string // typed into an interactive shell, if set
		exec     string
		wantPIDs int
	}{
		{name: "exec", exec: "trap '' HUP; sleep 1000 & echo pids=$$,$!; sleep 1000"},
		{name: "exec-pty", pty: true, exec: "trap '' HUP; sleep 1000 & echo pids=$$,$!; sleep 1000"},
		{name: "shell-job", pty: true, shell: "trap '' HUP; sleep 1000 & echo pids=$$,$!\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openSession(t, e.conn).collect()
			if tc.pty && !s.req(wire.ReqPTY, &wire.PTYRequest{Term: "xterm", Columns: 80, Rows: 24}) {
				t.Fatal("pty-req refused")
			}
			if tc.shell != "" {
				if !s.req(wire.ReqShell, nil) {
					t.Fatal("shell refused")
				}
				s.ch.Write([]byte(tc.shell))
			} else {
				s.exec(tc.exec)
			}
			m := s.out.waitFor(t, `pids=(\d+),(\d+)`)
			s.ch.Close()
			for _, pid := range m[1:] {
				waitGone(t, atoi(t, pid))
			}
			s.wait()
		})
	}
}

func TestEnvironmentAndRefusedRequests(t *testing.T) {
	t.Setenv("RR_ENROLL_TOKEN", "agent-secret") // the agent's own environment must not reach a session
	e := setup(t, nil)
	s := openSession(t, e.conn).collect()
	if !s.req(wire.ReqEnv, &wire.Env{Name: "LANG", Value: "C.UTF-8"}) ||
		!s.req(wire.ReqEnv, &wire.Env{Name: "LC_TIME", Value: "C"}) ||
		!s.req(wire.ReqEnv, &wire.Env{Name: "TZ", Value: "UTC"}) {
		t.Fatal("allowed env refused")
	}
	for _, name := range []string{"EVIL", "LD_PRELOAD", "PATH", "RR_SESSION_ID"} {
		if s.req(wire.ReqEnv, &wire.Env{Name: name, Value: "x"}) {
			t.Errorf("env %s accepted", name)
		}
	}
	for _, r := range []string{wire.ReqX11, wire.ReqAuthAgent, "no-such-request"} {
		if s.req(r, nil) {
			t.Errorf("%s accepted", r)
		}
	}
	if s.req(wire.ReqSubsystem, &wire.Command{Command: "sftp"}) {
		t.Error("subsystem accepted")
	}
	s.exec(`echo "$HOME|$USER|$LOGNAME|$SHELL|$PATH|$LANG|$LC_TIME|$TZ|${EVIL-unset}|$(printenv TERM || echo unset)|$RR_SESSION_ID|$(pwd)|${RR_ENROLL_TOKEN-unset}"; read x; exit 0`)
	if s.req(wire.ReqExec, &wire.Command{Command: "echo second"}) || s.req(wire.ReqShell, nil) {
		t.Error("a second process accepted")
	}
	if s.req(wire.ReqEnv, &wire.Env{Name: "LANG", Value: "C"}) {
		t.Error("env after the start accepted")
	}
	s.ch.CloseWrite()
	out := s.out.all(t)
	u, _ := user.Current()
	path := "/usr/local/bin:/usr/bin:/bin"
	if u.Uid == "0" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	dir := u.HomeDir
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = "/"
	}
	dir, _ = filepath.EvalSymlinks(dir)
	f := strings.Split(strings.TrimSpace(out), "|")
	if len(f) != 13 || f[0] != u.HomeDir || f[1] != u.Username || f[2] != u.Username || f[3] == "" || f[4] != path ||
		f[5] != "C.UTF-8" || f[6] != "C" || f[7] != "UTC" || f[8] != "unset" || f[9] != "unset" ||
		!strings.HasPrefix(f[10], "s") || f[11] != dir || f[12] != "unset" {
		t.Fatalf("environment %q", out)
	}
	if x := s.wait(); x.status != 0 {
		t.Fatalf("exit %+v", x)
	}
}

func TestCannotStart(t *testing.T) {
	shell := filepath.Join(t.TempDir(), "notexec")
	if err := os.WriteFile(shell, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := setup(t, func(c *agent.Config) { c.Shell = shell })
	s := openSession(t, e.conn).collect()
	s.exec("true")
	if got := s.err.all(t); !strings.Contains(got, "rr-agent: cannot start shell:") {
		t.Errorf("stderr %q", got)
	}
	if x := s.wait(); x.status != 126 && x.status != 127 {
		t.Fatalf("exit %+v, want 126 or 127", x)
	}
}

func TestMalformedAndUnknownChannels(t *testing.T) {
	e := setup(t, nil)
	_, _, err := e.conn.OpenChannel(wire.ChannelSession, []byte{0, 0, 0, 9, 'x'})
	if oe, ok := err.(*ssh.OpenChannelError); !ok || oe.Reason != ssh.ConnectionFailed {
		t.Errorf("malformed open: %v", err)
	}
	_, _, err = e.conn.OpenChannel("session", nil)
	if oe, ok := err.(*ssh.OpenChannelError); !ok || oe.Reason != ssh.UnknownChannelType {
		t.Errorf("session channel: %v", err)
	}
	_, _, err = e.conn.OpenChannel("direct-tcpip", nil)
	if oe, ok := err.(*ssh.OpenChannelError); !ok || oe.Reason != ssh.UnknownChannelType {
		t.Errorf("direct-tcpip channel: %v", err)
	}
	// The tunnel still serves sessions.
	s := openSession(t, e.conn).collect()
	s.exec("echo fine")
	if got := s.out.all(t); got != "fine\n" {
		t.Fatalf("stdout %q", got)
	}
}

func TestGlobalRequests(t *testing.T) {
	e := setup(t, nil)
	if ok, _, err := e.conn.SendRequest(wire.ReqKeepalive, true, nil); err != nil || !ok {
		t.Errorf("keepalive: %v %v", ok, err)
	}
	if ok, _, err := e.conn.SendRequest("tcpip-forward", true, ssh.Marshal(struct {
		Addr string
		Port uint32
	}{"0.0.0.0", 2222})); err != nil || ok {
		t.Errorf("tcpip-forward: %v %v", ok, err)
	}
}

// TestRunEndsSessions: stopping the agent ends its sessions' processes
// before Run returns.
func TestRunEndsSessions(t *testing.T) {
	e := setup(t, nil)
	s := openSession(t, e.conn).collect()
	s.exec("trap '' HUP; sleep 1000 & echo pids=$$,$!; wait")
	m := s.out.waitFor(t, `pids=(\d+),(\d+)`)
	e.stop()
	for _, pid := range m[1:] {
		waitGone(t, atoi(t, pid))
	}
}

// TestRunAsOtherUser runs a session as nobody (root only).
func TestRunAsOtherUser(t *testing.T) {
	nobody, e := asNobody(t)
	s := openSession(t, e.conn).collect()
	s.exec(`echo "$(id -u) $(id -g) $USER $PATH"`)
	want := nobody.Uid + " " + nobody.Gid + " nobody /usr/local/bin:/usr/bin:/bin\n"
	if got := s.out.all(t); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if x := s.wait(); x.status != 0 {
		t.Fatalf("exit %+v", x)
	}
}

func TestNonRootCannotSwitchUser(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs as root")
	}
	_, err := agent.New(agent.Config{Gateways: []string{"h:1"}, GatewayHostKey: "SHA256:x", Host: "h",
		Signer: newSigner(t), User: "root"})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("root")) {
		t.Fatalf("got %v", err)
	}
}

// TestPTYOutputWaitsForASlowGateway: a pty session's process exits while
// the gateway is not taking output (a slow person, a full window); every
// byte it wrote still arrives, before its exit status.
func TestPTYOutputWaitsForASlowGateway(t *testing.T) {
	e := setup(t, nil)
	s := openSession(t, e.conn)
	if !s.req(wire.ReqPTY, &wire.PTYRequest{Term: "xterm", Columns: 80, Rows: 24}) {
		t.Fatal("pty-req refused")
	}
	const n = 2<<20 + 8000 // the window, and a tail the pty holds once the process has exited
	s.exec(fmt.Sprintf("head -c %d /dev/zero | tr '\\0' a", n))
	time.Sleep(4 * time.Second) // longer than any drain limit: the window stays full
	b, _ := io.ReadAll(s.ch)
	x := s.wait()
	if len(b) != n || x.status != 0 {
		t.Fatalf("got %d of %d bytes, exit %+v", len(b), n, x)
	}
}

// TestEscapedStdinDoesNotHoldTheAgent: a process that left the session
// keeps the session's stdin open and reads nothing, and the person sent
// more than a pipe holds; closing the session still ends its goroutines,
// so the agent stops (and could reconnect).
func TestEscapedStdinDoesNotHoldTheAgent(t *testing.T) {
	e := setup(t, nil)
	s := openSession(t, e.conn).collect()
	s.exec("exec 3<&0; setsid sleep 1000 <&3 >/dev/null 2>&1 & echo pid=$!; exec 3<&-; exec sleep 1000 </dev/null")
	m := s.out.waitFor(t, `pid=(\d+)`)
	pid := atoi(t, m[1])
	defer syscall.Kill(pid, syscall.SIGKILL)
	s.ch.Write(make([]byte, 256<<10)) // nobody reads it: the pipe fills
	time.Sleep(300 * time.Millisecond)
	s.ch.Close()
	stopped := make(chan struct{})
	go func() { e.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL) // so that the test can end
		<-stopped
		t.Fatal("the agent did not stop while an escaped process held the session's stdin")
	}
}

// procState is the state letter of /proc/PID/stat ("" if there is no such
// process).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if f := bytes.Fields(b[i+1:]); i >= 0 && len(f) > 0 {
		return string(f[0])
	}
	return ""
}

// TestEndedProcessKeepsItsPIDUntilTheSessionIsOver: while a session whose
// process has ended is still open (an escaped process holds its output),
// the process stays a zombie, so that its number — the session's and its
// group's, which the agent signals at the end — cannot go to a stranger;
// it is reaped once the session is over.
func TestEndedProcessKeepsItsPIDUntilTheSessionIsOver(t *testing.T) {
	e := setup(t, nil)
	s := openSession(t, e.conn).collect()
	s.exec("setsid sleep 1000 & echo pids=$$,$!")
	m := s.out.waitFor(t, `pids=(\d+),(\d+)`)
	leader, escaped := atoi(t, m[1]), atoi(t, m[2])
	defer syscall.Kill(escaped, syscall.SIGKILL)
	deadline := time.Now().Add(waitLimit)
	for procState(leader) != "Z" {
		if time.Now().After(deadline) {
			t.Fatalf("the ended leader %d is %q, want a zombie while the session is open", leader, procState(leader))
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if st := procState(leader); st != "Z" {
		t.Fatalf("the ended leader %d is %q before the session is over, want a zombie", leader, st)
	}
	s.ch.Close()
	waitGone(t, leader)
	if procState(escaped) == "" {
		t.Fatal("the escaped process (outside the session) was killed")
	}
}

// TestPTYBelongsToTheSessionUser: a PTY session run as another account
// owns its terminal (group tty, mode 0620, as sshd gives it), so that what
// reopens it can; a size too big for the terminal is clamped, not wrapped
// to 0.
func TestPTYBelongsToTheSessionUser(t *testing.T) {
	nobody, e := asNobody(t)
	s := openSession(t, e.conn).collect()
	if !s.req(wire.ReqPTY, &wire.PTYRequest{Term: "xterm", Columns: 70000, Rows: 24}) {
		t.Fatal("pty-req refused")
	}
	group := nobody.Gid
	if g, err := user.LookupGroup("tty"); err == nil {
		group = g.Gid
	}
	s.exec(`t=$(tty); echo "owner=$(stat -c %u:%g:%a "$t") size=$(stty size)"; echo reopened >"$t" && echo ok`)
	m := s.out.waitFor(t, `owner=(\d+):(\d+):(\d+) size=(\d+ \d+)`)
	if m[1] != nobody.Uid || m[2] != group || m[3] != "620" || m[4] != "24 65535" {
		t.Errorf("terminal owned %s:%s mode %s, size %q; want %s:%s, 620 and 24 65535", m[1], m[2], m[3], m[4], nobody.Uid, group)
	}
	s.out.waitFor(t, `reopened\r?\nok`)
	if x := s.wait(); x.status != 0 {
		t.Fatalf("exit %+v", x)
	}
}

// TestPTYModesAreApplied: the terminal modes of the pty-req (here: erase
// is ^H, UTF-8 line editing on, echo of control characters off) are the
// terminal's, as sshd makes them.
func TestPTYModesAreApplied(t *testing.T) {
	e := setup(t, nil)
	s := openSession(t, e.conn).collect()
	mode := func(op byte, v uint32) []byte { return []byte{op, byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
	modes := slices.Concat(mode(ssh.VERASE, 8), mode(ssh.IUTF8, 1), mode(ssh.ECHOCTL, 0), mode(ssh.TTY_OP_ISPEED, 38400), []byte{0})
	if !s.req(wire.ReqPTY, &wire.PTYRequest{Term: "xterm", Columns: 80, Rows: 24, Modes: string(modes)}) {
		t.Fatal("pty-req refused")
	}
	s.exec("stty -a")
	out := s.out.all(t)
	for _, want := range []string{`erase = \^H;`, `(^|\s)iutf8\b`, `(^|\s)-echoctl\b`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("stty -a has no %s:\n%s", want, out)
		}
	}
}

// asNobody starts an agent whose sessions run as nobody (root only: the
// test is skipped otherwise).
func asNobody(t *testing.T) (*user.User, *env) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	return nobody, setup(t, func(c *agent.Config) { c.User, c.Shell = "nobody", "/bin/sh" })
}
