package auth

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
)

// TestHashGateOrderAndDeadline: the gate hands out its budget first come,
// first served, proven checks (passphrases) ahead of anonymous ones
// (passwords); a check that does not fit waits, and gives up at its
// deadline leaving the budget as it was.
func TestHashGateOrderAndDeadline(t *testing.T) {
	g := newHashGate(128 << 20) // two checks of 64 MiB
	ctx := context.Background()
	const m = 64 << 10 // KiB
	if err := g.acquire(ctx, m, false); err != nil {
		t.Fatal(err)
	}
	if err := g.acquire(ctx, m, false); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	for _, proven := range []bool{false, true} {
		if err := g.acquire(short, m, proven); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a third check over the budget (proven %v): %v, want its deadline", proven, err)
		}
	}
	// Two anonymous waiters, then a proven one: the proven one is served
	// first, then the others in their order.
	got := make(chan int, 3)
	for i := range 3 {
		go func() {
			if err := g.acquire(ctx, m, i == 2); err == nil {
				got <- i
			}
		}()
		g.waitQueued(i + 1) // queued in this order
	}
	for _, want := range []int{2, 0, 1} {
		g.release(m)
		if i := <-got; i != want {
			t.Fatalf("waiter %d served, want %d", i, want)
		}
	}
	g.release(m)
	g.release(m)
	if g.free != g.size || g.waiters.Len() != 0 || g.proven != 0 {
		t.Fatalf("budget not whole after every release: free %d of %d, %d waiting (%d proven)", g.free, g.size, g.waiters.Len(), g.proven)
	}
	if err := g.acquire(ctx, g.size+1, false); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a verifier over the whole budget: %v, want refused at once", err)
	}
	if small := newHashGate(1 << 20); small.size != int64(verifierParams.Memory) {
		t.Fatalf("a budget under one check holds %d KiB, want one check's %d", small.size, verifierParams.Memory)
	}
}

