package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	// Logins work again.
	again := w.ssh(t, ctx, "rr+web-01@127.0.0.1", "echo back")
	if o, err := again.Output(); err != nil || string(o) != "back\n" {
		t.Fatalf("a login once PostgreSQL was back: %v %q\n%s", err, o, g.log())
	}
}
