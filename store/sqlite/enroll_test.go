package sqlite

import (
	"errors"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
)

// TestTokensNeverReplaceAnEnrolledAgent: once a key is bound to a host, no
// token is made for it and none made before is spent (the store has the
// last word, whatever the console or the CLI checked); ReenrollHost clears
// the key, spends the old tokens and makes the one new token work.
func TestTokensNeverReplaceAnEnrolledAgent(t *testing.T) {
	s, _ := open(t)
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
