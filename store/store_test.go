package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "rr.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

var ctx = context.Background()

func TestMigrationsIdempotentAndVersioned(t *testing.T) {
	s, path := open(t)
	if err := s.UpsertHost(ctx, "web-01"); err != nil {
		t.Fatal(err)
	}
	v1, err := s.SchemaVersion(ctx)
	if err != nil || v1 < 1 {
		t.Fatalf("version %d %v", v1, err)
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if v2, _ := s2.SchemaVersion(ctx); v2 != v1 {
		t.Fatalf("reopen changed version %d → %d", v1, v2)
	}
	if _, err := s2.Host(ctx, "web-01"); err != nil {
		t.Fatalf("data lost on reopen: %v", err)
	}
	// A database from a newer rr is refused.
	if _, err := s2.db.Exec(`INSERT INTO schema_version (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("a newer schema was accepted")
	}
	var mode string
	db, _ := sql.Open("sqlite3", path)
	defer db.Close()
	db.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Fatalf("journal mode %q, want wal", mode)
	}
}

func TestHosts(t *testing.T) {
	s, _ := open(t)
	if _, err := s.Host(ctx, "web-01"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing host: %v", err)
	}
	if err := s.SetAgentKey(ctx, "web-01", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("key of missing host: %v", err)
	}
	if err := s.TouchHost(ctx, "web-01", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("touch missing host: %v", err)
	}
	for _, n := range []string{"web-02", "web-01"} {
		if err := s.UpsertHost(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetAgentKey(ctx, "web-01", "ssh-ed25519 AAAA"); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertHost(ctx, "web-01"); err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2026, 11, 24, 1, 2, 3, 456789012, time.UTC)
	if err := s.TouchHost(ctx, "web-01", seen); err != nil {
		t.Fatal(err)
	}
	h, err := s.Host(ctx, "web-01")
	if err != nil || h.AgentKey != "ssh-ed25519 AAAA" || !h.LastSeen.Equal(seen) || h.CreatedAt.IsZero() {
		t.Fatalf("host %+v %v (upsert must keep the key; times exact)", h, err)
	}
	hs, _ := s.Hosts(ctx)
	if len(hs) != 2 || hs[0].Name != "web-01" || hs[1].Name != "web-02" || !hs[1].LastSeen.IsZero() {
		t.Fatalf("hosts %+v", hs)
	}
}

func TestEnrollTokens(t *testing.T) {
	s, _ := open(t)
	now := time.Now()
	sum := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	if err := s.CreateEnrollToken(ctx, "web-01", sum("t"), now.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token for missing host: %v", err)
	}
	s.UpsertHost(ctx, "web-01")
	if ok, _ := s.HasEnrollToken(ctx, "web-01", now); ok {
		t.Fatal("token before any was made")
	}
	s.CreateEnrollToken(ctx, "web-01", sum("old"), now.Add(-time.Second))
	s.CreateEnrollToken(ctx, "web-01", sum("good"), now.Add(time.Hour))
	if ok, _ := s.HasEnrollToken(ctx, "web-01", now); !ok {
		t.Fatal("no token found")
	}
	if err := s.UseEnrollToken(ctx, "web-01", sum("old"), "k", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired token: %v", err)
	}
	if err := s.UseEnrollToken(ctx, "web-01", sum("bad"), "k", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("wrong token: %v", err)
	}
	// Two racing uses of one token: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.UseEnrollToken(ctx, "web-01", sum("good"), fmt.Sprintf("key-%d", i), now)
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else if !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d uses of a single-use token succeeded", wins)
	}
	h, _ := s.Host(ctx, "web-01")
	if h.AgentKey == "" {
		t.Fatal("enrollment bound no key")
	}
	if ok, _ := s.HasEnrollToken(ctx, "web-01", now); ok {
		t.Fatal("a used token still counts")
	}
}

func TestSessions(t *testing.T) {
	s, _ := open(t)
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	mk := func(id, host string, at time.Time) Session {
		return Session{ID: id, Person: "alice", Host: host, State: StateLive, Started: at, PTY: true, Source: "127.0.0.1:1"}
	}
	for i, id := range []string{"a", "b", "c"} {
		if err := s.CreateSession(ctx, mk(id, "web-01", t0.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, mk("a", "web-01", t0)); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate id: %v", err)
	}
	bad := mk("d", "x", t0)
	bad.State = StateClosed
	if err := s.CreateSession(ctx, bad); err == nil {
		t.Fatal("a new session that is not live was accepted")
	}
	zero := 0
	end := SessionEnd{State: StateClosed, Ended: t0.Add(time.Hour), BytesIn: 5, BytesOut: 7, ExitStatus: &zero, EndReason: "exit 0"}
	if err := s.FinishSession(ctx, "c", end); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishSession(ctx, "c", end); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second finish: %v", err)
	}
	if err := s.FinishSession(ctx, "zz", end); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finish unknown: %v", err)
	}
	c, err := s.Session(ctx, "c")
	if err != nil || c.State != StateClosed || c.BytesIn != 5 || c.BytesOut != 7 || c.ExitStatus == nil || *c.ExitStatus != 0 ||
		!c.Ended.Equal(t0.Add(time.Hour)) || !c.Started.Equal(t0.Add(2*time.Minute)) || !c.PTY {
		t.Fatalf("session c %+v %v", c, err)
	}
	// Live first, then newest first.
	all, _ := s.Sessions(ctx, SessionFilter{})
	if len(all) != 3 || all[0].ID != "b" || all[1].ID != "a" || all[2].ID != "c" {
		t.Fatalf("order %v", ids(all))
	}
	live, _ := s.Sessions(ctx, SessionFilter{LiveOnly: true, Since: t0.Add(time.Minute)})
	if len(live) != 1 || live[0].ID != "b" {
		t.Fatalf("live since: %v", ids(live))
	}
	if got, _ := s.Sessions(ctx, SessionFilter{Host: "nope"}); len(got) != 0 {
		t.Fatalf("host filter: %v", ids(got))
	}
	if got, _ := s.Sessions(ctx, SessionFilter{Person: "alice", Limit: 2}); len(got) != 2 {
		t.Fatalf("limit: %v", ids(got))
	}
	// Restart after a crash: live ones become interrupted, closed stay.
	gotIDs, err := s.InterruptLiveSessions(ctx, t0.Add(2*time.Hour))
	if err != nil || len(gotIDs) != 2 {
		t.Fatalf("interrupted %v %v", gotIDs, err)
	}
	a, _ := s.Session(ctx, "a")
	c, _ = s.Session(ctx, "c")
	if a.State != StateInterrupted || a.EndReason == "" || c.State != StateClosed {
		t.Fatalf("after interrupt: a %+v c %+v", a, c)
	}
	if _, err := s.Session(ctx, "zz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	if err := s.SetSessionRecording(ctx, "a", "/spool/a.gz", 123, "ab12"); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Session(ctx, "a"); a.Recording != "/spool/a.gz" || a.RecordingSize != 123 || a.RecordingSHA256 != "ab12" {
		t.Fatalf("recording columns: %+v", a)
	}
	if err := s.MoveSessionRecording(ctx, "a", "s3://b/a.gz"); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Session(ctx, "a"); a.Recording != "s3://b/a.gz" || a.RecordingSize != 123 || a.RecordingSHA256 != "ab12" {
		t.Fatalf("after the move: %+v", a)
	}
	if err := s.MoveSessionRecording(ctx, "zz", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("move of unknown session: %v", err)
	}
	if err := s.SetSessionRecording(ctx, "zz", "x", 1, "y"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("recording of unknown session: %v", err)
	}
}

func ids(ss []Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func TestAuditAndConcurrentWriters(t *testing.T) {
	s, _ := open(t)
	t0 := time.Now().UTC()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if err := s.Audit(ctx, AuditEvent{Time: t0.Add(time.Duration(i) * time.Millisecond), Actor: fmt.Sprint(g), Action: "test"}); err != nil {
					t.Error(err)
					return
				}
				if err := s.CreateSession(ctx, Session{ID: fmt.Sprintf("%d-%d", g, i), Person: "p", Host: "h", State: StateLive, Started: t0}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs, err := s.AuditEvents(ctx, time.Time{}, 0)
	if err != nil || len(evs) != 200 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Time.Before(evs[i-1].Time) {
			t.Fatal("events not oldest first")
		}
	}
	if late, _ := s.AuditEvents(ctx, t0.Add(24*time.Millisecond), 0); len(late) != 8 {
		t.Fatalf("since filter: %d", len(late))
	}
	if err := s.Audit(ctx, AuditEvent{}); err == nil {
		t.Fatal("event without action accepted")
	}
}
