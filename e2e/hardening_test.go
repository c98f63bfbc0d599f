package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rr-gateway/rr/gateway/gatewaytest"
)

// auditFinding matches one verdict of ssh-audit's text output, on an
// algorithm's line or on a "`- " line under it.
var auditFinding = regexp.MustCompile(`\[(fail|warn)\] (.*)$`)

// TestSSHAudit runs Debian's ssh-audit against both ports of a real
// gateway: no [fail] and no [warn], except "unknown algorithm" for what is
// newer than the tool (mlkem768x25519-sha256, kex-strict-s-v00@openssh.com
// for ssh-audit 2.5.0).
func TestSSHAudit(t *testing.T) {
	audit := gatewaytest.Tool(t, "ssh-audit", "run `make test`, which installs it (apt-get install ssh-audit)")
	g, _ := startProcGateway(t, "")
	for name, addr := range map[string]string{"people": g.people, "agents": g.agents} {
		_, port, _ := net.SplitHostPort(addr)
		// ssh-audit exits non-zero for any warning, unknown algorithms
		// included: its verdicts are read from the output instead.
		out, _ := exec.Command(audit, "-n", "-t", "10", "-p", port, "127.0.0.1").CombinedOutput()
		if !strings.Contains(string(out), "(kex) ") || !strings.Contains(string(out), "(mac) ") {
			t.Fatalf("%s port: ssh-audit did not audit it:\n%s", name, out)
		}
		var bad []string
		algo := ""
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[0], "(") {
				algo = f[0] + " " + f[1]
			}
			m := auditFinding.FindStringSubmatch(line)
			if m == nil || (m[1] == "warn" && m[2] == "unknown algorithm") {
				continue
			}
			bad = append(bad, algo+": ["+m[1]+"] "+m[2])
		}
		if len(bad) > 0 {
			t.Errorf("%s port: ssh-audit found:\n  %s\nfull output:\n%s", name, strings.Join(bad, "\n  "), out)
		}
	}
}

// TestKillReasonEscaped: a kill reason typed by someone else reaches the
// killed person's terminal (the real ssh's stderr) with its bidi override
// and zero-width space escaped, not acting on their terminal.
func TestKillReasonEscaped(t *testing.T) {
	w, alice, dave, _, _ := staffWorld(t)
	ctx := testCtx(t, 2*time.Minute)
	cmd, _, errb := w.startLong(t, ctx, alice, "6001")
	id := w.liveID(t)
	const reason = "contained \u202etxt.exe\u200b now"
	if out, errOut, code := w.console(t, dave, "kill "+id+" "+reason); code != 0 || !strings.Contains(out, "killed session "+id) {
		t.Fatalf("dave's kill: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	err := cmd.Wait()
	got := errb.String()
	if exitCode(err) == 0 || !strings.Contains(got, `Session closed by dave: contained \u202etxt.exe\u200b now`) ||
		strings.ContainsAny(got, "\u202e\u200b") {
		t.Fatalf("alice's ssh: exit %d, stderr %q; want the reason escaped", exitCode(err), got)
	}
}

// TestDemoKeepsPassphraseOut runs scripts/demo.sh (what make demo runs)
// with DEMO_PASSPHRASE set, on free ports in a temporary folder: the
// passphrase ends up in the 0600 file, and no process the demo leaves
// running (the script, the gateway, the agent, the log filters) has it in
// its environment or its arguments.
func TestDemoKeepsPassphraseOut(t *testing.T) {
	secret := fmt.Sprintf("demo-secret-%d", time.Now().UnixNano())
	d := startDemo(t, "DEMO_PASSPHRASE="+secret)
	dir, pgid, stop, log := d.dir, d.pgid, d.stop, d.log
	defer stop()

	if !strings.Contains(log.String(), "DEMO MODE") {
		t.Errorf("the demo gateway did not warn that it is one:\n%s", log.String())
	}
	if fi, err := os.Stat(filepath.Join(dir, "passphrase")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("demo passphrase file: %v %v; want mode 0600", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "passphrase")); string(b) != secret+"\n" {
		t.Fatalf("demo passphrase file holds %q", b)
	}
	var seen []string
	for _, p := range processGroup(t, pgid) {
		env, _ := os.ReadFile(filepath.Join("/proc", p, "environ"))
		args, _ := os.ReadFile(filepath.Join("/proc", p, "cmdline"))
		seen = append(seen, strings.ReplaceAll(string(args), "\x00", " "))
		if strings.Contains(string(env), secret) || strings.Contains(string(args), secret) {
			t.Errorf("process %s (%s) holds the passphrase in its environment or arguments", p, strings.ReplaceAll(string(args), "\x00", " "))
		}
	}
	all := strings.Join(seen, "\n")
	if !strings.Contains(all, "rr-gateway -config") || !strings.Contains(all, "rr-agent -config") || !strings.Contains(all, "demo.sh") {
		t.Fatalf("the demo's processes: %s; want the script, the gateway and the agent", all)
	}
	stop()
}

// processGroup lists the pids of process group pgid.
func processGroup(t *testing.T, pgid int) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp …: comm may hold spaces, so after the last ')'.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			out = append(out, e.Name())
		}
	}
	return out
}

// demo is scripts/demo.sh running (what make demo runs), on free ports
// in a temporary folder, up once its gateway logged the agent.
type demo struct {
	dir  string
	pgid int
	stop func() // the demo's Ctrl-C path; idempotent
	log  *strings.Builder
	web  string // WEB_PORT
}

func startDemo(t *testing.T, env ...string) *demo {
	t.Helper()
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin+"/", "github.com/rr-gateway/rr/cmd/rr-gateway",
		"github.com/rr-gateway/rr/cmd/rr-agent").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ports := distinctPorts(t, 4)
	d := &demo{dir: t.TempDir(), log: &strings.Builder{}, web: ports[3]}
	cmd := exec.Command("bash", "../scripts/demo.sh")
	cmd.Env = append(append(os.Environ(), "DEMO_DIR="+d.dir, "DEMO_BIN="+bin,
		"GATEWAY_PORT="+ports[0], "AGENT_PORT="+ports[1], "HTTP_PORT="+ports[2], "WEB_PORT="+d.web), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the demo and all it starts: one group
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	d.pgid = cmd.Process.Pid
	stopped := false
	d.stop = func() {
		if stopped {
			return
		}
		stopped = true
		syscall.Kill(-d.pgid, syscall.SIGTERM) // the demo's Ctrl-C path stops what it started
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-d.pgid, syscall.SIGKILL)
			<-done
		}
	}
	t.Cleanup(d.stop)
	// Up: the gateway logs the agent's connection (through the demo's
	// output), after the demo printed what to type.
	r.SetReadDeadline(time.Now().Add(time.Minute))
	sc := bufio.NewScanner(r)
	for !strings.Contains(d.log.String(), "agent connected") || !strings.Contains(d.log.String(), "Ctrl-C stops both") {
		if !sc.Scan() {
			t.Fatalf("the demo did not come up (%v):\n%s", sc.Err(), d.log.String())
		}
		d.log.WriteString(sc.Text() + "\n")
	}
	// Drain the rest, so that the demo never blocks writing its log.
	go func() {
		for sc.Scan() {
		}
	}()
	return d
}

// distinctPorts returns n ports free a moment ago, all different: each
// is held until the last is chosen (a port just closed may come again).
func distinctPorts(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, p, _ := net.SplitHostPort(ln.Addr().String())
		out = append(out, p)
	}
	return out
}
