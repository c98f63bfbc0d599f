package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/evidence"
	"github.com/rr-gateway/rr/store"
)

func auditKey(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	dir := t.TempDir()
	s, _, err := evidence.LoadOrCreateKey(filepath.Join(dir, "audit_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "audit.pub")
	if err := os.WriteFile(pub, []byte(evidence.AllowedSigners(s.PublicKey())), 0o644); err != nil {
		t.Fatal(err)
	}
	return s, pub
}

func TestVerifyManifest(t *testing.T) {
	signer, pub := auditKey(t)
	other, _ := auditKey(t)
	rec := writeRecording(t, "pw", 0)
	b, _ := os.ReadFile(rec)
	sum := sha256.Sum256(b)
	m := evidence.Manifest{Session: "abc", Host: "web-01", Person: "alice", Team: "ops", State: "closed",
		Started: time.Unix(10, 0), Ended: time.Unix(20, 0), Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), ClosedBySeq: 3, ClosedByHash: "h"}
	write := func(s ssh.Signer) string {
		f, err := m.Sign(s)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "abc.manifest")
		os.WriteFile(p, f, 0o644)
		return p
	}
	good, forged := write(signer), write(other)

	out, errs, code := rr(t, "", "verify", "-manifest", good, "-key", pub, rec)
	if code != 0 || !strings.Contains(out, "ok: the recording is the one the manifest describes") {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	out, errs, code = rr(t, "pw", "verify", "-manifest", good, "-key", pub, rec)
	if code != 0 || !strings.HasSuffix(out, "ok\n") || !strings.Contains(out, "person   alice") {
		t.Fatalf("with the passphrase: exit %d: %s%s", code, out, errs)
	}
	if _, errs, code = rr(t, "", "verify", "-manifest", forged, "-key", pub, rec); code != 1 || !strings.Contains(errs, "does not verify with the audit key") {
		t.Fatalf("manifest signed with another key: exit %d: %s", code, errs)
	}
	changed := filepath.Join(t.TempDir(), "abc.gz")
	b[len(b)/2] ^= 1
	os.WriteFile(changed, b, 0o600)
	if _, errs, code = rr(t, "", "verify", "-manifest", good, "-key", pub, changed); code != 1 || !strings.Contains(errs, "not the one the manifest describes") {
		t.Fatalf("changed recording: exit %d: %s", code, errs)
	}
	if _, errs, code = rr(t, "", "verify", "-manifest", good, rec); code != 1 || !strings.Contains(errs, "-key") {
		t.Fatalf("no key: exit %d: %s", code, errs)
	}
}

// writeExport writes evs and cps as the console's audit --json does.
func writeExport(t *testing.T, evs []store.AuditEvent, cps []store.Checkpoint) string {
	t.Helper()
	var b bytes.Buffer
	for _, e := range evs {
		j, _ := json.Marshal(evidence.ToJSON(e))
		b.Write(append(j, '\n'))
	}
	for _, c := range cps {
		j, _ := json.Marshal(map[string]any{"checkpoint": evidence.CheckpointToJSON(c)})
		b.Write(append(j, '\n'))
	}
	p := filepath.Join(t.TempDir(), "audit.jsonl")
	os.WriteFile(p, b.Bytes(), 0o644)
	return p
}

func TestVerifyAudit(t *testing.T) {
	signer, pub := auditKey(t)
	var evs []store.AuditEvent
	prev := ""
	for i := 1; i <= 6; i++ {
		e := store.AuditEvent{Seq: int64(i), Time: time.Unix(int64(i), 0).UTC(), Actor: "alice", Action: "session.open", Detail: fmt.Sprint(i), Prev: prev}
		e.Hash = store.ChainHash(prev, e)
		evs, prev = append(evs, e), e.Hash
	}
	cp4, _ := evidence.SignCheckpoint(signer, 4, evs[3].Hash, time.Unix(50, 0))
	cp6, _ := evidence.SignCheckpoint(signer, 6, evs[5].Hash, time.Unix(60, 0))
	// The published folder holds the newest checkpoint; the store (and so
	// the export) was rolled back to before it.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.checkpoint"), evidence.CheckpointFile(cp6), 0o644)

	out, errs, code := rr(t, "", "verify-audit", "-key", pub, writeExport(t, evs, []store.Checkpoint{cp4}))
	if code != 0 || !strings.HasSuffix(out, "ok\n") || !strings.Contains(out, "signed up to seq 4") {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	out, errs, code = rr(t, "", "verify-audit", "-key", pub, "-checkpoints", dir, writeExport(t, evs, []store.Checkpoint{cp4}))
	if code != 0 || !strings.Contains(out, "signed up to seq 6") {
		t.Fatalf("with the published folder: exit %d: %s%s", code, out, errs)
	}
	out, _, code = rr(t, "", "verify-audit", "-key", pub, "-checkpoints", dir, writeExport(t, evs[:5], []store.Checkpoint{cp4}))
	if code != 1 || !strings.Contains(out, "BROKEN at seq 6") || !strings.Contains(out, "rolled back") {
		t.Fatalf("rolled back: exit %d: %s", code, out)
	}
	changed := append([]store.AuditEvent(nil), evs...)
	changed[2].Outcome = "denied"
	out, _, code = rr(t, "", "verify-audit", "-key", pub, writeExport(t, changed, []store.Checkpoint{cp4}))
	if code != 1 || !strings.Contains(out, "BROKEN at seq 3: event changed") {
		t.Fatalf("changed: exit %d: %s", code, out)
	}
}

// An export out of seq order (merged by hand) is sorted when it is a
// file; from standard input rr says to save it.
func TestVerifyAuditOutOfOrder(t *testing.T) {
	signer, pub := auditKey(t)
	var evs []store.AuditEvent
	prev := ""
	for i := 1; i <= 4; i++ {
		e := store.AuditEvent{Seq: int64(i), Time: time.Unix(int64(i), 0).UTC(), Action: "x", Prev: prev}
		e.Hash = store.ChainHash(prev, e)
		evs, prev = append(evs, e), e.Hash
	}
	cp, _ := evidence.SignCheckpoint(signer, 4, evs[3].Hash, time.Unix(9, 0))
	shuffled := []store.AuditEvent{evs[2], evs[0], evs[3], evs[1]}
	file := writeExport(t, shuffled, []store.Checkpoint{cp})
	out, errs, code := rr(t, "", "verify-audit", "-key", pub, file)
	if code != 0 || !strings.HasSuffix(out, "ok\n") {
		t.Fatalf("from a file: exit %d: %s%s", code, out, errs)
	}
	b, _ := os.ReadFile(file)
	var o, e bytes.Buffer
	if code := run([]string{"verify-audit", "-key", pub}, bytes.NewReader(b), &o, &e); code != 1 || !strings.Contains(e.String(), "save the export to a file") {
		t.Fatalf("from standard input: exit %d: %s%s", code, o.String(), e.String())
	}
}
