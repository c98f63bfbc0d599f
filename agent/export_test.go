package agent

import "time"

// SetUnkillableWait shortens terminate's wait for a process that survives
// SIGKILL; the returned func restores it.
func SetUnkillableWait(d time.Duration) (restore func()) {
	old := unkillableWait
	unkillableWait = d
	return func() { unkillableWait = old }
}
