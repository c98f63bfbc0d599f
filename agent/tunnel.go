package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/internal/sshkit"
	"github.com/rr-gateway/rr/wire"
)

// tunnel keeps one gateway connection up until ctx is done.
func (a *Agent) tunnel(ctx context.Context, addr string) {
	log := a.log.With("gateway", addr)
	b := backoff{min: a.cfg.BackoffMin, max: a.cfg.BackoffMax}
	for {
		a.setState(addr, StateDialing, nil)
		started := time.Now()
		err := a.connect(ctx, addr)
		if ctx.Err() != nil {
			a.setState(addr, StateDisconnected, context.Cause(ctx))
			return
		}
		a.setState(addr, StateDisconnected, err)
		if time.Since(started) > b.max {
			b.reset() // it was up a good while: this is a new outage
		}
		delay := b.next()
		switch {
		case errors.Is(err, sshkit.ErrHostKeyMismatch):
			log.Error("gateway host key does not match the pinned one; refusing it",
				"err", err, "pinned", a.cfg.GatewayHostKey, "retry_in", delay)
		default:
			log.Warn("gateway unreachable", "err", err, "retry_in", delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			a.setState(addr, StateDisconnected, context.Cause(ctx))
			return
		case <-t.C:
		}
	}
}

func (a *Agent) setState(addr string, s State, err error) {
	if a.cfg.OnState != nil {
		a.cfg.OnState(addr, s, err)
	}
}

// connect dials addr, serves the connection until it drops or ctx is
// done, and says why it ended. Sessions of the connection are over when it
// returns.
func (a *Agent) connect(ctx context.Context, addr string) error {
	nc, err := a.cfg.Dial(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	auth := []ssh.AuthMethod{ssh.PublicKeys(a.cfg.Signer)}
	if a.cfg.EnrollToken != "" {
		auth = append(auth, ssh.Password(a.cfg.EnrollToken))
	}
	nc.SetDeadline(time.Now().Add(a.cfg.HandshakeTimeout))
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	cc, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User:            a.cfg.Host,
		Auth:            auth,
		HostKeyCallback: sshkit.PinnedHostKey(a.cfg.GatewayHostKey),
		ClientVersion:   "SSH-2.0-rr-agent",
	})
	if err != nil {
		nc.Close()
		return err
	}
	nc.SetDeadline(time.Time{})
	log := a.log.With("gateway", addr)
	log.Info("connected to gateway")
	a.setState(addr, StateConnected, nil)

	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	context.AfterFunc(connCtx, func() { cc.Close() })
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sshkit.Keepalive(connCtx, cc, a.cfg.KeepaliveInterval, a.cfg.KeepaliveMaxMissed)
	}()
	go func() {
		defer wg.Done()
		for req := range reqs {
			if req.WantReply {
				req.Reply(req.Type == wire.ReqKeepalive, nil)
			}
		}
	}()
	for nch := range chans {
		if nch.ChannelType() != wire.ChannelSession {
			log.Warn("channel refused", "type", nch.ChannelType())
			nch.Reject(ssh.UnknownChannelType, "rr-agent serves only "+wire.ChannelSession)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.serveSession(connCtx, nch)
		}()
	}
	// The connection is gone: end its sessions.
	cancel()
	err = cc.Wait()
	wg.Wait()
	log.Info("disconnected from gateway", "err", err)
	if err == nil {
		err = errors.New("connection closed")
	}
	return err
}

// backoff is exponential back-off with equal jitter.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) reset() { b.cur = 0 }

// next returns the next delay: half of the current step fixed, half
// random, the step doubling from min up to max.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(half+1)
}
