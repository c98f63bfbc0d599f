package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/auth/mail"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/internal/sshkit"
	"github.com/rr-gateway/rr/internal/testtool"
	"github.com/rr-gateway/rr/recorder"
	"github.com/rr-gateway/rr/store"
)

// world is a gateway mailing through a real mailpit, a person (alice:
// key, team ops_RR reaching web-01 and web-02) and an agent for web-01;
// web-02 is declared but has no agent.
type world struct {
	gw    *gatewaytest.Gateway
	mail  *mailpit
	alice gatewaytest.Key
	web01 gatewaytest.Key
	log   string // the askpass prompt log
	// logLevel is ssh's LogLevel: ERROR keeps output clean; INFO shows
	// the gateway's banners (the one-line reasons of refusals).
	logLevel string
}

const aliceMail = "alice@example.test"

func newWorld(t *testing.T) *world {
	return newWorldWith(t, auth.Config{}, nil)
}

// newWorldWith builds a world with acfg's auth settings; mp, if not nil,
// is the mailpit to use (with the SMTP settings in acfg.Mailer).
func newWorldWith(t *testing.T, acfg auth.Config, mp *mailpit) *world {
	t.Helper()
	testtool.Need(t, "ssh")
	if mp == nil {
		mp = startMailpit(t)
	}
	if acfg.Mailer == nil {
		m, err := mail.NewSMTPMailer(mail.SMTPConfig{Host: "127.0.0.1", Port: mp.SMTPPort, TLS: "none", From: "rr@gateway.test"})
		if err != nil {
			t.Fatal(err)
		}
		acfg.Mailer = m
	}
	alice := gatewaytest.NewKey(t, "alice")
	gw := gatewaytest.StartGateway(t, gatewaytest.Config{Auth: acfg})
	gw.AddPerson("alice", "advanced", aliceMail, "", alice)
	web01 := gw.AddHost("web-01")
	gw.AddHost("web-02")
	gw.SetPassphrase("web-01", "pp-web-01")
	gw.SetPassphrase("web-02", "pp-web-02")
	gw.AddTeam("ops_RR", true, []string{"alice"}, "web-01", "web-02")
	gatewaytest.StartAgent(t, gw, "web-01", web01, nil)
	gw.WaitOnline("web-01")
	return &world{gw: gw, mail: mp, alice: alice, web01: web01, log: filepath.Join(t.TempDir(), "askpass.log"), logLevel: "ERROR"}
}

// sshArgs are the options every test's ssh uses: no user config, this
// key, the gateway's host key pinned, one round of keyboard-interactive.
func (w *world) sshArgs(extra ...string) []string {
	_, port, _ := net.SplitHostPort(w.gw.PeopleAddr)
	args := []string{"-F", "none", "-p", port, "-i", w.alice.Path,
		"-o", "IdentitiesOnly=yes", "-o", "NumberOfPasswordPrompts=1",
		"-o", "UserKnownHostsFile=" + w.gw.KnownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "LogLevel=" + w.logLevel}
	return append(args, extra...)
}

// answers is the askpass environment that answers as alice would.
func (w *world) answers(t *testing.T, extra map[string]string) []string {
	vars := map[string]string{"RR_PASSPHRASE": "pp-web-01", "RR_MAILPIT": w.mail.API, "RR_MAIL_TO": aliceMail,
		"RR_ASKPASS_LOG": w.log}
	for k, v := range extra {
		vars[k] = v
	}
	return askpassEnv(t, vars)
}

// ssh is an ssh command that answers prompts as alice.
func (w *world) ssh(t *testing.T, ctx context.Context, extra ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ssh", w.sshArgs(extra...)...)
	cmd.Env = w.answers(t, nil)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestExecStreamsStatusAndEOF(t *testing.T) {
	w := newWorld(t)
	ctx := testCtx(t, time.Minute)

	var out, errb bytes.Buffer
	cmd := w.ssh(t, ctx, "rr+web-01@127.0.0.1", "echo to-out; echo to-err >&2; exit 3")
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if out.String() != "to-out\n" || errb.String() != "to-err\n" || exitCode(err) != 3 {
		t.Fatalf("stdout %q stderr %q exit %d; want to-out, to-err, 3", out.String(), errb.String(), exitCode(err))
	}

	// Arguments joined as sshd would, and EOF reaching the host.
	cmd = w.ssh(t, ctx, "rr+web-01@127.0.0.1", "wc", "-c")
	cmd.Stdin = strings.NewReader("abc")
	got, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(got)) != "3" {
		t.Fatalf("wc -c: %q %v", got, err)
	}

	got, err = w.ssh(t, ctx, "rr+web-01@127.0.0.1", "echo", "$((6*7))").Output()
	if err != nil || string(got) != "42\n" {
		t.Fatalf("rr+web-01: %q %v", got, err)
	}

	// A signal ends the command: the client exits non-zero and the
	// session row says which signal.
	err = w.ssh(t, ctx, "rr+web-01@127.0.0.1", "kill -TERM $$").Run()
	if exitCode(err) == 0 {
		t.Fatal("killed command: ssh exited 0")
	}
	rows, _ := w.gw.Store.Sessions(ctx, store.SessionFilter{})
	if len(rows) == 0 || rows[0].EndReason != "signal TERM" {
		t.Fatalf("newest session row %+v, want reason signal TERM", rows[0])
	}
}

