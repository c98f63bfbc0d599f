package sshkit

import (
	"context"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

type netAddr = net.Addr

// Keepalive sends a keepalive@openssh.com request on conn every interval
// and closes conn when maxMissed intervals in a row pass without the
// outstanding request being answered. At most one request is in flight. It
// returns when ctx is done or conn is closed, and at once if interval is 0
// or less (no keepalives). Either side may run it: an unknown global
// request still earns a reply (false).
func Keepalive(ctx context.Context, conn ssh.Conn, interval time.Duration, maxMissed int) {
	if interval <= 0 {
		return
	}
	stop, done := StartKeepalive(conn, interval, maxMissed)
	defer stop()
	select {
	case <-ctx.Done():
	case <-done:
	}
}

// StartKeepalive is Keepalive without a goroutine waiting between
// intervals: a timer sends each request, so an idle connection costs no
// stack (a gateway holds thousands). done is closed when it ends by itself
// (conn closed, or closed for missing maxMissed answers); stop ends it.
func StartKeepalive(conn ssh.Conn, interval time.Duration, maxMissed int) (stop func(), done <-chan struct{}) {
	k := &keepalive{conn: conn, interval: interval, maxMissed: max(maxMissed, 1), done: make(chan struct{})}
	if interval <= 0 {
		return func() {}, k.done // never ends by itself
	}
	k.mu.Lock()
	k.timer = time.AfterFunc(interval, k.tick)
	k.mu.Unlock()
	return k.stop, k.done
}

type keepalive struct {
	conn      ssh.Conn
	interval  time.Duration
	maxMissed int
	done      chan struct{}

	mu          sync.Mutex
	timer       *time.Timer
	ended       bool
	outstanding bool // a request waits for its answer
	missed      int  // intervals in a row it has waited
}

// tick runs in the timer's own goroutine, which lives on while a request
// waits for its answer.
func (k *keepalive) tick() {
	k.mu.Lock()
	if k.ended {
		k.mu.Unlock()
		return
	}
	k.timer.Reset(k.interval)
	if k.outstanding {
		k.missed++
		dead := k.missed >= k.maxMissed
		k.mu.Unlock()
		if dead {
			k.end()
			k.conn.Close()
		}
		return
	}
	k.outstanding = true
	k.mu.Unlock()
	_, _, err := k.conn.SendRequest("keepalive@openssh.com", true, nil)
	if err != nil {
		k.end() // the connection is closed
		return
	}
	k.mu.Lock()
	k.outstanding, k.missed = false, 0
	k.mu.Unlock()
}

func (k *keepalive) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ended = true
	k.timer.Stop()
}

// end stops the keepalive and says so on done, once.
func (k *keepalive) end() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.ended {
		k.ended = true
		k.timer.Stop()
		close(k.done)
	}
}
