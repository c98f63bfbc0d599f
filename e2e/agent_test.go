package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/internal/testtool"
	"github.com/rr-gateway/rr/store/sqlite"
)

// TestRealAgentEnrolls: the rr-agent binary, started with a one-time
// token from `rr-gateway enroll` and no key, makes its key, binds it, holds
// a tunnel, and serves a session through real ssh; the token works once.
func TestRealAgentEnrolls(t *testing.T) {
	testtool.Need(t, "ssh")
	g, _ := startProcGateway(t, "")
	out, err := exec.Command("go", "build", "-o", g.bin+"/", "github.com/rr-gateway/rr/cmd/rr-agent").CombinedOutput()
	if err != nil {
		t.Fatalf("build rr-agent: %v\n%s", err, out)
	}
	token, err := exec.Command(filepath.Join(g.bin, "rr-gateway"), "enroll", "-config", g.cfg, "web-02").Output()
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	fp, err := exec.Command(filepath.Join(g.bin, "rr-gateway"), "fingerprint", "-config", g.cfg).Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "token"), token, 0o600)
	cfg := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfg, []byte("gateways: ["+g.agents+"]\ngateway_host_key: \""+strings.TrimSpace(string(fp))+"\"\n"+
		"host: web-02\nkey: "+filepath.Join(dir, "id_ed25519")+"\nenroll_token_file: "+filepath.Join(dir, "token")+"\n"+
		"backoff_min: 100ms\nlog: {format: text, level: info}\n"), 0o600)
	agentLog, _ := os.Create(filepath.Join(dir, "agent.log"))
	defer agentLog.Close()
	agent := exec.Command(filepath.Join(g.bin, "rr-agent"), "-config", cfg)
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })

	// Online: the metrics say two agents (web-01's and this one).
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, m := g.get("/metrics"); strings.Contains(m, "rr_agents_connected 2") {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(agentLog.Name())
			t.Fatalf("the real agent did not come online:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st, err := sqlite.Open(filepath.Join(g.dir, "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := st.Host(ctx, "web-02")
	if err != nil || h.AgentKey == "" {
		t.Fatalf("web-02's key not bound: %+v %v", h, err)
	}
	if ok, _ := st.HasEnrollToken(ctx, "web-02", time.Now()); ok {
		t.Error("the token can still be used")
	}
	v, _ := auth.HashSecret("pp-web-01") // the passphrase the test's answers give
	if err := st.SetHostPassphrase(ctx, "web-02", v); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "ssh", g.w.sshArgs("rr+web-02@127.0.0.1", "echo from-the-real-$((6*7))")...)
	cmd.Env = g.w.answers(t, nil)
	if got, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(got), "from-the-real-42") {
		t.Fatalf("a session through the real agent: %v %q", err, got)
	}

	// The spent token's file deleted, as one does with a used secret: the
	// agent starts again on its key alone.
	agent.Process.Kill()
	agent.Wait()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, m := g.get("/metrics"); strings.Contains(m, "rr_agents_connected 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not see the agent go")
		}
	}
	os.Remove(filepath.Join(dir, "token"))
	again := exec.Command(filepath.Join(g.bin, "rr-agent"), "-config", cfg)
	again.Stdout, again.Stderr = agentLog, agentLog
	if err := again.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- again.Wait() }()
	t.Cleanup(func() { again.Process.Kill(); <-exited })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, m := g.get("/metrics"); strings.Contains(m, "rr_agents_connected 2") {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(agentLog.Name())
			t.Fatalf("the agent stopped without its token file (%v):\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(agentLog.Name())
			t.Fatalf("the agent did not come back without its token file:\n%s", log)
		}
	}
}
