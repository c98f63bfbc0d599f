package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/internal/rrtest"
	"github.com/rr-gateway/rr/internal/sshkit"
	"github.com/rr-gateway/rr/store"
)

// buildBinaries builds the programs once per test binary run.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/rr-gateway/rr/cmd/rr-gateway", "github.com/rr-gateway/rr/cmd/rr")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return dir
}

func waitPort(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never listened", addr)
		}
		time.Sleep(20 * time.Millisecond) // a child process gives no readiness event
	}
}

// TestGatewayKilledMidSession: a gateway killed with SIGKILL leaves a
// recording whose decryptable prefix holds what was flushed; the next
// start marks the session interrupted and seals the file as it stands.
func TestGatewayKilledMidSession(t *testing.T) {
	bin := buildBinaries(t)
	mp := startMailpit(t)
	dir := t.TempDir()
	alice := rrtest.NewKey(t, "alice")
	agentKey := rrtest.NewKey(t, "agent")
	verifier, err := auth.HashSecret("pp-web-01")
	if err != nil {
		t.Fatal(err)
	}
	people, agents := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`listen: %s
agent_listen: %s
host_key: %s/host_key
database: %s/rr.db
log: {format: text, level: debug}
recordings: {spool: %s/spool, flush_interval: 200ms}
mail: {mode: smtp, from: rr@gateway.test, smtp: {host: 127.0.0.1, port: %d, tls: none}}
people: [{name: alice, email: %s, role: advanced, key_files: [%s.pub]}]
teams: [{name: ops_RR, rapid_response: true, members: [alice], hosts: ["*"]}]
hosts: [{name: web-01, passphrase_verifier: '%s', agent_key_file: %s.pub}]
`, people, agents, dir, dir, dir, mp.SMTPPort, aliceMail, alice.Path, verifier, agentKey.Path)
	cfgPath := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)

	start := func() *exec.Cmd {
		g := exec.Command(filepath.Join(bin, "rr-gateway"), "-config", cfgPath)
		logf, _ := os.OpenFile(filepath.Join(dir, "gateway.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		g.Stdout, g.Stderr = logf, logf
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Process.Kill(); g.Wait(); logf.Close() })
		waitPort(t, people)
		return g
	}
	gw := start()
	fp, err := exec.Command(filepath.Join(bin, "rr-gateway"), "fingerprint", "-config", cfgPath).Output()
	if err != nil {
		t.Fatal(err)
	}
	// The agent runs in this test process; the gateway is a real process.
	rg := &rrtest.Gateway{AgentAddr: agents, Fingerprint: strings.TrimSpace(string(fp))}
	rrtest.StartAgent(t, rg, "web-01", agentKey, nil)

	hostKey, err := sshkit.LoadOrCreateKey(filepath.Join(dir, "host_key"))
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(people)
	known := filepath.Join(dir, "known_hosts")
	os.WriteFile(known, []byte(fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(hostKey.PublicKey()))), 0o644)
	w := &world{mail: mp, alice: alice, log: filepath.Join(dir, "askpass.log"), logLevel: "ERROR",
		gw: &rrtest.Gateway{PeopleAddr: people, KnownHosts: known}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	for i := 0; ; i++ { // the agent may still be dialling
		cmd = exec.CommandContext(ctx, "ssh", w.sshArgs("rr+web-01@127.0.0.1",
			"echo before-the-kill; sleep 60")...)
		cmd.Env = w.answers(t, nil)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if line == "before-the-kill\n" {
			break
		}
		cmd.Wait()
		if i == 50 {
			b, _ := os.ReadFile(filepath.Join(dir, "gateway.log"))
			t.Fatalf("no session: %q\n%s", line, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(600 * time.Millisecond) // let a flush pass (flush_interval 200ms)
	gw.Process.Signal(syscall.SIGKILL)
	gw.Wait()
	cmd.Process.Kill()
	cmd.Wait()

	files, _ := filepath.Glob(filepath.Join(dir, "spool", "*.gz"))
	if len(files) != 1 {
		t.Fatalf("spool holds %v", files)
	}
	before, _ := os.ReadFile(files[0])
	out, err := exec.Command("bash", "-c", `gzip -dc "$1" 2>"$1.err" | openssl enc -d -aes-256-ctr -pbkdf2 -k pp-web-01`, "x", files[0]).Output()
	gzErr, _ := os.ReadFile(files[0] + ".err")
	if err != nil || !strings.Contains(string(out), "before-the-kill") || !strings.Contains(string(gzErr), "unexpected end of file") {
		t.Fatalf("prefix of the killed session's recording: %v, %q, gzip said %q", err, out, gzErr)
	}

	// Restart: the session is interrupted, its file sealed, not touched.
	start()
	st, err := store.Open(filepath.Join(dir, "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.Sessions(context.Background(), store.SessionFilter{})
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v %v", rows, err)
	}
	r := rows[0]
	after, _ := os.ReadFile(files[0])
	if r.State != store.StateInterrupted || r.Recording != files[0] || r.RecordingSize != int64(len(before)) ||
		len(r.RecordingSHA256) != 64 || string(after) != string(before) {
		t.Fatalf("after restart: %+v (file %d → %d bytes)", r, len(before), len(after))
	}
	// rr verify says what it is: a prefix, cut short, with its digest.
	v := exec.Command(filepath.Join(bin, "rr"), "verify", "-sha256", r.RecordingSHA256, files[0])
	v.Env = append(os.Environ(), "RR_PASSPHRASE=pp-web-01")
	vout, verr := v.CombinedOutput()
	if verr == nil || !strings.Contains(string(vout), "cut short") || !strings.Contains(string(vout), r.RecordingSHA256) {
		t.Fatalf("rr verify on the interrupted file: %v\n%s", verr, vout)
	}
}
