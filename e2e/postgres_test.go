package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/internal/pgtest"
	"github.com/rr-gateway/rr/internal/testtool"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/postgres"
)

// pgGateway is startProcGateway on a fresh PostgreSQL database.
func pgGateway(t *testing.T, dsn, extra string) (*procGateway, *exec.Cmd) {
	t.Helper()
	return startProcGateway(t, "store: {driver: postgres}\n"+extra, "RR_STORE_DSN="+dsn)
}

func openPG(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), dsn, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestPostgresDownAtStart: rr-gateway with a PostgreSQL that is not there
// exits non-zero, its last line saying so, without the DSN's password.
func TestPostgresDownAtStart(t *testing.T) {
	bin := buildBinaries(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	os.WriteFile(cfg, []byte(`listen: 127.0.0.1:0
agent_listen: 127.0.0.1:0
host_key: `+dir+`/host_key
mail: {mode: smtp, smtp: {host: 127.0.0.1, port: 1, tls: none}}
recordings: {spool: `+dir+`/spool}
store: {driver: postgres, connect_timeout: 3s}
`), 0o600)
	cmd := exec.Command(filepath.Join(bin, "rr-gateway"), "-config", cfg)
	cmd.Env = append(os.Environ(), "RR_STORE_DSN=postgres://rr:s3cret-pw@"+addr+"/rr")
	out, err := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if code := exitCode(err); code == 0 || !strings.Contains(lines[len(lines)-1], "cannot reach the PostgreSQL server at "+addr) {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	if strings.Contains(string(out), "s3cret-pw") {
		t.Fatalf("the password is in the output:\n%s", out)
	}
}

// TestPostgresLostMidSession: PostgreSQL stopped under a live session —
// the session keeps flowing (the store is not on the byte path); a new
// login is told in one line that the gateway cannot reach its database;
// the session ends meanwhile; PostgreSQL back, its row and recording are
// finalized and logins work again.
func TestPostgresLostMidSession(t *testing.T) {
	testtool.Need(t, "gzip", "openssl")
	pgtest.Shared(t) // skips, or fails under CI=true, without PostgreSQL
	// A server of this test's own: it is stopped and started again.
	own, err := pgtest.Start(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { own.Close() })
	dsn, err := own.CreateDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	g, _ := pgGateway(t, dsn, "recordings: {spool: '{{dir}}/spool', flush_interval: 200ms}\n")
	w := g.w
	ctx := testCtx(t, 2*time.Minute)

	// A session that echoes what it is sent, line by line.
	var cmd *exec.Cmd
	var in io.WriteCloser
	var out *bufio.Reader
	for i := 0; ; i++ { // the agent may still be dialling
		cmd = exec.CommandContext(ctx, "ssh", w.sshArgs("rr+web-01@127.0.0.1", "echo ready; exec cat")...)
		cmd.Env = w.answers(t, nil)
		in, _ = cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		out = bufio.NewReader(stdout)
		if line, _ := out.ReadString('\n'); line == "ready\n" {
			break
		}
		cmd.Wait()
		if i == 50 {
			t.Fatalf("no session:\n%s", g.log())
		}
		time.Sleep(100 * time.Millisecond) // a child process gives no readiness event
	}
	echo := func(s string) {
		t.Helper()
		fmt.Fprintln(in, s)
		if line, err := out.ReadString('\n'); err != nil || line != s+"\n" {
			t.Fatalf("sent %q, got %q (%v)", s, line, err)
		}
	}
	echo("before")
	if err := own.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 200 { // the live session does not notice
		echo(fmt.Sprint("while-down-", i))
	}
	if code, body := g.get("/healthz"); code != 503 || !strings.Contains(body, "store") {
		t.Errorf("/healthz with PostgreSQL down: %d %q", code, body)
	}
	// A new login: one line, that the gateway cannot reach its database.
	w.logLevel = "INFO"
	login := exec.CommandContext(ctx, "ssh", w.sshArgs("rr+web-01@127.0.0.1", "true")...)
	login.Env = w.answers(t, nil)
	lout, lerr := login.CombinedOutput()
	w.logLevel = "ERROR"
	if lerr == nil || !strings.Contains(string(lout), "the gateway cannot reach its database") {
		t.Fatalf("a login with PostgreSQL down: %v\n%s", lerr, lout)
	}
	// The session ends while the store is down.
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the session did not end cleanly: %v", err)
	}
	if err := own.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := openPG(t, dsn)
	var row store.Session
	deadline := time.Now().Add(60 * time.Second)
	for { // the gateway retries with backoff: there is no event to wait on from here
		rows, err := st.Sessions(context.Background(), store.SessionFilter{})
		if err == nil && len(rows) == 1 && rows[0].State == store.StateClosed && rows[0].RecordingSHA256 != "" {
			row = rows[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session's row was not finalized once PostgreSQL was back: %+v %v\n%s", rows, err, g.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	plain := decrypt(t, row.Recording, "pp-web-01")
	if !strings.Contains(plain, "while-down-199") {
		t.Fatalf("the recording lacks what flowed while PostgreSQL was down: %.300q", plain)
	}
	evs, err := st.AuditEvents(context.Background(), store.AuditFilter{SessionID: row.ID, Action: "session.close"})
	if err != nil || len(evs) != 1 {
		t.Fatalf("session.close audit events: %v, %v", evs, err)
	}
	// The login refused meanwhile was audited once the store was back.
	refused, err := st.AuditEvents(context.Background(), store.AuditFilter{Action: "auth.login"})
	if err != nil || !slices.ContainsFunc(refused, func(e store.AuditEvent) bool { return e.Detail == "store unreachable" }) {
		t.Fatalf("the login refused while PostgreSQL was down is not in the audit: %v %+v", err, refused)
	}
	// Logins work again.
	again := w.ssh(t, ctx, "rr+web-01@127.0.0.1", "echo back")
	if o, err := again.Output(); err != nil || string(o) != "back\n" {
		t.Fatalf("a login once PostgreSQL was back: %v %q\n%s", err, o, g.log())
	}
}

// TestPostgresGatewaysStartAtOnce: two rr-gateway processes started at
// once on an empty database both come up, and it is migrated once.
func TestPostgresGatewaysStartAtOnce(t *testing.T) {
	dsn := pgtest.DB(t)
	bin := buildBinaries(t)
	var people []string
	var cmds []*exec.Cmd
	for i := range 2 {
		dir := t.TempDir()
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		people = append(people, addr)
		cfg := filepath.Join(dir, "gateway.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %s
agent_listen: 127.0.0.1:0
host_key: %s/host_key
mail: {mode: smtp, smtp: {host: 127.0.0.1, port: 1, tls: none}}
recordings: {spool: %s/spool}
store: {driver: postgres}
name: gw%d
`, addr, dir, dir, i+1)), 0o600)
		cmd := exec.Command(filepath.Join(bin, "rr-gateway"), "-config", cfg)
		cmd.Env = append(os.Environ(), "RR_STORE_DSN="+dsn)
		logf, _ := os.Create(filepath.Join(dir, "gateway.log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		cmds = append(cmds, cmd)
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	}
	for _, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, addr := range people {
		gatewaytest.WaitPort(t, addr)
	}
	st := openPG(t, dsn)
	if v, err := st.SchemaVersion(context.Background()); err != nil || v != 9 { // 0009_cluster.sql, the latest
		t.Fatalf("schema version %d, %v", v, err)
	}
}

// TestPostgresLimitsAcrossGateways: two gateways on one PostgreSQL count
// wrong factors together — five spread over both lock the person out on
// both, and restarting one does not lift it — and an enrollment token
// spent through one is refused by the other.
func TestPostgresLimitsAcrossGateways(t *testing.T) {
	dsn := pgtest.DB(t)
	extra := "auth: {passphrase_tries: 1}\n" // one wrong passphrase per connection
	g1, cmd1 := pgGateway(t, dsn, extra)
	g2, _ := pgGateway(t, dsn, extra)
	// Each gateway's file declares alice with a key of its own; the last
	// one applied (g2's) is hers now: use it on both.
	w2 := g2.w
	w1 := *g2.w
	w1.gw = g1.w.gw
	w1.logLevel, w2.logLevel = "INFO", "INFO"
	wrong := map[string]string{"RR_PASSPHRASE": "not-the-passphrase"}
	for i := range auth.DefaultLimits.FailuresBeforeLockout {
		w := []*world{&w1, w2}[i%2]
		if _, out, errOut, code := w.attempt(t, "rr+web-01", wrong); code != 255 || out != "" {
			t.Fatalf("wrong passphrase %d: exit %d, %q %q", i+1, code, out, errOut)
		}
	}
	locked := func(w *world, which string) {
		t.Helper()
		_, out, errOut, code := w.attempt(t, "rr+web-01", nil)
		if code != 255 || out != "" || !strings.Contains(errOut, "too many failed attempts") {
			t.Fatalf("%s after %d wrong factors over both gateways: exit %d, %q %q", which, auth.DefaultLimits.FailuresBeforeLockout, code, out, errOut)
		}
	}
	locked(&w1, "gateway 1")
	locked(w2, "gateway 2")
	cmd1.Process.Kill()
	cmd1.Wait()
	g1.start() // its file's alice key is hers again
	g1.w.logLevel = "INFO"
	locked(g1.w, "gateway 1 restarted")

	// A token made on gateway 1, spent by an agent on gateway 2.
	enroll := exec.Command(filepath.Join(g1.bin, "rr-gateway"), "enroll", "-config", g1.cfg, "web-02")
	enroll.Env = append(os.Environ(), g1.env...)
	token, err := enroll.Output()
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	tok := strings.TrimSpace(string(token))
	st := openPG(t, dsn)
	fingerprint := func(g *procGateway) string {
		out, err := exec.Command(filepath.Join(g.bin, "rr-gateway"), "fingerprint", "-config", g.cfg).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	gatewaytest.StartAgent(t, &gatewaytest.Gateway{AgentAddr: g2.agents, Fingerprint: fingerprint(g2)}, "web-02",
		gatewaytest.NewKey(t, "web-02-first"), func(c *agent.Config) { c.EnrollToken = tok })
	waitFor(t, "web-02 bound through gateway 2", func() bool {
		h, err := st.Host(context.Background(), "web-02")
		return err == nil && h.AgentKey != ""
	})
	bound, _ := st.Host(context.Background(), "web-02")
	// Gateway 1 refuses the second agent at its key: web-02 is bound, and
	// its token spent, in the store both gateways share.
	refusals := func() int { return strings.Count(g1.log(), `msg="login failed" port=agents`) }
	before := refusals()
	gatewaytest.StartAgent(t, &gatewaytest.Gateway{AgentAddr: g1.agents, Fingerprint: fingerprint(g1)}, "web-02",
		gatewaytest.NewKey(t, "web-02-second"), func(c *agent.Config) { c.EnrollToken = tok })
	waitFor(t, "gateway 1 to refuse the spent token", func() bool { return refusals() > before })
	if ok, _ := st.HasEnrollToken(context.Background(), "web-02", time.Now()); ok {
		t.Fatal("the token is still unspent")
	}
	if h, _ := st.Host(context.Background(), "web-02"); h.AgentKey != bound.AgentKey {
		t.Fatal("a spent token replaced web-02's agent key")
	}
}

// waitFor polls cond (state in another process: no event to wait on)
// for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
