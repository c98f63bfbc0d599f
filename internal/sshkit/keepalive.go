package sshkit

import (
	"context"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

type netAddr = net.Addr

// Keepalive sends a keepalive@openssh.com request on conn every interval
// and closes conn when maxMissed intervals in a row pass without the
// outstanding request being answered. At most one request is in flight. It
// returns when ctx is done or conn is closed. Either side may run it: an
// unknown global request still earns a reply (false).
func Keepalive(ctx context.Context, conn ssh.Conn, interval time.Duration, maxMissed int) {
	if interval <= 0 {
		return
	}
	if maxMissed < 1 {
		maxMissed = 1
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	reply := make(chan error, 1)
	outstanding, missed := false, 0
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-reply:
			if err != nil {
				return // connection closed
			}
			outstanding, missed = false, 0
		case <-t.C:
			if outstanding {
				missed++
				if missed >= maxMissed {
					conn.Close()
					return
				}
				continue
			}
			outstanding = true
			go func() {
				_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
				reply <- err
			}()
		}
	}
}
