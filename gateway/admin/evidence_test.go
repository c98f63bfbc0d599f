package admin

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/evidence"
	"github.com/rr-gateway/rr/store"
)

func TestAuditVerifyAndManifests(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, msg := e.exec(admin, "audit verify"); !strings.Contains(msg, "no audit key") {
		t.Fatalf("without an audit key: %q", msg)
	}
	if out, _ := e.exec(admin, "show ops-done"); !strings.Contains(out, "no audit key configured") {
		t.Fatalf("show without an audit key:\n%s", out)
	}
	signer, _, err := evidence.LoadOrCreateKey(filepath.Join(t.TempDir(), "audit_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	e.console.cfg.Evidence = &Evidence{Store: e.st, Key: signer.PublicKey()}

	for range 3 {
		must(t, e.st.Audit(ctx, store.AuditEvent{Actor: "bob", Action: "auth.login", Outcome: "allowed"}))
	}
	head, err := e.st.AuditHead(ctx)
	must(t, err)
	c, err := evidence.SignCheckpoint(signer, head.Seq, head.Hash, now)
	must(t, err)
	must(t, e.st.AddCheckpoint(ctx, c))
	if _, msg := e.exec(bob, "audit verify"); msg == "" {
		t.Fatal("a team member ran audit verify")
	}
	out, msg := e.exec(admin, "audit verify")
	if msg != "" || !strings.Contains(out, "ok: the chain is unbroken") || !strings.Contains(out, "signed up to seq 3") {
		t.Fatalf("audit verify: %q\n%s", msg, out)
	}
	// audit --json ends with the checkpoint, which rr verify-audit reads.
	out, _ = e.exec(admin, "audit --json")
	evs, cps, err := evidence.ReadExport(strings.NewReader(out))
	if err != nil || len(cps) != 1 {
		t.Fatalf("export: %d checkpoints, %v\n%s", len(cps), err, out)
	}
	if r := evidence.VerifyTrail(signer.PublicKey(), evs, cps); !r.OK() {
		t.Fatalf("the export does not verify: %v", r.Problems)
	}
	// A checkpoint whose head is not the chain's (the store rewritten
	// under a checkpoint signed before).
	other, err := evidence.SignCheckpoint(signer, 2, head.Hash, now)
	must(t, err)
	must(t, e.st.AddCheckpoint(ctx, other))
	out, _ = e.exec(admin, "audit verify --json")
	var res verifyJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.OK || len(res.Problems) != 1 || res.Problems[0].Seq != 2 {
		t.Fatalf("%+v, %v\n%s", res, err, out)
	}

	// show says whether the recording's manifest verifies.
	sum := strings.Repeat("ab", 32)
	must(t, e.st.SetSessionRecording(ctx, "ops-done", "/spool/ops-done.gz", 1234, sum))
	if out, _ := e.exec(admin, "show ops-done"); !strings.Contains(out, "manifest:") || !strings.Contains(out, "none") {
		t.Fatalf("show without a manifest:\n%s", out)
	}
	m := evidence.Manifest{Session: "ops-done", Size: 1234, SHA256: sum, ClosedBySeq: 3, ClosedByHash: head.Hash, Ended: time.Now()}
	file, err := m.Sign(signer)
	must(t, err)
	must(t, e.st.SetManifest(ctx, "ops-done", file, now))
	if out, _ := e.exec(bob, "show ops-done"); !strings.Contains(out, "signed (audit event 3)") {
		t.Fatalf("show with a manifest:\n%s", out)
	}
	m.Size = 1
	file, _ = m.Sign(signer)
	must(t, e.st.SetManifest(ctx, "ops-done", file, now))
	if out, _ := e.exec(bob, "show ops-done"); !strings.Contains(out, "INVALID") {
		t.Fatalf("show with a manifest of another file:\n%s", out)
	}
}
