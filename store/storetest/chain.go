package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlstore"
)

// VerifyChain walks the store's chain and returns the first seq whose
// hash or link does not hold (0 when all do).
func VerifyChain(t *testing.T, s *sqlstore.Store) (n int, broken int64) {
	t.Helper()
	var prev string
	var last int64
	err := s.AuditChain(context.Background(), 1, func(e store.AuditEvent) error {
		n++
		if broken == 0 && (e.Seq != last+1 || e.Prev != prev || store.ChainHash(e.Prev, e) != e.Hash) {
			broken = e.Seq
		}
		prev, last = e.Hash, e.Seq
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, broken
}

func testAuditChainAppends(t *testing.T, b Backend) {
	s := b.fresh(t)
	ctx := context.Background()
	var prev string
	for i := range 3 {
		e, err := s.AppendAudit(ctx, store.AuditEvent{Time: time.Unix(1, int64(i)), Actor: "alice", Action: "auth.login"})
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != int64(i+1) || e.Prev != prev || e.Hash != store.ChainHash(prev, e) {
			t.Fatalf("event %d: %+v", i, e)
		}
		prev = e.Hash
	}
	head, err := s.AuditHead(ctx)
	if err != nil || head.Hash != prev || head.Seq != 3 {
		t.Fatalf("head %+v, %v", head, err)
	}
	// An event written in a transaction with other changes (pruning a
	// declared name) is chained too.
	if err := s.UpsertHost(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDeclared(ctx, "host", []string{"old"}); err != nil {
		t.Fatal(err)
	}
	if gone, err := s.PruneDeclared(ctx, "host", nil, time.Now()); err != nil || len(gone) != 1 {
		t.Fatalf("pruned %v, %v", gone, err)
	}
	if n, broken := VerifyChain(t, s); broken != 0 {
		t.Fatalf("%d events, broken at %d", n, broken)
	}
}

// Two stores on one database (as two gateways would be) appending at once
// keep one unbroken chain: the head is read and the next event written in
// one transaction that excludes the other writers.
func testAuditChainTwoWriters(t *testing.T, b Backend) {
	db := b.New(t)
	a, other := db.open(t), db.open(t)
	const each = 200
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for w, s := range []*sqlstore.Store{a, other} {
		wg.Go(func() {
			for i := range each {
				if err := s.Audit(context.Background(), store.AuditEvent{Actor: fmt.Sprint(w), Action: "x", Detail: fmt.Sprint(i)}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, broken := VerifyChain(t, a); n != 2*each || broken != 0 {
		t.Fatalf("%d events, broken at %d", n, broken)
	}
}

func testCheckpointsAndManifests(t *testing.T, b Backend) {
	s := b.fresh(t)
	ctx := context.Background()
	c := store.Checkpoint{Seq: 4, Head: "ab", At: time.Unix(5, 6).UTC(), Signature: "sig"}
	if err := s.AddCheckpoint(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCheckpoint(ctx, c); err != nil {
		t.Fatalf("the same checkpoint again: %v", err)
	}
	if err := s.AddCheckpoint(ctx, store.Checkpoint{Seq: 4, Head: "cd"}); err == nil {
		t.Fatal("another head for a signed seq was accepted")
	}
	cps, err := s.Checkpoints(ctx)
	if err != nil || len(cps) != 1 || cps[0] != c {
		t.Fatalf("%+v, %v", cps, err)
	}
	if _, err := s.Manifest(ctx, "s1"); err == nil {
		t.Fatal("a manifest that was never set")
	}
	if err := s.SetManifest(ctx, "s1", []byte("m"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Manifest(ctx, "s1"); err != nil || string(m) != "m" {
		t.Fatalf("%q, %v", m, err)
	}
}

// testCheckpointTwoSigners: gateways signing the same head at once (each
// its own handle; both at shutdown, say) all succeed: a checkpoint of
// the head that is there already is no error.
func testCheckpointTwoSigners(t *testing.T, b Backend) {
	db := b.New(t)
	stores := []*sqlstore.Store{db.open(t), db.open(t), db.open(t)}
	for seq := range int64(10) {
		err := atOnce(stores, func(i int, st *sqlstore.Store) error {
			return st.AddCheckpoint(ctx, store.Checkpoint{Seq: seq, Head: fmt.Sprint("head-", seq),
				At: time.Unix(seq, int64(i)).UTC(), Signature: fmt.Sprint("sig-", i)})
		})
		if err != nil {
			t.Fatalf("checkpoint %d signed by three at once: %v", seq, err)
		}
	}
	if cps, err := stores[1].Checkpoints(ctx); err != nil || len(cps) != 10 {
		t.Fatalf("%d checkpoints, %v", len(cps), err)
	}
}

// A walk of the chain reads it in pages: an append from inside it (the
// store has one connection) goes through rather than wait for the walk.
func testAuditChainPagesLetAppendsIn(t *testing.T, b Backend) {
	s := b.fresh(t)
	ctx := context.Background()
	for i := range 12000 {
		if err := s.Audit(ctx, store.AuditEvent{Action: "x", Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	err := s.AuditChain(ctx, 1, func(e store.AuditEvent) error {
		n++
		if n%5000 == 1 {
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return s.Audit(actx, store.AuditEvent{Action: "during"})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("an append during the walk: %v", err)
	}
	if n < 12002 { // the last append comes after the last page was read
		t.Fatalf("walked %d events, want the 12000 and those appended before the last page", n)
	}
}
