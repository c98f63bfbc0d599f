package auth

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
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

// limiter keeps the counters in memory: a restart forgets them, and
// several gateways count apart (a shared store will carry them later).
//
// Failures lock out in two separate books: password guesses by the name
// they were made for (a stranger guessing alice's password locks out
// alice's password logins, never her key), and wrong factors asked after
// identity was proven (team, host passphrase, code) by the person. A run
// of failures is forgotten after LockoutMax without another, and the
// lockout history (each lockout doubles the next) after a day without one.
type limiter struct {
	l   Limits
	now func() time.Time

	mu        sync.Mutex
	sources   map[string]*rate.Limiter // by sourceKey
	mails     map[string]*window
	passwords map[string]*lockState // by login name
	factors   map[string]*lockState // by person
	swept     time.Time             // last sweep of the two books
}

// window counts events in a fixed window.
type window struct {
	start time.Time
	n     int
}

type lockState struct {
	failures int
	lockouts int
	until    time.Time // locked out before then
	last     time.Time // last failure
}

// maxBook bounds each book: past it, a sweep drops every entry not locked
// out now, rather than let a flood of names grow memory.
const maxBook = 100000

// historyTTL is how long a lockout history lasts without a failure.
const historyTTL = 24 * time.Hour

func newLimiter(l Limits, now func() time.Time) *limiter {
	return &limiter{l: l, now: now, sources: map[string]*rate.Limiter{}, mails: map[string]*window{},
		passwords: map[string]*lockState{}, factors: map[string]*lockState{}}
}

// maxWindows is how many addresses (or people) are counted before idle
// ones are dropped as the next one comes.
const maxWindows = 10000

// take counts one event in m[key] and reports whether it is within max per
// d. Old windows are dropped as the map is walked now and then.
func (lm *limiter) take(m map[string]*window, key string, max int, d time.Duration) bool {
	now := lm.now()
	if len(m) > maxWindows {
		for k, w := range m {
			if now.Sub(w.start) > d {
				delete(m, k)
			}
		}
	}
	w := m[key]
	if w == nil || now.Sub(w.start) > d {
		w = &window{start: now}
		m[key] = w
	}
	w.n++
	return w.n <= max
}

// attempt reports whether source (host:port or host) may start another
// authentication; it is counted by address (an IPv6 one by its /64), not
// by connection.
func (lm *limiter) attempt(source string) bool {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	now := lm.now()
	if len(lm.sources) > maxWindows {
		// A bucket that has filled up again is no different from a new one.
		for k, r := range lm.sources {
			if r.TokensAt(now) >= float64(r.Burst()) {
				delete(lm.sources, k)
			}
		}
	}
	key := sourceKey(source)
	r := lm.sources[key]
	if r == nil {
		every := rate.Limit(float64(lm.l.SourceAttempts) / lm.l.SourceWindow.Seconds())
		r = rate.NewLimiter(every, lm.l.SourceAttempts)
		lm.sources[key] = r
	}
	return r.AllowN(now, 1)
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
	lm.mu.Lock()
	defer lm.mu.Unlock()
	return lm.take(lm.mails, person, lm.l.MailsPerPerson, lm.l.MailWindow)
}

// passwordLocked reports whether password logins as name are locked out.
func (lm *limiter) passwordLocked(name string) bool { return lm.locked(lm.passwords, name) }

// factorLocked reports whether person may not be asked factors now.
func (lm *limiter) factorLocked(person string) bool { return lm.locked(lm.factors, person) }

// passwordFailure and factorFailure count a failure and report whether it
// has just locked the name or person out.
func (lm *limiter) passwordFailure(name string) bool { return lm.failure(lm.passwords, name) }
func (lm *limiter) factorFailure(person string) bool { return lm.failure(lm.factors, person) }

// passwordSuccess and factorSuccess end a run of failures (not the lockout
// history). A factor run ends only when the last factor passes: a right
// passphrase followed by wrong codes is still a run.
func (lm *limiter) passwordSuccess(name string) { lm.success(lm.passwords, name) }
func (lm *limiter) factorSuccess(person string) { lm.success(lm.factors, person) }

func (lm *limiter) locked(book map[string]*lockState, key string) bool {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	st := book[key]
	return st != nil && lm.now().Before(st.until)
}

func (lm *limiter) failure(book map[string]*lockState, key string) bool {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	now := lm.now()
	lm.sweep(now)
	st := book[key]
	if st == nil {
		st = &lockState{}
		book[key] = st
	}
	switch {
	case now.Sub(st.last) > historyTTL:
		st.failures, st.lockouts = 0, 0
	case now.Sub(st.last) > lm.l.LockoutMax:
		st.failures = 0
	}
	st.last = now
	st.failures++
	if st.failures < lm.l.FailuresBeforeLockout {
		return false
	}
	d := lm.l.LockoutBase << min(st.lockouts, 20)
	if d > lm.l.LockoutMax || d <= 0 {
		d = lm.l.LockoutMax
	}
	st.until, st.failures = now.Add(d), 0
	st.lockouts++
	return true
}

func (lm *limiter) success(book map[string]*lockState, key string) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	if st := book[key]; st != nil {
		st.failures = 0
	}
}

// sweep drops, at most once a minute, the entries that no longer matter:
// not locked out, and no failure within historyTTL. A book still over
// maxBook then loses every entry not locked out now.
func (lm *limiter) sweep(now time.Time) {
	if now.Sub(lm.swept) < time.Minute && len(lm.passwords)+len(lm.factors) <= 2*maxBook {
		return
	}
	lm.swept = now
	for _, book := range []map[string]*lockState{lm.passwords, lm.factors} {
		for k, st := range book {
			if !now.Before(st.until) && now.Sub(st.last) > historyTTL {
				delete(book, k)
			}
		}
		if len(book) > maxBook {
			for k, st := range book {
				if !now.Before(st.until) {
					delete(book, k)
				}
			}
		}
	}
}
