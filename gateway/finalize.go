package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/rr-gateway/rr/store"
)

// finalizer writes what a session's end leaves for the store (the
// recording's size and SHA-256, the row's end, the audit event, the
// event's status, then the upload's start) in that order: at once when
// the store answers, else from a queue retried with backoff until it is
// back. Jobs are retried in the order their sessions ended, and a session
// that ends while others wait queues behind them, so the audit chain
// keeps that order. The store is never on the byte path: a session ended
// while it was down lost nothing but time.
type finalizer struct {
	log  *slog.Logger
	stop <-chan struct{} // the server closing: what is queued is given up
	wg   *sync.WaitGroup // the server's: the worker is one of its goroutines

	mu      sync.Mutex
	queue   []*finalJob
	audits  int // jobs in queue that are lone audit events
	working bool
	gone    chan struct{} // closed and replaced each time the queue empties (tests wait on it)
}

// finalJob is what remains to write of one session's end.
type finalJob struct {
	log   *slog.Logger
	steps []finalStep
	audit bool // a lone audit event (audit), not a session's end
}

type finalStep struct {
	what string
	do   func(context.Context) error
}

// maxFinalJobs bounds the queue: past it a session's end is given up
// (logged); its row stays live, and the next start marks it interrupted.
const maxFinalJobs = 10000

// maxFinalAudits bounds the lone audit events in the queue (a stranger's
// refused logins while the store is down are audited too): past it they
// are dropped, logged, so that they can never crowd out sessions' ends.
const maxFinalAudits = 1000

// finalRetryMax is the longest wait between two tries of the queue.
const finalRetryMax = 30 * time.Second

func newFinalizer(log *slog.Logger, stop <-chan struct{}, wg *sync.WaitGroup) *finalizer {
	return &finalizer{log: log, stop: stop, wg: wg, gone: make(chan struct{})}
}

// run writes steps now, unless other sessions' ends wait before it, and
// queues what could not be written.
func (f *finalizer) run(log *slog.Logger, steps []finalStep) {
	f.enqueue(&finalJob{log: log, steps: steps})
}

// runAudit writes one audit event as run writes a session's end: in
// order, now or once the store answers again.
func (f *finalizer) runAudit(log *slog.Logger, step finalStep) {
	f.enqueue(&finalJob{log: log, steps: []finalStep{step}, audit: true})
}

func (f *finalizer) enqueue(j *finalJob) {
	log := j.log
	f.mu.Lock()
	waiting := len(f.queue) > 0
	f.mu.Unlock()
	if !waiting && j.try() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue) >= maxFinalJobs || j.audit && f.audits >= maxFinalAudits {
		log.Error("not written: too many waiting for the store", "waiting", len(f.queue), "step", j.steps[0].what)
		return
	}
	log.Warn("the store does not answer: written when it does", "step", j.steps[0].what)
	f.queue = append(f.queue, j)
	if j.audit {
		f.audits++
	}
	if !f.working {
		f.working = true
		f.wg.Add(1)
		go f.work()
	}
}

// try runs the job's steps in order until one fails with the store not
// answering, and reports whether all ran. A step the store refuses for
// good (the row is gone, or final already) is logged and passed.
func (j *finalJob) try() bool {
	for len(j.steps) > 0 {
		st := j.steps[0]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := st.do(ctx)
		cancel()
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			j.log.Debug("store write failed", "step", st.what, "err", err)
			return false
		}
		if err != nil {
			j.log.Error("store refused", "step", st.what, "err", err)
		}
		j.steps = j.steps[1:]
	}
	return true
}

// work retries the queue's head with backoff until the queue is empty or
// the server closes.
func (f *finalizer) work() {
	defer f.wg.Done()
	wait := time.Second
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-f.stop:
			f.mu.Lock()
			if n := len(f.queue); n > 0 {
				f.log.Error("gateway closing with session ends not written; the next start marks their rows interrupted", "sessions", n)
			}
			f.queue, f.audits, f.working = nil, 0, false
			f.mu.Unlock()
			return
		case <-timer.C:
		}
		for {
			f.mu.Lock()
			if len(f.queue) == 0 {
				f.working = false
				close(f.gone)
				f.gone = make(chan struct{})
				f.mu.Unlock()
				f.log.Info("the store answers again: every waiting session end is written")
				return
			}
			j := f.queue[0]
			f.mu.Unlock()
			if !j.try() {
				break
			}
			f.mu.Lock()
			f.queue = f.queue[1:]
			if j.audit {
				f.audits--
			}
			f.mu.Unlock()
			wait = time.Second
		}
		wait = min(2*wait, finalRetryMax)
		timer.Reset(wait)
	}
}

// drained returns a channel closed when the queue next empties, and
// whether it is empty now.
func (f *finalizer) drained() (<-chan struct{}, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gone, len(f.queue) == 0
}
