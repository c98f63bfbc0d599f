package auth

import (
	"sync"
	"time"
)

// Limits bound guessing and mail. Zero fields take DefaultLimits' values.
type Limits struct {
	// SourceAttempts per SourceWindow: authentication attempts one client
	// address may start.
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
func orDefault[T int | time.Duration](v, d T) T {
	if v > 0 {
		return v
	}
	return d
}

// limiter keeps the counters in memory: a restart forgets them, and
// several gateways count apart (a shared store will carry them later).
type limiter struct {
	l   Limits
	now func() time.Time

	mu      sync.Mutex
	sources map[string]*window
	mails   map[string]*window
	people  map[string]*lockState
}

// window counts events in a fixed window.
type window struct {
	start time.Time
	n     int
}

type lockState struct {
	failures int
	lockouts int
	until    time.Time
}

func newLimiter(l Limits, now func() time.Time) *limiter {
	return &limiter{l: l, now: now, sources: map[string]*window{}, mails: map[string]*window{}, people: map[string]*lockState{}}
}

// take counts one event in m[key] and reports whether it is within max per
// d. Old windows are dropped as the map is walked now and then.
func (lm *limiter) take(m map[string]*window, key string, max int, d time.Duration) bool {
	now := lm.now()
	if len(m) > 10000 {
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

// attempt reports whether source may start another authentication.
func (lm *limiter) attempt(source string) bool {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	return lm.take(lm.sources, source, lm.l.SourceAttempts, lm.l.SourceWindow)
}

// mail reports whether another code may be mailed to person.
func (lm *limiter) mail(person string) bool {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	return lm.take(lm.mails, person, lm.l.MailsPerPerson, lm.l.MailWindow)
}

// locked reports whether person is locked out now.
func (lm *limiter) locked(person string) bool {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	st := lm.people[person]
	return st != nil && lm.now().Before(st.until)
}

// failure counts a failed factor for person and reports whether it has
// just locked them out.
func (lm *limiter) failure(person string) bool {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	st := lm.people[person]
	if st == nil {
		if len(lm.people) > 10000 {
			now := lm.now()
			for k, v := range lm.people {
				if now.After(v.until) && v.failures == 0 {
					delete(lm.people, k)
				}
			}
		}
		st = &lockState{}
		lm.people[person] = st
	}
	st.failures++
	if st.failures < lm.l.FailuresBeforeLockout {
		return false
	}
	d := lm.l.LockoutBase << min(st.lockouts, 20)
	if d > lm.l.LockoutMax || d <= 0 {
		d = lm.l.LockoutMax
	}
	st.until, st.failures = lm.now().Add(d), 0
	st.lockouts++
	return true
}

// success clears person's run of failures (but not their lockout history).
func (lm *limiter) success(person string) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	if st := lm.people[person]; st != nil {
		st.failures = 0
	}
}
