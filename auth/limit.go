package auth

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits bound guessing and mail. Zero fields take DefaultLimits' values.
type Limits struct {
	// SourceAttempts per SourceWindow: authentication attempts one client
	// address may start, all at once or spread out; spent ones come back
	// at that rate.
	SourceAttempts int
	SourceWindow   time.Duration
	// FailuresBeforeLockout in a row lock a person (known or not) out for
	// LockoutBase, doubling with each further lockout up to LockoutMax.
	FailuresBeforeLockout int
	LockoutBase           time.Duration
	LockoutMax            time.Duration
	// MailsPerPerson codes may be mailed to one person per MailWindow.
	MailsPerPerson int
	MailWindow     time.Duration
}

// DefaultLimits are the limits a gateway runs with unless told otherwise.
var DefaultLimits = Limits{
	SourceAttempts: 30, SourceWindow: time.Minute,
	FailuresBeforeLockout: 5, LockoutBase: time.Minute, LockoutMax: time.Hour,
	MailsPerPerson: 5, MailWindow: 15 * time.Minute,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	return Limits{
		SourceAttempts:        orDefault(l.SourceAttempts, d.SourceAttempts),
		SourceWindow:          orDefault(l.SourceWindow, d.SourceWindow),
		FailuresBeforeLockout: orDefault(l.FailuresBeforeLockout, d.FailuresBeforeLockout),
		LockoutBase:           orDefault(l.LockoutBase, d.LockoutBase),
		LockoutMax:            orDefault(l.LockoutMax, d.LockoutMax),
		MailsPerPerson:        orDefault(l.MailsPerPerson, d.MailsPerPerson),
		MailWindow:            orDefault(l.MailWindow, d.MailWindow),
	}
}

// orDefault is v if it is set (positive), else d.
func orDefault[T int | int64 | time.Duration](v, d T) T {
	if v > 0 {
		return v
	}
	return d
}

// Counters keep the limits' counts. A store's (Config.Counters) are
// shared by every gateway on it and outlast restarts; without one they
// are kept in memory, per process (memCounters). Books: "source"
// (attempts by address), "mail" (codes by person), "password" (failures
// by login name), "factor" (failures by person).
type Counters interface {
	// HitWindow counts one event of name in book's fixed window of length
	// d (one begins with the first event after the last one ended) and
	// returns how many events the window holds, this one included.
	HitWindow(ctx context.Context, book, name string, d time.Duration, now time.Time) (int, error)
	// Window returns how many events name's window in book holds and when
	// it began (0 and the zero time when it has ended), counting nothing.
	Window(ctx context.Context, book, name string, d time.Duration, now time.Time) (int, time.Time, error)
	// UpdateLock calls f with name's lock state in book (zeros when it has
	// none) and keeps what f returns, atomically: another gateway's update
	// of the same state waits. The state may be dropped once keep has
	// passed since its last failure and its lockout has ended.
	UpdateLock(ctx context.Context, book, name string, now time.Time, keep time.Duration,
		f func(failures, lockouts int, last, until time.Time) (int, int, time.Time, time.Time)) error
	// ResetFailures ends name's run of failures in book (not its history).
	ResetFailures(ctx context.Context, book, name string) error
	// LockedUntil returns when name's lockout in book ends (zero: none).
	LockedUntil(ctx context.Context, book, name string) (time.Time, error)
	// SweepLimits drops the counts that no longer matter at now.
	SweepLimits(ctx context.Context, now time.Time) error
}

// The books of Counters.
const (
	bookSource   = "source"
	bookMail     = "mail"
	bookPassword = "password"
	bookFactor   = "factor"
)

// limiter applies Limits to Counters.
//
// Failures lock out in two separate books: password guesses by the name
// they were made for (a stranger guessing alice's password locks out
// alice's password logins, never her key), and wrong factors asked after
// identity was proven (team, host passphrase, code) by the person. A run
// of failures is forgotten after LockoutMax without another, and the
// lockout history (each lockout doubles the next) after a day without one.
//
// When the counters cannot be read (the store is unreachable) it fails
// closed: no attempt starts, everyone is locked out, no code is mailed.
type limiter struct {
	l   Limits
	now func() time.Time
	c   Counters
	log *slog.Logger

	mu    sync.Mutex
	swept time.Time // last SweepLimits
}

// historyTTL is how long a lockout history lasts without a failure.
const historyTTL = 24 * time.Hour

// storeTimeout bounds each call to the counters: a login waits no longer
// for a store that does not answer.
const storeTimeout = 5 * time.Second

// errCounters is the limiter failing closed for want of its counters.
var errCounters = errors.New("auth: the limits' counters cannot be read")

func newLimiter(l Limits, now func() time.Time) *limiter {
	return &limiter{l: l, now: now, c: newMemCounters(), log: slog.New(slog.DiscardHandler)}
}

func (lm *limiter) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeTimeout)
}

func (lm *limiter) failed(what string, err error) {
	lm.log.Error("auth: limits: "+what, "err", err)
}

