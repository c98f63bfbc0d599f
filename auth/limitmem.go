package auth

import (
	"context"
	"sync"
	"time"
)

// memCounters are Counters in memory: one process's, forgotten at a
// restart. For a gateway without a store's counters, and auth's tests.
type memCounters struct {
	mu      sync.Mutex
	windows map[bookKey]*window
	locks   map[bookKey]*lockState
}

type bookKey struct{ book, name string }

// window counts events in a fixed window.
type window struct {
	start, end time.Time
	n          int
}

type lockState struct {
	failures, lockouts int
	last, until        time.Time
	keep               time.Duration
}

func (l *lockState) expired(now time.Time) bool {
	return !now.Before(l.until) && now.Sub(l.last) > l.keep
}

// maxWindows is how many windows are kept before ended ones are dropped
// as the next one comes; maxBook bounds the lock states: past it, a
// sweep drops every one not locked out now.
const (
	maxWindows = 10000
	maxBook    = 100000
)

func newMemCounters() *memCounters {
	return &memCounters{windows: map[bookKey]*window{}, locks: map[bookKey]*lockState{}}
}

func (m *memCounters) HitWindow(_ context.Context, book, name string, d time.Duration, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.windows) > maxWindows {
		for k, w := range m.windows {
			if !now.Before(w.end) {
				delete(m.windows, k)
			}
		}
	}
	k := bookKey{book, name}
	w := m.windows[k]
	if w == nil || !now.Before(w.end) {
		w = &window{start: now, end: now.Add(d)}
		m.windows[k] = w
	}
	w.n++
	return w.n, nil
}

func (m *memCounters) Window(_ context.Context, book, name string, _ time.Duration, now time.Time) (int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.windows[bookKey{book, name}]
	if w == nil || !now.Before(w.end) {
		return 0, time.Time{}, nil
	}
	return w.n, w.start, nil
}

func (m *memCounters) UpdateLock(_ context.Context, book, name string, now time.Time, keep time.Duration,
	f func(failures, lockouts int, last, until time.Time) (int, int, time.Time, time.Time)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.locks) > 2*maxBook {
		m.sweep(now)
	}
	k := bookKey{book, name}
	st := m.locks[k]
	if st == nil {
		st = &lockState{}
		m.locks[k] = st
	}
	st.failures, st.lockouts, st.last, st.until = f(st.failures, st.lockouts, st.last, st.until)
	st.keep = keep
	return nil
}

func (m *memCounters) ResetFailures(_ context.Context, book, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.locks[bookKey{book, name}]; st != nil {
		st.failures = 0
	}
	return nil
}

func (m *memCounters) LockedUntil(_ context.Context, book, name string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.locks[bookKey{book, name}]; st != nil {
		return st.until, nil
	}
	return time.Time{}, nil
}

func (m *memCounters) SweepLimits(_ context.Context, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	return nil
}

// sweep drops the lock states that no longer matter, and, if there are
// still more than maxBook, every one not locked out now.
func (m *memCounters) sweep(now time.Time) {
	for k, st := range m.locks {
		if st.expired(now) {
			delete(m.locks, k)
		}
	}
	if len(m.locks) > maxBook {
		for k, st := range m.locks {
			if !now.Before(st.until) {
				delete(m.locks, k)
			}
		}
	}
	for k, w := range m.windows {
		if !now.Before(w.end) {
			delete(m.windows, k)
		}
	}
}
