package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/internal/sshkit"
	"github.com/rr-gateway/rr/wire"
)

// errConnClosed is the cause reported when a gateway closes the connection
// without saying why.
var errConnClosed = errors.New("agent: gateway closed the connection")

// resetAfter is how long a connection must have stayed up for the
// back-off to start over: a new outage, not the same one.
const resetAfter = 10 * time.Second

// tunnel is one gateway address's state machine:
//
//	dialing ──handshake ok──▶ connected ──conn lost──▶ disconnected
//	   │                                                 ▲   │
//	   └──────────── dial or handshake error ────────────┘   │
//	   ▲                                                     │
//	   └──────────────────── back-off ◀──────────────────────┘
//
// Only the tunnel's own goroutine touches it.
type tunnel struct {
	a     *Agent
	addr  string
	log   *slog.Logger
	state State
	b     backoff
}

// legal lists the transitions the machine may take.
var legal = map[State][]State{
	StateDialing:      {StateConnected, StateDisconnected},
	StateConnected:    {StateDisconnected},
	StateDisconnected: {StateDialing},
}

// set moves the machine to s, reporting it through OnState. An illegal
// transition is a bug: it is logged and refused.
func (t *tunnel) set(s State, err error) {
	ok := false
	for _, next := range legal[t.state] {
		ok = ok || next == s
	}
	if !ok {
		t.log.Error("agent: illegal tunnel transition refused", "from", t.state, "to", s)
		return
	}
	t.state = s
	if t.a.cfg.OnState != nil {
		t.a.cfg.OnState(t.addr, s, err)
	}
}

// run keeps the tunnel up until ctx is done. Every session of every
// connection it made has ended when it returns.
func (t *tunnel) run(ctx context.Context) {
	t.state = StateDisconnected
	for {
		t.set(StateDialing, nil)
		up, err := t.connect(ctx)
		if ctx.Err() != nil {
			t.set(StateDisconnected, context.Cause(ctx))
			return
		}
		t.set(StateDisconnected, err)
		delay := t.b.after(up)
		if errors.Is(err, sshkit.ErrHostKeyMismatch) {
			// Nothing was sent: x/crypto checks the host key before any
			// authentication. Keep trying, the gateway may be fixed.
			t.log.Error("gateway host key does not match the pinned one; refused it",
				"err", err, "pinned", t.a.cfg.GatewayHostKeys, "retry_in", delay)
		} else {
			t.log.Warn("gateway connection lost or refused", "err", err, "up", up.Round(time.Millisecond), "retry_in", delay)
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return // already disconnected
		case <-timer.C:
		}
	}
}

// connect dials the gateway, serves the connection until it drops or ctx
// is done, and says how long it was up (0 if the handshake failed) and why
// it ended. The connection's sessions have all ended when it returns.
func (t *tunnel) connect(ctx context.Context) (time.Duration, error) {
	cfg := t.a.cfg
	nc, err := cfg.Dial(ctx, "tcp", t.addr)
	if err != nil {
		return 0, fmt.Errorf("agent: dial %s: %w", t.addr, err)
	}
	auth := []ssh.AuthMethod{ssh.PublicKeys(cfg.Signer)}
	if cfg.EnrollToken != "" {
		// Offered only when the gateway answers the key with partial
		// success: an enrollment. Once bound, the key alone suffices.
		auth = append(auth, ssh.Password(cfg.EnrollToken))
	}
	cc, chans, reqs, err := t.handshake(ctx, nc, &ssh.ClientConfig{
		User:            cfg.Host,
		Auth:            auth,
		HostKeyCallback: sshkit.PinnedHostKey(cfg.GatewayHostKeys...),
		ClientVersion:   "SSH-2.0-rr-agent",
	})
	if err != nil {
		nc.Close()
		return 0, err
	}
	connected := time.Now()
	t.log.Info("connected to gateway")
	t.set(StateConnected, nil)

	connCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup // every goroutine of this connection
	wg.Go(func() {
		<-connCtx.Done() // Run ends, or the connection is gone already
		cc.Close()
	})
	wg.Go(func() {
		sshkit.Keepalive(connCtx, cc, cfg.KeepaliveInterval, cfg.KeepaliveMaxMissed)
	})
	wg.Go(func() {
		for req := range reqs {
			if req.WantReply {
				req.Reply(req.Type == wire.ReqKeepalive, nil)
			}
		}
	})
	for nch := range chans {
		if nch.ChannelType() != wire.ChannelSession {
			t.log.Warn("channel refused", "type", nch.ChannelType())
			nch.Reject(ssh.UnknownChannelType, "rr-agent serves only "+wire.ChannelSession)
			continue
		}
		wg.Go(func() { t.a.serveSession(connCtx, t.log, nch) })
	}
	// The connection is gone; so are its sessions' channels: end them.
	cancel()
	err = cc.Wait()
	wg.Wait()
	up := time.Since(connected)
	t.log.Info("disconnected from gateway", "err", err, "up", up.Round(time.Millisecond))
	if err == nil || errors.Is(err, net.ErrClosed) {
		err = errConnClosed
	}
	return up, err
}

// handshake runs the SSH handshake on nc within HandshakeTimeout, giving
// up early when ctx is done.
func (t *tunnel) handshake(ctx context.Context, nc net.Conn, cc *ssh.ClientConfig) (ssh.Conn, <-chan ssh.NewChannel, <-chan *ssh.Request, error) {
	nc.SetDeadline(time.Now().Add(t.a.cfg.HandshakeTimeout))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
			nc.Close()
		case <-done:
		}
	})
	c, chans, reqs, err := ssh.NewClientConn(nc, t.addr, cc)
	close(done)
	wg.Wait()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("agent: handshake with %s: %w", t.addr, err)
	}
	nc.SetDeadline(time.Time{})
	return c, chans, reqs, nil
}

// backoff is exponential back-off with "equal jitter": each delay is half
// the current step plus a random part of up to the other half, the step
// doubling from min up to max. Equal jitter never retries at once, yet
// spreads the agents of a restarted gateway over half the step.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) reset() { b.cur = 0 }

// after returns the delay before redialling a connection that stayed up
// for up (0: it never came up). One that stayed up longer than max or
// resetAfter, whichever is shorter, ended a good run: the back-off starts
// over, since this is a new outage, not the same one.
func (b *backoff) after(up time.Duration) time.Duration {
	if up > min(b.max, resetAfter) {
		b.reset()
	}
	return b.next()
}

// next returns the next delay.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}
