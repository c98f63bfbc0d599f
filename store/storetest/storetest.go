// Package storetest is the conformance suite of rr's store: what every
// backend (store/sqlite, store/postgres) must do alike, run by each
// backend's tests through Run. What is one backend's own (SQLite's file
// modes, PostgreSQL's connection errors) stays in its package's tests.
//
// Must not: depend on a backend, or reach into a database but through
// Database.Exec.
package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/rr-gateway/rr/store/sqlstore"
)

// Backend is how the suite gets databases.
type Backend struct {
	// New makes a fresh, empty database.
	New func(t *testing.T) Database
}

// Database is one database of a backend.
type Database struct {
	// Open opens a store on the database: each call another handle, as
	// another gateway (or process) holds; it migrates an empty database.
	Open func() (*sqlstore.Store, error)
	// Exec runs one statement without arguments on the database, beside
	// the store (to age a schema, say).
	Exec func(query string) error
}

func (d Database) open(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := d.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (b Backend) fresh(t *testing.T) *sqlstore.Store {
	t.Helper()
	return b.New(t).open(t)
}

var ctx = context.Background()

// Run runs the suite against b, each test as a subtest.
func Run(t *testing.T, b Backend) {
	for _, c := range []struct {
		name string
		f    func(*testing.T, Backend)
	}{
		{"Migrations", testMigrations},
		{"OpenRacesOpen", testOpenRacesOpen},
		{"Hosts", testHosts},
		{"EnrollTokens", testEnrollTokens},
		{"EnrollTokenSpentOnce", testEnrollTokenSpentOnce},
		{"Sessions", testSessions},
		{"AuditAndConcurrentWriters", testAuditAndConcurrentWriters},
		{"AuditFilter", testAuditFilter},
		{"SessionTeamFilter", testSessionTeamFilter},
		{"PeopleAndKeys", testPeopleAndKeys},
		{"Teams", testTeams},
		{"CreateAndDeleteHost", testCreateAndDeleteHost},
		{"UseTOTPStep", testUseTOTPStep},
		{"TokensNeverReplaceAnEnrolledAgent", testTokensNeverReplaceAnEnrolledAgent},
		{"Events", testEvents},
		{"AuditChainAppends", testAuditChainAppends},
		{"AuditChainTwoWriters", testAuditChainTwoWriters},
		{"CheckpointsAndManifests", testCheckpointsAndManifests},
		{"CheckpointTwoSigners", testCheckpointTwoSigners},
		{"AuditChainPagesLetAppendsIn", testAuditChainPagesLetAppendsIn},
		{"LimitWindows", testLimitWindows},
		{"LimitLocks", testLimitLocks},
		{"ClusterInterruptOwnRows", testInterruptOwnRows},
		{"ClusterExpireGateways", testExpireGateways},
		{"ClusterTakeoverRace", testTakeoverRace},
		{"ClusterKillRequests", testKillRequests},
		{"ClusterKillRequestsNeverLost", testKillRequestsNeverLost},
		{"ClusterPresence", testPresence},
	} {
		t.Run(c.name, func(t *testing.T) { c.f(t, b) })
	}
}

// testMigrations: a database is migrated once, keeps its data when
// opened again, and one from a newer rr is refused.
func testMigrations(t *testing.T, b Backend) {
	db := b.New(t)
	s := db.open(t)
	if err := s.UpsertHost(ctx, "web-01"); err != nil {
		t.Fatal(err)
	}
	v1, err := s.SchemaVersion(ctx)
	if err != nil || v1 < 8 {
		t.Fatalf("version %d %v", v1, err)
	}
	s2 := db.open(t)
	if v2, _ := s2.SchemaVersion(ctx); v2 != v1 {
		t.Fatalf("reopen changed version %d → %d", v1, v2)
	}
	if _, err := s2.Host(ctx, "web-01"); err != nil {
		t.Fatalf("data lost on reopen: %v", err)
	}
	if err := db.Exec(`INSERT INTO schema_version (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	s3, err := db.Open()
	if err == nil {
		s3.Close()
		t.Fatal("a newer schema was accepted")
	}
	if !strings.Contains(err.Error(), "newer than this program knows") {
		t.Fatalf("refusal %q does not say why", err)
	}
}

// testOpenRacesOpen: gateways opening one new database at once all
// migrate it, without error, once.
func testOpenRacesOpen(t *testing.T, b Backend) {
	for range 5 {
		db := b.New(t)
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Go(func() {
				s, err := db.Open()
				if err == nil {
					s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
}

// atOnce runs f with each store on a goroutine of its own, all released
// together (gateways racing for one row), and returns their errors.
func atOnce(stores []*sqlstore.Store, f func(i int, st *sqlstore.Store) error) error {
	errs := make([]error, len(stores))
	var ready, wg sync.WaitGroup
	ready.Add(len(stores))
	for i, st := range stores {
		wg.Go(func() {
			ready.Done()
			ready.Wait()
			errs[i] = f(i, st)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
