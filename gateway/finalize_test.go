package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
)

// TestFinalizerWaitsForTheStore: session ends written while the store
// does not answer are kept, in order, and written once it answers again;
// an end that comes while others wait queues behind them; a step the
// store refuses for good is passed, not retried forever.
func TestFinalizerWaitsForTheStore(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	var wrote []string
	step := func(name string) finalStep {
		return finalStep{name, func(context.Context) error {
			if down.Load() {
				return errors.New("connection refused")
			}
			mu.Lock()
			wrote = append(wrote, name)
			mu.Unlock()
			return nil
		}}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	f := newFinalizer(slog.New(slog.DiscardHandler), stop, &wg)
	defer func() { close(stop); wg.Wait() }()
	log := slog.New(slog.DiscardHandler)
	f.run(log, []finalStep{step("s1 row"), step("s1 audit")})
	drained, empty := f.drained()
	if empty {
		t.Fatal("a job the store refused is not queued")
	}
	down.Store(false)
	// The store is back, but s1 waits: s2 goes behind it, not before.
	f.run(log, []finalStep{step("s2 row"), {"s2 gone", func(context.Context) error {
		return fmt.Errorf("%w: session s2", store.ErrNotFound)
	}}, step("s2 audit")})
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("the queue did not drain once the store answered")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"s1 row", "s1 audit", "s2 row", "s2 audit"}; !slices.Equal(wrote, want) {
		t.Fatalf("written %v, want %v", wrote, want)
	}
}

// TestFinalizerBoundsAudits: lone audit events wait for the store like
// sessions' ends, but at most maxFinalAudits of them, so that a flood of
// refused logins during an outage never crowds out a session's end.
func TestFinalizerBoundsAudits(t *testing.T) {
	down := func(context.Context) error { return errors.New("connection refused") }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	f := newFinalizer(slog.New(slog.DiscardHandler), stop, &wg)
	defer func() { close(stop); wg.Wait() }()
	log := slog.New(slog.DiscardHandler)
	for range maxFinalAudits + 10 {
		f.runAudit(log, finalStep{"audit", down})
	}
	f.run(log, []finalStep{{"row", down}})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.audits != maxFinalAudits || len(f.queue) != maxFinalAudits+1 || f.queue[len(f.queue)-1].audit {
		t.Fatalf("queued %d audits of %d jobs; want %d audits and the session's end after them", f.audits, len(f.queue), maxFinalAudits)
	}
}