func TestExecBinaryBulk(t *testing.T) {
	w := newWorld(t)
	ctx := testCtx(t, 3*time.Minute)
	size := 100 << 20
	if s := os.Getenv("RR_E2E_BULK_MIB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		size = n << 20
	}
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)

	cmd := w.ssh(t, ctx, "rr+web-01@127.0.0.1", "cat")
	cmd.Stdin = bytes.NewReader(data)
	h := sha256.New()
	n := &countWriter{w: h}
	cmd.Stdout = n
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if n.n != int64(size) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("got %d bytes, sha256 %x; sent %d, sha256 %x", n.n, h.Sum(nil), size, want)
	}
	// The recording holds both directions exactly, binary and all.
	rows, _ := w.gw.Store.Sessions(ctx, store.SessionFilter{})
	f, err := os.Open(rows[0].Recording)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := recorder.NewReader(f, "pp-web-01")
	if err != nil {
		t.Fatal(err)
	}
	hin, hout := sha256.New(), sha256.New()
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Code {
		case "i":
			hin.Write(ev.Data)
		case "o":
			hout.Write(ev.Data)
		}
	}
	if !bytes.Equal(hin.Sum(nil), want[:]) || !bytes.Equal(hout.Sum(nil), want[:]) {
		t.Fatal("the recording does not hold the bytes that crossed")
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.w.Write(p)
}

func TestRefusedHostsSayWhy(t *testing.T) {
	w := newWorld(t)
	ctx := testCtx(t, time.Minute)
	for _, tt := range []struct{ host, want string }{
		{"nosuch", `rr: no host "nosuch" that you may reach`},
		{"web-02", `rr: host "web-02" is offline`},
		{"web-01", `rr: the passphrase for web-01 cannot be asked without a terminal: add -t`},
	} {
		var errb bytes.Buffer
		cmd := w.ssh(t, ctx, "rr@127.0.0.1", tt.host, "true")
		cmd.Stderr = &errb
		err := cmd.Run()
		if exitCode(err) != 1 || !strings.HasPrefix(errb.String(), tt.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q; want 1 and one line %q", tt.host, exitCode(err), errb.String(), tt.want)
		}
	}
}

