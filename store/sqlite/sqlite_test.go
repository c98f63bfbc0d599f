package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlstore"
	"github.com/rr-gateway/rr/store/storetest"
)

var ctx = context.Background()

func open(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "rr.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// raw opens the database at path beside the store, for what the store
// does not do (age a schema, undo the chain).
func raw(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestStore runs the store's conformance suite on SQLite files.
func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Backend{New: func(t *testing.T) storetest.Database {
		path := filepath.Join(t.TempDir(), "rr.db")
		return storetest.Database{
			Open: func() (*sqlstore.Store, error) { return Open(path) },
			Exec: func(q string) error { _, err := raw(t, path).Exec(q); return err },
		}
	}})
}

// TestWAL: the database is in WAL mode, so readers never wait for the
// writer.
func TestWAL(t *testing.T) {
	_, path := open(t)
	var mode string
	raw(t, path).QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Fatalf("journal mode %q, want wal", mode)
	}
}

// TestDatabaseIsPrivate: the database (and its WAL) are the owner's only,
// also in a folder others may read, and also if it was created readable.
func TestDatabaseIsPrivate(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "rr.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.UpsertHost(ctx, "web-01"); err != nil { // the WAL exists now
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want the owner's only", f, fi.Mode().Perm())
		}
	}
}

// TestDatabasePathWithURICharacters: '?' and '#' in the path name the
// file; they do not start options.
func TestDatabasePathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c")
	path := filepath.Join(dir, "rr.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("the database is not at %s: %v", path, err)
	}
}

// Rows from before the chain existed are chained when the store opens.
func TestAuditChainsOldRows(t *testing.T) {
	s, path := open(t)
	ctx := context.Background()
	for range 3 {
		if err := s.Audit(ctx, store.AuditEvent{Action: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw(t, path).ExecContext(ctx, `UPDATE audit SET prev = '', hash = '' WHERE id >= 2`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n, broken := storetest.VerifyChain(t, s2); n != 3 || broken != 0 {
		t.Fatalf("%d events, broken at %d", n, broken)
	}
}

// BenchmarkAuditChained is an audit append as the gateway makes it: read
// the head, hash, insert, in one write transaction.
func BenchmarkAuditChained(b *testing.B) {
	s, e := benchStore(b, filepath.Join(b.TempDir(), "rr.db"))
	for b.Loop() {
		if err := s.Audit(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuditUnchained is the append before the chain (one INSERT), the
// baseline of BenchmarkAuditChained.
func BenchmarkAuditUnchained(b *testing.B) {
	path := filepath.Join(b.TempDir(), "rr.db")
	s, e := benchStore(b, path)
	s.Close()
	db := raw(b, path)
	for b.Loop() {
		_, err := db.ExecContext(context.Background(), `INSERT INTO audit (at, actor, action, target, outcome, detail, source, session_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, e.Time.UnixNano(), e.Actor, e.Action, e.Target, e.Outcome, e.Detail, e.Source, e.SessionID)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchStore is a fresh store and a typical event for the benchmarks.
func benchStore(b *testing.B, path string) (*Store, store.AuditEvent) {
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, store.AuditEvent{Time: time.Now(), Actor: "alice", Action: "session.open", Target: "web-01", Outcome: "allowed",
		Source: "192.0.2.1:50000", SessionID: "0123456789abcdef"}
}