// hit counts an event in book's window and reports whether it is within
// max.
func (lm *limiter) hit(book, name string, max int, d time.Duration) (bool, error) {
	ctx, cancel := lm.ctx()
	defer cancel()
	n, err := lm.c.HitWindow(ctx, book, name, d, lm.now())
	if err != nil {
		lm.failed(book, err)
		return false, errCounters
	}
	lm.sweep(ctx)
	return n <= max, nil
}

// attempt reports whether source (host:port or host) may start another
// authentication; it is counted by address (an IPv6 one by its /64), not
// by connection. errCounters: nobody may.
func (lm *limiter) attempt(source string) (bool, error) {
	return lm.hit(bookSource, sourceKey(source), lm.l.SourceAttempts, lm.l.SourceWindow)
}

// sourceKey is the address a source is counted under: its IP without the
// port, and for IPv6 the /64 a single host is usually given.
func sourceKey(source string) string {
	host := source
	if h, _, err := net.SplitHostPort(source); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// mail reports whether another code may be mailed to person.
func (lm *limiter) mail(person string) bool {
	ok, _ := lm.hit(bookMail, person, lm.l.MailsPerPerson, lm.l.MailWindow)
	return ok
}

// mailWait reports how long person must wait before another code may be
// mailed to them: 0 if one may be mailed now. It counts nothing.
func (lm *limiter) mailWait(person string) time.Duration {
	ctx, cancel := lm.ctx()
	defer cancel()
	now := lm.now()
	n, start, err := lm.c.Window(ctx, bookMail, person, lm.l.MailWindow, now)
	if err != nil {
		lm.failed("mail", err)
		return lm.l.MailWindow
	}
	if n < lm.l.MailsPerPerson {
		return 0
	}
	return max(start.Add(lm.l.MailWindow).Sub(now), time.Second)
}

// passwordLocked reports whether password logins as name are locked out.
func (lm *limiter) passwordLocked(name string) bool { return lm.locked(bookPassword, name) }

// factorLocked reports whether person may not be asked factors now.
func (lm *limiter) factorLocked(person string) bool { return lm.locked(bookFactor, person) }

// passwordFailure and factorFailure count a failure and report whether it
// has just locked the name or person out.
func (lm *limiter) passwordFailure(name string) bool { return lm.failure(bookPassword, name) }
func (lm *limiter) factorFailure(person string) bool { return lm.failure(bookFactor, person) }

// passwordSuccess and factorSuccess end a run of failures (not the lockout
// history). A factor run ends only when the last factor passes: a right
// passphrase followed by wrong codes is still a run.
func (lm *limiter) passwordSuccess(name string) { lm.success(bookPassword, name) }
func (lm *limiter) factorSuccess(person string) { lm.success(bookFactor, person) }

func (lm *limiter) locked(book, key string) bool {
	ctx, cancel := lm.ctx()
	defer cancel()
	until, err := lm.c.LockedUntil(ctx, book, key)
	if err != nil {
		lm.failed(book, err)
		return true
	}
	return lm.now().Before(until)
}

func (lm *limiter) failure(book, key string) bool {
	ctx, cancel := lm.ctx()
	defer cancel()
	now := lm.now()
	var locked bool
	err := lm.c.UpdateLock(ctx, book, key, now, historyTTL,
		func(failures, lockouts int, last, until time.Time) (int, int, time.Time, time.Time) {
			locked = false // f may be called again when a transaction retries
			switch {
			case now.Sub(last) > historyTTL:
				failures, lockouts = 0, 0
			case now.Sub(last) > lm.l.LockoutMax:
				failures = 0
			}
			last = now
			failures++
			if failures < lm.l.FailuresBeforeLockout {
				return failures, lockouts, last, until
			}
			d := lm.l.LockoutBase << min(lockouts, 20)
			if d > lm.l.LockoutMax || d <= 0 {
				d = lm.l.LockoutMax
			}
			locked = true
			return 0, lockouts + 1, last, now.Add(d)
		})
	if err != nil {
		lm.failed(book, err)
		return false
	}
	lm.sweep(ctx)
	return locked
}

func (lm *limiter) success(book, key string) {
	ctx, cancel := lm.ctx()
	defer cancel()
	if err := lm.c.ResetFailures(ctx, book, key); err != nil {
		lm.failed(book, err)
	}
}

// sweep asks the counters, at most once a minute, to drop what no longer
// counts, so that a flood of names or addresses does not grow them
// without end.
func (lm *limiter) sweep(ctx context.Context) {
	now := lm.now()
	lm.mu.Lock()
	due := now.Sub(lm.swept) >= time.Minute
	if due {
		lm.swept = now
	}
	lm.mu.Unlock()
	if due {
		if err := lm.c.SweepLimits(ctx, now); err != nil {
			lm.failed("sweep", err)
		}
	}
}

// StoreDownMessage is what a person is told when a login cannot go on
// because the gateway's store does not answer (a database that is down
// or unreachable): short, and not their fault.
const StoreDownMessage = "rr: the gateway cannot reach its database; try again in a minute"
