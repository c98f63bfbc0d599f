package storetest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// testLimitWindows: a window counts across every handle on the database
// (every gateway), survives a reopen (a restart), and starts afresh once
// it has ended; Window peeks without counting.
func testLimitWindows(t *testing.T, b Backend) {
	db := b.New(t)
	a, other := db.open(t), db.open(t)
	now := time.Unix(1_700_000_000, 0)
	for i, s := range []any{a, other, a} {
		st := a
		if s == other {
			st = other
		}
		n, err := st.HitWindow(ctx, "mail", "bob", time.Minute, now.Add(time.Duration(i)*time.Second))
		if err != nil || n != i+1 {
			t.Fatalf("hit %d: %d, %v", i, n, err)
		}
	}
	again := db.open(t)
	n, start, err := again.Window(ctx, "mail", "bob", time.Minute, now.Add(10*time.Second))
	if err != nil || n != 3 || !start.Equal(now) {
		t.Fatalf("after a reopen: %d since %v, %v; want 3 since %v", n, start, err, now)
	}
	if n, _ := again.HitWindow(ctx, "mail", "alice", time.Minute, now); n != 1 {
		t.Fatalf("alice's window counted bob's: %d", n)
	}
	if n, _ := again.HitWindow(ctx, "source", "bob", time.Minute, now); n != 1 {
		t.Fatalf("another book counted mail's: %d", n)
	}
	later := now.Add(time.Minute)
	if n, _, _ := again.Window(ctx, "mail", "bob", time.Minute, later); n != 0 {
		t.Fatalf("an ended window still holds %d", n)
	}
	if n, _ := again.HitWindow(ctx, "mail", "bob", time.Minute, later); n != 1 {
		t.Fatalf("a new window began at %d", n)
	}
}

// testLimitLocks: failures counted on several handles at once (gateways)
// all count; a lockout is seen by every handle and after a reopen; a
// reset ends the run but not the lockout; expired rows are swept.
func testLimitLocks(t *testing.T, b Backend) {
	db := b.New(t)
	stores := []interface {
		UpdateLock(ctx2 context.Context, book, name string, now time.Time, keep time.Duration,
			f func(int, int, time.Time, time.Time) (int, int, time.Time, time.Time)) error
	}{db.open(t), db.open(t), db.open(t)}
	now := time.Unix(1_700_000_000, 0)
	const each = 10
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*each)
	for _, s := range stores {
		wg.Go(func() {
			for range each {
				errs <- s.UpdateLock(ctx, "factor", "bob", now, time.Hour,
					func(n, lockouts int, last, until time.Time) (int, int, time.Time, time.Time) {
						return n + 1, lockouts, now, until
					})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := db.open(t)
	var got int
	lockUntil := now.Add(5 * time.Minute)
	if err := s.UpdateLock(ctx, "factor", "bob", now, time.Hour, func(n, lockouts int, last, until time.Time) (int, int, time.Time, time.Time) {
		got = n
		return 0, lockouts + 1, now, lockUntil
	}); err != nil {
		t.Fatal(err)
	}
	if got != len(stores)*each {
		t.Fatalf("%d failures counted, want %d: concurrent updates were lost", got, len(stores)*each)
	}
	for _, h := range []interface {
		LockedUntil(context.Context, string, string) (time.Time, error)
	}{db.open(t), db.open(t)} {
		if until, err := h.LockedUntil(ctx, "factor", "bob"); err != nil || !until.Equal(lockUntil) {
			t.Fatalf("locked until %v, %v; want %v", until, err, lockUntil)
		}
	}
	if until, _ := s.LockedUntil(ctx, "password", "bob"); !until.IsZero() {
		t.Fatalf("the password book has bob's factor lockout: %v", until)
	}
	if err := s.ResetFailures(ctx, "factor", "bob"); err != nil {
		t.Fatal(err)
	}
	if until, _ := s.LockedUntil(ctx, "factor", "bob"); !until.Equal(lockUntil) {
		t.Fatal("a reset ended the lockout")
	}
	// Swept only once both the lockout and keep (an hour after the last
	// failure) have passed.
	if err := s.SweepLimits(ctx, lockUntil.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var lockouts int
	s.UpdateLock(ctx, "factor", "bob", now, time.Hour, func(n, l int, last, until time.Time) (int, int, time.Time, time.Time) {
		lockouts = l
		return n, l, last, until
	})
	if lockouts != 1 {
		t.Fatal("a sweep dropped a history still kept")
	}
	if _, err := s.HitWindow(ctx, "mail", "bob", time.Minute, now); err != nil {
		t.Fatal(err)
	}
	if err := s.SweepLimits(ctx, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if until, _ := s.LockedUntil(ctx, "factor", "bob"); !until.IsZero() {
		t.Fatal("an expired lock state was not swept")
	}
	if n, _, _ := s.Window(ctx, "mail", "bob", 3*time.Hour, now.Add(2*time.Hour)); n != 0 {
		t.Fatal("an expired window was not swept")
	}
}