func TestForwardingRefused(t *testing.T) {
	w := newWorld(t)
	ctx := testCtx(t, time.Minute)
	var errb bytes.Buffer
	cmd := w.ssh(t, ctx, "-W", w.gw.AgentAddr, "rr@127.0.0.1")
	cmd.Stderr = &errb
	if err := cmd.Run(); err == nil || !strings.Contains(errb.String(), "forwarding failed") {
		t.Fatalf("ssh -W: %v, stderr %q; want refused", err, errb.String())
	}
	errb.Reset()
	cmd = w.ssh(t, ctx, "-N", "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9", "rr@127.0.0.1")
	cmd.Stderr = &errb
	if err := cmd.Run(); err == nil || !strings.Contains(errb.String(), "forwarding failed") {
		t.Fatalf("ssh -R: %v, stderr %q; want refused", err, errb.String())
	}
	errb.Reset()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // a free port for -L
	cmd = w.ssh(t, ctx, "-N", "-o", "ExitOnForwardFailure=yes", "-L", ln.Addr().String()+":127.0.0.1:9", "rr@127.0.0.1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// -L opens its channel when a connection arrives: it must be refused.
	var c net.Conn
	for i := 0; i < 100; i++ {
		if c, err = net.Dial("tcp", ln.Addr().String()); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond) // ssh is still starting its listener
	}
	if c == nil {
		t.Fatalf("ssh -L never listened: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	c.Close()
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ssh -L connection: read %d, %v; want it closed at once", n, err)
	}
	// Each refusal was audited: -W and -L as direct-tcpip channels, -R as
	// a tcpip-forward request.
	events, err := w.gw.Store.AuditEvents(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	refused := map[string]int{}
	for _, ev := range events {
		if ev.Action == "forward" && ev.Outcome == "denied" {
			refused[ev.Target]++
		}
	}
	if refused["direct-tcpip"] != 2 || refused["tcpip-forward"] != 1 {
		t.Fatalf("audited refusals %v; want direct-tcpip 2, tcpip-forward 1", refused)
	}
}

func TestAgentReconnectsAfterGatewayRestart(t *testing.T) {
	w := newWorld(t)
	ctx := testCtx(t, time.Minute)
	w.gw.Restart()
	w.gw.WaitOnline("web-01")
	got, err := w.ssh(t, ctx, "rr+web-01@127.0.0.1", "echo back").CombinedOutput()
	if err != nil || string(got) != "back\n" {
		t.Fatalf("after restart: %q %v", got, err)
	}
}

func TestAgentRefusesWrongGatewayKey(t *testing.T) {
	w := newWorld(t)
	ctx := testCtx(t, time.Minute)
	key := w.gw.AddHost("web-03")
	impostor := gatewaytest.NewKey(t, "impostor")
	states := make(chan error, 16)
	gatewaytest.StartAgent(t, w.gw, "web-03", key, func(c *agent.Config) {
		c.GatewayHostKey = ssh.FingerprintSHA256(impostor.Signer.PublicKey())
		c.OnState = func(_ string, s agent.State, err error) {
			if err != nil {
				select {
				case states <- err:
				default:
				}
			}
		}
	})
	select {
	case err := <-states:
		if !errors.Is(err, sshkit.ErrHostKeyMismatch) {
			t.Fatalf("agent error %v, want a host key mismatch", err)
		}
	case <-ctx.Done():
		t.Fatal("agent reported no error")
	}
	if w.gw.Srv.Online("web-03") {
		t.Fatal("an agent pinned to another key got through")
	}
}

// tmux is a terminal the tests type into and read, as a person would.
type tmux struct {
	t    *testing.T
	sock string
}

func startTmux(t *testing.T, cols, rows int, command string) *tmux {
	t.Helper()
	testtool.Need(t, "tmux")
	dir, err := os.MkdirTemp("", "rrtmux")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "tmux.conf")
	os.WriteFile(conf, []byte("set -g status off\nset -g default-terminal xterm-256color\nset -g history-limit 5000\n"), 0o644)
	m := &tmux{t: t, sock: filepath.Join(dir, "s")}
	m.run("-f", conf, "new-session", "-d", "-s", "rr", "-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows), command)
	t.Cleanup(func() { exec.Command("tmux", "-S", m.sock, "kill-server").Run() })
	return m
}

func (m *tmux) run(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", m.sock}, args...)...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

func (m *tmux) send(keys ...string) {
	m.t.Helper()
	m.run(append([]string{"send-keys", "-t", "rr"}, keys...)...)
}

// line types a line and Enter.
func (m *tmux) line(s string) { m.t.Helper(); m.send("-l", s); m.send("Enter") }

func (m *tmux) screen() string { return m.run("capture-pane", "-p", "-t", "rr", "-S", "-1000") }

// waitFor polls the screen (tmux offers no event for it) for up to 20 s.
func (m *tmux) waitFor(want string) {
	m.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := m.screen()
		if strings.Contains(s, want) {
			return
		}
		if time.Now().After(deadline) {
			lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
			m.t.Fatalf("timed out waiting for %q; end of the screen:\n%s", want, strings.Join(lines[max(0, len(lines)-25):], "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForLast polls until the screen's last non-empty line satisfies ok.
func (m *tmux) waitForLast(ok func(string) bool) {
	m.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		lines := strings.Split(strings.TrimRight(m.screen(), "\n "), "\n")
		last := strings.TrimSpace(lines[len(lines)-1])
		if ok(last) {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("timed out; last line of the screen: %q", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// terminalFactors answers the passphrase and the code on the terminal,
// as a person does after ssh -t rr@gw HOST; after is how many mails alice
// had before.
func (w *world) terminalFactors(m *tmux, after int) {
	m.t.Helper()
	m.waitFor("Team: ops_RR\nPassphrase for web-01:")
	m.line("pp-web-01")
	m.waitFor("Code sent to a***@example.test:")
	code, err := newestCode(w.mail.API, aliceMail, after)
	if err != nil {
		m.t.Fatal(err)
	}
	m.line(code)
	if s := m.screen(); strings.Contains(s, "pp-web-01") || strings.Contains(s, code) {
		m.t.Fatalf("a secret was echoed:\n%s", s)
	}
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func TestInteractiveShell(t *testing.T) {
	testtool.Need(t, "gzip", "openssl", "asciinema", "script")
	w := newWorld(t)
	ssh := "ssh " + shellQuote(w.sshArgs("-t", "rr@127.0.0.1", "web-01"))
	m := startTmux(t, 100, 30, ssh+"; echo EXIT=$?; sleep 600")
	w.terminalFactors(m, 0)

	m.line("echo T=$TERM; stty size; tput cols")
	m.waitFor("T=xterm-256color")
	m.waitFor("30 100\n100")

	m.run("resize-window", "-t", "rr", "-x", "120", "-y", "40")
	m.line("stty size; tput cols")
	m.waitFor("40 120\n120")

	// Ctrl-C reaches the foreground process as SIGINT.
	m.line(`sh -c 'trap "echo got-INT; exit 5" INT; echo waiting; while :; do sleep 0.1; done'; echo rc=$?`)
	m.waitFor("waiting\n")
	m.send("C-c")
	m.waitFor("got-INT")
	m.waitFor("rc=5")

	// Full-screen programs: top draws and quits; vi edits a file.
	m.line("top")
	m.waitFor("load average")
	m.send("q")
	m.line("echo top-$((1+1))")
	m.waitFor("top-2")
	file := filepath.Join(t.TempDir(), "note.txt")
	m.line("vi " + file)
	m.waitFor(`note.txt" [New`)
	m.send("i")
	m.send("-l", "written in vi")
	m.send("Escape")
	m.line(":wq")
	// The host is this machine: the file vi wrote is right here.
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		if string(b) == "written in vi\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vi did not write the file (%q); screen:\n%s", b, m.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// vim swallows what is typed while it exits: wait for the prompt.
	m.waitForLast(func(l string) bool { return strings.HasSuffix(l, "#") || strings.HasSuffix(l, "$") })
	m.line("echo vi-$((1+1))")
	m.waitFor("vi-2")

	m.line("exit 3")
	m.waitFor("EXIT=3")

	// The recording: the stock tools decrypt it with the host's passphrase,
	// and it holds what was typed, what was shown, and how it ended.
	rows, err := w.gw.Store.Sessions(context.Background(), store.SessionFilter{})
	if err != nil || len(rows) != 1 {
		t.Fatalf("sessions %v %v", rows, err)
	}
	row := rows[0]
	if row.Recording == "" || row.RecordingSize == 0 || len(row.RecordingSHA256) != 64 {
		t.Fatalf("recording not finalized in the store: %+v", row)
	}
	plain, err := exec.Command("bash", "-c", `set -o pipefail; gzip -dc "$1" | openssl enc -d -aes-256-ctr -pbkdf2 -k "$2"`,
		"x", row.Recording, "pp-web-01").Output()
	if err != nil {
		t.Fatalf("stock decryption: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(plain)), "\n")
	for _, want := range []string{`"session_id":"` + row.ID + `"`, `"i", "echo T=$TERM`, `T=xterm-256color`, `"r", "120x40"`} {
		if !strings.Contains(string(plain), want) {
			t.Errorf("recording lacks %q", want)
		}
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, `"x"`) || !strings.Contains(last, `exit 3`) {
		t.Errorf("last event %q does not say exit 3", last)
	}
	// Debian's asciinema plays it (it wants a terminal: script gives one).
	cast := filepath.Join(t.TempDir(), "s.cast")
	os.WriteFile(cast, plain, 0o600)
	out, err := exec.Command("script", "-qec", "asciinema cat "+cast, "/dev/null").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "T=xterm-256color") {
		t.Errorf("asciinema cat: %v: %.300s", err, out)
	}
}

func TestHostMenu(t *testing.T) {
	w := newWorld(t)
	ssh := "ssh " + shellQuote(w.sshArgs("-t", "rr@127.0.0.1"))
	m := startTmux(t, 100, 30, ssh+"; echo EXIT=$?; sleep 600")
	m.waitFor("Host (number or name")
	s := m.screen()
	if !strings.Contains(s, "web-01   online") || !strings.Contains(s, "web-02   offline") {
		t.Fatalf("menu:\n%s", s)
	}
	m.line("web-02")
	m.waitFor("web-02 is offline")
	m.line("1")
	w.terminalFactors(m, 0)
	m.line("hostname >/dev/null; echo in-shell-$((1+1))")
	m.waitFor("in-shell-2")
	m.line("exit")
	m.waitFor("EXIT=0")
}
