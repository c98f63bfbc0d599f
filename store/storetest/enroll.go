package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlstore"
)

// TestTokensNeverReplaceAnEnrolledAgent: once a key is bound to a host, no
// token is made for it and none made before is spent (the store has the
// last word, whatever the console or the CLI checked); ReenrollHost clears
// the key, spends the old tokens and makes the one new token work.
func testTokensNeverReplaceAnEnrolledAgent(t *testing.T, b Backend) {
	s := b.fresh(t)
	now := time.Now()
	sum := func(s string) []byte { return store.EnrollTokenHash([]byte(s)) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.UpsertHost(ctx, "web-01"))
	must(s.CreateEnrollToken(ctx, "web-01", sum("early"), now.Add(time.Hour)))
	must(s.CreateEnrollToken(ctx, "web-01", sum("first"), now.Add(time.Hour)))
	must(s.UseEnrollToken(ctx, "web-01", sum("first"), "ssh-ed25519 GOOD", now))

	if err := s.CreateEnrollToken(ctx, "web-01", sum("rogue"), now.Add(time.Hour)); !errors.Is(err, store.ErrEnrolled) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("token for an enrolled host: %v, want ErrEnrolled", err)
	}
	if err := s.UseEnrollToken(ctx, "web-01", sum("early"), "ssh-ed25519 ROGUE", now); !errors.Is(err, store.ErrEnrolled) {
		t.Fatalf("a token made before the enrollment, spent after it: %v, want ErrEnrolled", err)
	}
	if h, _ := s.Host(ctx, "web-01"); h.AgentKey != "ssh-ed25519 GOOD" {
		t.Fatalf("bound key %q after the refusals", h.AgentKey)
	}

	old, err := s.ReenrollHost(ctx, "web-01", sum("again"), now.Add(time.Hour), now)
	if err != nil || old != "ssh-ed25519 GOOD" {
		t.Fatalf("reenroll: %q %v", old, err)
	}
	if h, _ := s.Host(ctx, "web-01"); h.AgentKey != "" {
		t.Fatalf("the old key %q is still bound after reenroll", h.AgentKey)
	}
	if err := s.UseEnrollToken(ctx, "web-01", sum("early"), "ssh-ed25519 ROGUE", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a token from before the reenroll: %v, want ErrNotFound", err)
	}
	must(s.UseEnrollToken(ctx, "web-01", sum("again"), "ssh-ed25519 NEW", now))
	if h, _ := s.Host(ctx, "web-01"); h.AgentKey != "ssh-ed25519 NEW" {
		t.Fatalf("bound key %q after the reenrollment", h.AgentKey)
	}
	if _, err := s.ReenrollHost(ctx, "nowhere", sum("x"), now.Add(time.Hour), now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reenroll of a missing host: %v", err)
	}
}

// testEnrollTokenSpentOnce: gateways spending one token at once (two
// agents presenting it to two gateways) — one wins, the others are told
// it is gone, and the host is bound to the winner's key.
func testEnrollTokenSpentOnce(t *testing.T, b Backend) {
	db := b.New(t)
	stores := []*sqlstore.Store{db.open(t), db.open(t), db.open(t)}
	s := stores[0]
	now := time.Now()
	if err := s.UpsertHost(ctx, "web-01"); err != nil {
		t.Fatal(err)
	}
	hash := store.EnrollTokenHash([]byte("tok"))
	if err := s.CreateEnrollToken(ctx, "web-01", hash, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Go(func() { errs[i] = st.UseEnrollToken(ctx, "web-01", hash, fmt.Sprint("key-", i), now) })
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("the token was spent twice (by %d and %d)", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrEnrolled):
			t.Fatalf("a losing spender got %v", err)
		}
	}
	if won < 0 {
		t.Fatalf("nobody spent the token: %v", errs)
	}
	if h, _ := s.Host(ctx, "web-01"); h.AgentKey != fmt.Sprint("key-", won) {
		t.Fatalf("bound to %q, the winner was %d", h.AgentKey, won)
	}
}
