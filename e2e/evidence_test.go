package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // to tamper with the gateway's database
)

// TestEvidence: with the real rr-gateway, ssh, scp, ssh-keygen and rr, a
// session's manifest and the audit trail verify offline with the audit
// public key alone, across a restart and a SIGKILL; and tampering with
// the database, the recording or the manifest is caught, and said where.
func TestEvidence(t *testing.T) {
	for _, tool := range []string{"ssh", "scp", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	g, gw := startProcGateway(t, "recordings: {spool: '{{dir}}/spool'}\naudit: {checkpoint_interval: 1h}\n")
	w := g.w
	rr := filepath.Join(g.bin, "rr")
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	key := filepath.Join(tmp, "audit.pub")
	pub, err := exec.Command(filepath.Join(g.bin, "rr-gateway"), "audit-key", "-config", g.cfg).Output()
	if err != nil || !strings.HasPrefix(string(pub), "rr-audit ssh-ed25519 ") {
		t.Fatalf("audit-key: %v %q", err, pub)
	}
	os.WriteFile(key, pub, 0o644)

	// A session, then its manifest and recording over scp.
	var id string
	for i := 0; ; i++ { // the agent may still be dialling
		out, err := w.ssh(t, ctx, "rr+web-01@127.0.0.1", "echo evidence-$((6*7))").Output()
		if err == nil && strings.Contains(string(out), "evidence-42") {
			break
		}
		if i == 50 {
			t.Fatalf("no session: %v %q\n%s", err, out, g.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, errOut, code := w.console(t, g.ann, "sessions --json")
	var rows []sessionJSON
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 1 {
		t.Fatalf("sessions: exit %d %v: %s %s", code, err, out, errOut)
	}
	id = rows[0].ID
	alice := someone{"alice", w.alice, aliceMail}
	man, rec := filepath.Join(tmp, id+".manifest"), filepath.Join(tmp, id+".gz")
	for _, f := range []string{man, rec} {
		if out, err := w.tool(t, ctx, alice, "scp", "rr@127.0.0.1:recordings/"+filepath.Base(f), f).CombinedOutput(); err != nil {
			t.Fatalf("scp %s: %v: %s", filepath.Base(f), err, out)
		}
	}

	// Stock tools: split the manifest with sed, check it with ssh-keygen,
	// and the recording's SHA-256 with sha256sum, as docs/security.md says.
	script := `set -e
sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$1" > "$1.body"
sed -n '/^-----BEGIN SSH SIGNATURE-----$/,$p' "$1" > "$1.sig"
ssh-keygen -Y verify -f "$2" -I rr-audit -n rr-recording-manifest -s "$1.sig" < "$1.body"
test "$(sed -n 's/^sha256 //p' "$1.body")" = "$(sha256sum < "$3" | cut -d' ' -f1)"`
	if out, err := exec.Command("bash", "-c", script, "x", man, key, rec).CombinedOutput(); err != nil {
		t.Fatalf("stock tools refuse the manifest: %v\n%s", err, out)
	}
	if out, err := exec.Command(rr, "verify", "-manifest", man, "-key", key, rec).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "person   alice") {
		t.Fatalf("rr verify -manifest: %v\n%s", err, out)
	}
	changed := filepath.Join(tmp, "changed.gz")
	b, _ := os.ReadFile(rec)
	b[len(b)-1] ^= 1
	os.WriteFile(changed, b, 0o600)
	if out, err := exec.Command(rr, "verify", "-manifest", man, "-key", key, changed).CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "not the one the manifest describes") {
		t.Fatalf("a changed recording verified: %s", out)
	}
	if out, _, _ := w.console(t, g.ann, "show "+id); !strings.Contains(out, "signed (audit event") {
		t.Fatalf("show does not report the manifest:\n%s", out)
	}

	// The trail, exported from the console, verifies offline.
	verifyAudit := func(want string) string {
		t.Helper()
		out, errOut, code := w.console(t, g.ann, "audit --json --limit 100000")
		if code != 0 {
			t.Fatalf("audit --json: exit %d: %s", code, errOut)
		}
		export := filepath.Join(t.TempDir(), "audit.jsonl")
		os.WriteFile(export, []byte(out), 0o644)
		got, _ := exec.Command(rr, "verify-audit", "-key", key, "-checkpoints", filepath.Join(g.dir, "spool", "checkpoints"), export).CombinedOutput()
		if !strings.Contains(string(got), want) {
			t.Fatalf("verify-audit: want %q in\n%s", want, got)
		}
		return string(got)
	}
	os.MkdirAll(filepath.Join(g.dir, "spool", "checkpoints"), 0o700) // none published yet: nothing happened before this start
	verifyAudit("\nok\n")

	// SIGKILL mid-run, restart: the chain is whole, and the signed
	// checkpoints (at start, and at the shutdown after it) still match.
	gw.Process.Signal(syscall.SIGKILL)
	gw.Wait()
	gw = g.start()
	gatewaytestWaitAgent(t, g)
	gw.Process.Signal(syscall.SIGTERM)
	gw.Wait()
	gw = g.start()
	if out := verifyAudit("\nok\n"); !strings.Contains(out, "signed up to seq ") {
		t.Fatalf("no checkpoint after the restarts:\n%s", out)
	}
	if out, _, _ := w.console(t, g.ann, "audit verify"); !strings.Contains(out, "ok: the chain is unbroken") {
		t.Fatalf("audit verify:\n%s", out)
	}

	// The database rolled back to a copy from before a checkpoint that was
	// published: the published checkpoint says so.
	gw.Process.Signal(syscall.SIGTERM)
	gw.Wait()
	dbPath := filepath.Join(g.dir, "rr.db")
	old, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	gw = g.start()
	gatewaytestWaitAgent(t, g)
	if out, err := w.ssh(t, ctx, "rr+web-01@127.0.0.1", "true").CombinedOutput(); err != nil {
		t.Fatalf("second session: %v %s", err, out)
	}
	gw.Process.Signal(syscall.SIGTERM) // its checkpoint, published at shutdown, covers the session
	gw.Wait()
	os.Remove(dbPath + "-wal")
	os.Remove(dbPath + "-shm")
	os.WriteFile(dbPath, old, 0o600)
	gw = g.start()
	if out := verifyAudit("BROKEN at seq "); !strings.Contains(out, "rolled back") && !strings.Contains(out, "rewritten") {
		t.Fatalf("rollback not named:\n%s", out)
	}

	// Someone with the database changes an old row: the console and the
	// offline check both say where.
	gw.Process.Signal(syscall.SIGTERM)
	gw.Wait()
	db, err := sql.Open("sqlite3", filepath.Join(g.dir, "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	var seq int64
	if err := db.QueryRow(`SELECT id FROM audit WHERE action = 'session.open' AND outcome = 'allowed'`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit SET actor = 'mallory' WHERE id = ?`, seq); err != nil {
		t.Fatal(err)
	}
	db.Close()
	g.start()
	broken := "BROKEN at seq " + itoa(seq) + ": event changed"
	verifyAudit(broken)
	if out, _, _ := w.console(t, g.ann, "audit verify"); !strings.Contains(out, broken) {
		t.Fatalf("audit verify:\n%s", out)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// gatewaytestWaitAgent waits until web-01's agent is back on g.
func gatewaytestWaitAgent(t *testing.T, g *procGateway) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, m := g.get("/metrics"); strings.Contains(m, "rr_agents_connected 1") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the agent did not come back\n%s", g.log())
}
