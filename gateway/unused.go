package gateway

import "time"

// unusedTimer closes a person's connection that has no channel open
// (Config.UnusedConnectionTimeout): a timer, no goroutine, run by the
// connection's own loop.
type unusedTimer struct {
	t     *time.Timer
	c     <-chan time.Time // nil when disabled: never ready
	ended chan struct{}    // a session ended; the loop checks the count
	idle  time.Duration    // after the last channel ended
	wait  time.Duration    // the wait running now, for the log
}

// newUnusedTimer starts the wait for a first channel (grace); idle is the
// wait after the last one ends. idle 0 disables both.
func newUnusedTimer(grace, idle time.Duration) *unusedTimer {
	u := &unusedTimer{ended: make(chan struct{}, 1), idle: idle, wait: grace}
	if idle > 0 {
		u.t = time.NewTimer(grace)
		u.c = u.t.C
	}
	return u
}

func (u *unusedTimer) sessionStarted() {
	if u.t != nil {
		u.t.Stop()
	}
}

// notifyEnded tells the loop that a session ended; one pending notice is
// enough, the loop reads the count.
func (u *unusedTimer) notifyEnded() {
	select {
	case u.ended <- struct{}{}:
	default:
	}
}

// sessionEnded starts the idle wait if no session is left.
func (u *unusedTimer) sessionEnded(running int32) {
	if u.t != nil && running == 0 {
		u.wait = u.idle
		u.t.Reset(u.idle)
	}
}

func (u *unusedTimer) stop() {
	if u.t != nil {
		u.t.Stop()
	}
}