// TestFinishedCheckCollectedBeforeItsShareGoesOn: a check's share of the
// budget goes back only once its memory is collected, with no check
// waiting too, so that a check let in right after it holds its own 64 MiB,
// not its own and the finished one's.
func TestFinishedCheckCollectedBeforeItsShareGoesOn(t *testing.T) {
	dir, _ := bobDir(t)
	s, err := New(Config{Directory: dir, Mailer: mailFunc(func(Message) error { return nil }), HashMemoryBudget: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runtime.GC() // the verifiers made above are garbage too
	if ok, _, err := s.checkSecret(ctx, "wrong", dir.people["bob"].PasswordHash, false); ok || err != nil {
		t.Fatalf("a wrong password: ok %v, err %v", ok, err)
	}
	// Nobody waited for the budget: take all of it as soon as it is back.
	if err := s.gate.acquire(ctx, s.gate.size, false); err != nil {
		t.Fatal(err)
	}
	defer s.gate.release(s.gate.size)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc >= 64<<20 {
		t.Fatalf("the budget is back while the finished check's memory is still in the heap (%d MiB allocated)", ms.HeapAlloc>>20)
	}
}

// TestBusyHashFailsWithoutHashing: with the budget taken, a password
// attempt waits HashWait, then fails as a wrong password does (same
// message, audited) without allocating the check's 64 MiB, and is not
// counted against the name; so is a passphrase.
func TestBusyHashFailsWithoutHashing(t *testing.T) {
	dir, _ := bobDir(t)
	var events []Event
	s, err := New(Config{Directory: dir, Mailer: mailFunc(func(Message) error { return nil }),
		Audit: func(e Event) { events = append(events, e) }, HashMemoryBudget: 64 << 20, HashWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := s.Interactive(ctx, promptFunc(func(string) string { return "pw" }), nil, "bob", "", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.gate.acquire(ctx, s.gate.size, false); err != nil { // every check is busy
		t.Fatal(err)
	}
	defer s.gate.release(s.gate.size)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 2 * DefaultLimits.FailuresBeforeLockout {
		_, err := s.Interactive(ctx, promptFunc(func(string) string { return "pw" }), nil, "bob", "", "192.0.2.2:1")
		var d *Denied
		if !errors.As(err, &d) || d.Message != "" || d.Reason != "hash memory budget busy" {
			t.Fatalf("password check with no budget: %v, want denied as a wrong password", err)
		}
	}
	_, err = s.HostFactors(ctx, promptFunc(func(string) string { return "pp" }), l, "h")
	var d *Denied
	if !errors.As(err, &d) || d.Reason != "wrong passphrase" {
		t.Fatalf("passphrase check with no budget: %v, want denied as a wrong passphrase", err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("%d MiB allocated by checks that had no budget", grew>>20)
	}
	busy := 0
	for _, e := range events {
		if e.Reason == "hash memory budget busy" && e.Outcome == "denied" {
			busy++
		}
	}
	if want := 2*DefaultLimits.FailuresBeforeLockout + s.cfg.PassphraseTries; busy != want {
		t.Fatalf("%d busy checks audited, want %d", busy, want)
	}
	if s.limiter.passwordLocked("bob") || s.limiter.factorLocked("bob") {
		t.Fatal("checks that checked nothing locked bob out")
	}
}

// TestLockoutBeforeHash: a name locked out is refused at once, without
// waiting for the hash budget (held here for longer than the attempt may
// take) or hashing.
func TestLockoutBeforeHash(t *testing.T) {
	dir, _ := bobDir(t)
	s, err := New(Config{Directory: dir, Mailer: mailFunc(func(Message) error { return nil }), HashWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bob", "nobody"} {
		ctx := context.Background()
		who := name
		if name == "nobody" {
			who = unknownName(name) // as unknown names are counted
		}
		for range DefaultLimits.FailuresBeforeLockout {
			s.limiter.passwordFailure(who)
		}
		if err := s.gate.acquire(ctx, s.gate.size, false); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := s.Interactive(ctx, promptFunc(func(string) string { return "pw" }), nil, name, "", "192.0.2.1:2")
		cancel()
		s.gate.release(s.gate.size)
		var d *Denied
		if !errors.As(err, &d) || d.Reason != "locked out" {
			t.Fatalf("%s locked out, with the hash budget busy: %v, want locked out at once", name, err)
		}
	}
}

// TestHashWaitTellsNoOneApart: a person whose verifier is cheap (bcrypt)
// waits for the hash budget as an unknown name (checked against the
// argon2id dummy) does: the wait does not tell them apart.
func TestHashWaitTellsNoOneApart(t *testing.T) {
	const cheap = "$2a$04$8Gp1DvmwH6Ta6SvqG1v1wuLm9yDMl7nVtAfrp6A7yXW9nWbbkPr1S"
	dir := &fakeDir{people: map[string]Person{"bob": {Name: "bob", Role: RoleAdvanced, PasswordHash: cheap}}}
	s, err := New(Config{Directory: dir, Mailer: mailFunc(func(Message) error { return nil }), HashMemoryBudget: 128 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s.dummyTook.Store(0) // only the wait counts here
	ctx := context.Background()
	// Hold all but 28 MiB: too little for a check of 64 MiB.
	held := s.gate.size - 28<<10
	if err := s.gate.acquire(ctx, held, false); err != nil {
		t.Fatal(err)
	}
	const hold = 300 * time.Millisecond
	time.AfterFunc(hold, func() { s.gate.release(held) })
	start := time.Now()
	s.Interactive(ctx, promptFunc(func(string) string { return "wrong" }), nil, "bob", "", "src")
	if d := time.Since(start); d < hold {
		t.Fatalf("bob's bcrypt check went past a busy budget in %v; an unknown name waits %v", d, hold)
	}
	if argon := mustHash(t, "x"); hashCost(cheap) != hashCost(argon) || !strings.HasPrefix(argon, "$argon2id$") {
		t.Fatalf("a bcrypt check costs %d KiB of the budget, an argon2id one %d", hashCost(cheap), hashCost(argon))
	}
}

// waitQueued returns once n checks wait in line.
func (g *hashGate) waitQueued(n int) {
	for {
		g.mu.Lock()
		queued := g.waiters.Len()
		g.mu.Unlock()
		if queued >= n {
			return
		}
		runtime.Gosched()
	}
}

// TestVerifierOverBudget: a verifier asking more memory than the whole
// budget is refused at once, as a bad verifier, never hashed.
func TestVerifierOverBudget(t *testing.T) {
	big, err := argon2id.CreateHash("pw", &argon2id.Params{Memory: 128 << 10, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	dir := &fakeDir{people: map[string]Person{"bob": {Name: "bob", Role: RoleAdvanced, PasswordHash: big}}}
	s, err := New(Config{Directory: dir, Mailer: mailFunc(func(Message) error { return nil }), HashMemoryBudget: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Interactive(context.Background(), promptFunc(func(string) string { return "pw" }), nil, "bob", "", "src")
	var d *Denied
	if !errors.As(err, &d) || !strings.Contains(d.Reason, "over the hash memory budget of 64 MiB") {
		t.Fatalf("a 128 MiB verifier with a 64 MiB budget: %v", err)
	}
}
