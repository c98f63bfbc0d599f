package auth

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/alexedwards/argon2id"
)

// DefaultHashMemoryBudget is the memory the password and passphrase
// checks may hold at once unless Config.HashMemoryBudget says otherwise:
// 8 checks of 64 MiB.
const DefaultHashMemoryBudget = 512 << 20

// DefaultHashWait is how long a check waits for its share of the budget
// unless Config.HashWait says otherwise.
const DefaultHashWait = 10 * time.Second

// ErrHashBusy is returned, and audited, for a check that could not get
// its memory from the budget before its deadline: it fails as a wrong
// answer would, without hashing anything.
var ErrHashBusy = errors.New("auth: every password and passphrase check is busy (hash memory budget)")

// hashGate bounds the memory that argon2id checks hold at once: each check
// takes the memory its verifier names (in KiB, as argon2id counts it) from
// the budget before hashing and gives it back after; checks that do not
// fit wait their turn, first come first served, until their deadline.
// Without it each attempt allocates 64 MiB, and a few addresses opening
// connections run the gateway out of memory.
//
// Checks for people whose identity is proven (host passphrases) wait
// ahead of anonymous ones (passwords), first come first served among
// themselves: a flood of password guesses delays a responder's passphrase
// by the checks running, not by the whole queue. Every password check is
// anonymous, so the order tells no one apart.
type hashGate struct {
	size int64 // KiB

	mu      sync.Mutex
	free    int64
	waiters list.List // of *gateWaiter: the proven in arrival order, then the others
	proven  int       // how many of waiters are proven
}

type gateWaiter struct {
	n      int64
	proven bool
	ready  chan struct{} // closed when its n are taken for it
}

// newHashGate makes a gate for a budget of bytes; it always fits one check
// of the verifiers HashSecret makes.
func newHashGate(bytes int64) *hashGate {
	size := max(bytes>>10, int64(verifierParams.Memory))
	return &hashGate{size: size, free: size}
}

// acquire takes n KiB, waiting in line until ctx is done; proven checks
// go ahead of the others.
func (g *hashGate) acquire(ctx context.Context, n int64, proven bool) error {
	g.mu.Lock()
	if n > g.size {
		g.mu.Unlock()
		return fmt.Errorf("auth: a verifier needing %d MiB is over the hash memory budget of %d MiB", n>>10, g.size>>10)
	}
	ahead := g.waiters.Len()
	if proven {
		ahead = g.proven
	}
	if ahead == 0 && g.free >= n {
		g.free -= n
		g.mu.Unlock()
		return nil
	}
	w := &gateWaiter{n: n, proven: proven, ready: make(chan struct{})}
	var e *list.Element
	if proven {
		e = g.insertProven(w)
	} else {
		e = g.waiters.PushBack(w)
	}
	g.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	select {
	case <-w.ready:
		// Granted as the deadline passed: give it back.
		g.free += n
	default:
		g.remove(e)
	}
	g.grant() // those behind it may fit now
	g.mu.Unlock()
	return ctx.Err()
}

// release gives n KiB back.
func (g *hashGate) release(n int64) {
	g.mu.Lock()
	g.free += n
	g.grant()
	g.mu.Unlock()
}

// grant hands the budget to waiters in order while the first fits.
func (g *hashGate) grant() {
	for e := g.waiters.Front(); e != nil; e = g.waiters.Front() {
		w := e.Value.(*gateWaiter)
		if w.n > g.free {
			return
		}
		g.free -= w.n
		g.remove(e)
		close(w.ready)
	}
}

// insertProven queues w behind the proven waiters, ahead of the others.
func (g *hashGate) insertProven(w *gateWaiter) *list.Element {
	g.proven++
	for e := g.waiters.Front(); e != nil; e = e.Next() {
		if !e.Value.(*gateWaiter).proven {
			return g.waiters.InsertBefore(w, e)
		}
	}
	return g.waiters.PushBack(w)
}

func (g *hashGate) remove(e *list.Element) {
	if e.Value.(*gateWaiter).proven {
		g.proven--
	}
	g.waiters.Remove(e)
}

// HashMemoryBudget is the memory (bytes) the checks may hold at once:
// Config.HashMemoryBudget, or its default, and never less than one check.
func (s *Service) HashMemoryBudget() int64 { return s.gate.size << 10 }

// hashCost is the memory (KiB) checking secret against verifier takes from
// the budget: what an argon2id verifier names, and never less than the
// verifiers HashSecret makes (a bcrypt check takes as much), so that
// waiting for the budget takes the same time for every password check —
// the dummy one for unknown people included.
func hashCost(verifier string) int64 {
	n := int64(verifierParams.Memory)
	if strings.HasPrefix(verifier, "$argon2id$") {
		if p, _, _, err := argon2id.DecodeHash(verifier); err == nil {
			n = max(n, int64(p.Memory))
		}
	}
	return n
}

// checkSecret is CheckSecret within the hash memory budget. It waits up to
// HashWait (or until ctx is done) for its share, ahead of anonymous checks
// if proven (the person's identity is proven), and returns ErrHashBusy if
// it did not get it; took is how long the hash itself took.
func (s *Service) checkSecret(ctx context.Context, secret, verifier string, proven bool) (ok bool, took time.Duration, err error) {
	n := hashCost(verifier)
	wctx, cancel := context.WithTimeout(ctx, s.cfg.HashWait)
	err = s.gate.acquire(wctx, n, proven)
	cancel()
	switch {
	case err != nil && ctx.Err() != nil:
		return false, 0, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return false, 0, ErrHashBusy
	case err != nil:
		// A verifier asking more memory than the whole budget: it can
		// never be checked until the budget grows.
		s.log.Error("verifier cannot be checked", "err", err)
		return false, 0, err
	}
	start := time.Now()
	ok, err = CheckSecret(secret, verifier)
	took = time.Since(start)
	go s.gate.releaseCollected(n)
	return ok, took, err
}

// releaseCollected gives n KiB back once the memory of the check that
// held them is collected. Until the next collection a finished check's
// memory is still in the heap, and a check let in before then would add
// its own to it: the gateway would hold the budget plus the finished
// checks (under load the collector lags behind the soft memory limit).
// Giving the share back only after a collection keeps what the checks
// hold within the budget, with or without a queue; on a goroutine of its
// own, so that no login waits for the collection. argon2's blocks hold no
// pointers: the collection marks only the rest of the heap.
func (g *hashGate) releaseCollected(n int64) {
	runtime.GC()
	g.release(n)
}
