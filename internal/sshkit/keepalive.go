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
	var k KeepaliveTimer
	k.Start(conn, interval, maxMissed)
	defer k.Stop()
	select {
	case <-ctx.Done():
	case <-k.Done():
	}
}

// KeepaliveTimer is Keepalive without a goroutine waiting between
// intervals: a timer sends each request, so an idle connection costs no
// stack (a gateway holds thousands). Its zero value is ready to Start;
// embed it in what a connection keeps anyway, so that an idle
// connection's keepalive allocates only its timer: small objects of its
// own, made after a login's garbage, would each keep a span of that
// garbage's in use.
type KeepaliveTimer struct {
	conn      ssh.Conn
	interval  time.Duration
	maxMissed int

	mu          sync.Mutex
	timer       *time.Timer
	done        chan struct{} // made when asked for, or at the end
	ended       bool          // stopped, or ended by itself
	expired     bool          // ended by itself
	outstanding bool          // a request waits for its answer
	missed      int           // intervals in a row it has waited
}

// Start sends keepalives on conn every interval (none if interval is 0
// or less) until Stop, or until it ends by itself (see Done). Call it
// once.
func (k *KeepaliveTimer) Start(conn ssh.Conn, interval time.Duration, maxMissed int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.conn, k.interval, k.maxMissed = conn, interval, max(maxMissed, 1)
	if interval > 0 {
		k.timer = time.AfterFunc(interval, k.tick)
	}
}

// Done is closed when the keepalive ends by itself: conn closed, or
// closed for missing maxMissed answers. Never with no keepalives.
func (k *KeepaliveTimer) Done() <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.done == nil {
		k.done = make(chan struct{})
		if k.expired {
			close(k.done)
		}
	}
	return k.done
}

// tick runs in the timer's own goroutine, which lives on while a request
// waits for its answer.
func (k *KeepaliveTimer) tick() {
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

// Stop ends the keepalives; Done is not closed.
func (k *KeepaliveTimer) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ended = true
	if k.timer != nil {
		k.timer.Stop()
	}
}

// end stops the keepalive and says so on Done, once.
func (k *KeepaliveTimer) end() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.ended {
		k.ended, k.expired = true, true
		k.timer.Stop()
		if k.done != nil {
			close(k.done)
		}
	}
}
