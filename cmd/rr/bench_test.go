package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rr-gateway/rr/evidence"
	"github.com/rr-gateway/rr/store"
)

// BenchmarkVerifyAudit1M is rr verify-audit on an export of one million
// events (as audit --json writes them) with a checkpoint at the end.
func BenchmarkVerifyAudit1M(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	signer, _, err := evidence.LoadOrCreateKey(filepath.Join(dir, "audit_ed25519"))
	if err != nil {
		b.Fatal(err)
	}
	key := filepath.Join(dir, "audit.pub")
	os.WriteFile(key, []byte(evidence.AllowedSigners(signer.PublicKey())), 0o644)
	export := filepath.Join(dir, "audit.jsonl")
	f, _ := os.Create(export)
	w := bufio.NewWriter(f)
	prev, t0 := "", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var last store.AuditEvent
	for i := 1; i <= n; i++ {
		e := store.AuditEvent{Seq: int64(i), Time: t0.Add(time.Duration(i) * time.Millisecond), Actor: "alice",
			Action: "auth.code", Target: "web-01", Outcome: "allowed", Source: "192.0.2.1:50000",
			SessionID: strconv.Itoa(i), Prev: prev}
		e.Hash = store.ChainHash(prev, e)
		prev, last = e.Hash, e
		j, _ := json.Marshal(evidence.ToJSON(e))
		w.Write(append(j, '\n'))
	}
	c, _ := evidence.SignCheckpoint(signer, last.Seq, last.Hash, t0)
	j, _ := json.Marshal(map[string]any{"checkpoint": evidence.CheckpointToJSON(c)})
	w.Write(append(j, '\n'))
	w.Flush()
	f.Close()
	fi, _ := os.Stat(export)
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for b.Loop() {
		if code := verifyAudit(key, "", export, nil, io.Discard, io.Discard); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/event")
}
