package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rr-gateway/rr/gateway/admin"
	"github.com/rr-gateway/rr/store"
)

// ClusterStore is what the gateway needs of the store to run beside
// peers on the same store (docs/architecture.md#several-gateways): all
// of store.Cluster.
type ClusterStore interface {
	store.Cluster
}

// Notifier is what a store offers when it can wake peers at once
// (PostgreSQL's LISTEN/NOTIFY); the gateway then learns of a kill asked
// on a peer without waiting for its next poll. Listen calls fn with each
// payload sent on channel until ctx is done.
type Notifier interface {
	Listen(ctx context.Context, channel string, fn func(payload string)) error
	Notify(ctx context.Context, channel, payload string) error
}

// killChannel is the Notifier channel of kill requests; the payload is
// the name of the gateway holding the session.
const killChannel = "rr_kill"

// killRowPoll is how often a kill asked of a peer looks at the session's
// row for its end (bounded by killWait).
const killRowPoll = 100 * time.Millisecond

// storeTimeout bounds each store call of the cluster's loop.
const storeTimeout = 5 * time.Second

// joinCluster claims this gateway's lease and forgets the presence rows a
// previous run of it left (its tunnels are gone); then runCluster keeps
// the lease and takes kills asked on peers.
func (s *Server) joinCluster() error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := s.renewLease(ctx); err != nil {
		return err
	}
	if err := s.cfg.Store.DropPresence(ctx, "", s.cfg.Name); err != nil {
		return err
	}
	wake := make(chan struct{}, 1)
	if n, ok := s.cfg.Store.(Notifier); ok {
		s.wg.Go(func() {
			err := n.Listen(s.ctx, killChannel, func(payload string) {
				if payload == s.cfg.Name {
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			})
			if err != nil && s.ctx.Err() == nil {
				s.log.Warn("kill notifications stopped; polling only", "err", err)
			}
		})
	}
	s.wg.Go(func() { s.runCluster(wake) })
	return nil
}

// runCluster renews the lease every third of it, takes over from peers
// whose lease expired, and, while sessions are live here, takes the
// kills asked for them on peers. It returns when the server closes.
//
// It takes over only once its own renewals have gone through for a whole
// lease (healthy): after the store was out of reach for longer than the
// lease, every gateway's lease has run out, and the first one back must
// not end its peers' sessions before they had a chance to renew theirs.
func (s *Server) runCluster(wake <-chan struct{}) {
	healthy := s.cfg.Now() // joinCluster renewed
	renew := time.NewTicker(s.cfg.Lease / 3)
	defer renew.Stop()
	poll := time.NewTicker(s.cfg.KillPoll)
	defer poll.Stop()
	for {
		select {
		case <-s.ctx.Done():
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			if err := s.cfg.Store.DropPresence(ctx, "", s.cfg.Name); err != nil {
				s.log.Warn("presence not cleared at shutdown", "err", err)
			}
			cancel()
			return
		case <-renew.C:
			ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
			switch err := s.renewLease(ctx); {
			case err != nil:
				s.log.Error("lease not renewed: peers take over this gateway's sessions once it expires",
					"err", err, "lease", s.cfg.Lease)
				healthy = time.Time{}
			case healthy.IsZero():
				healthy = s.cfg.Now()
			case s.cfg.Now().Sub(healthy) >= s.cfg.Lease:
				s.expirePeers(ctx)
			}
			cancel()
			// Requests for sessions that ended before this gateway took
			// them go too, live sessions or not.
			s.takeKills()
		case <-poll.C:
			if s.liveCount() > 0 {
				s.takeKills()
			}
		case <-wake:
			s.takeKills()
		}
	}
}

// renewLease renews this gateway's lease, saying so when a peer had
// taken over from it meanwhile (it stalled past its lease: the sessions
// it holds run on, but their rows say interrupted).
func (s *Server) renewLease(ctx context.Context) error {
	if _, err := s.cfg.Store.Lease(ctx, s.cfg.Name); errors.Is(err, store.ErrNotFound) && s.renewed {
		s.log.Error("this gateway's lease had expired and a peer took over: the sessions it held are marked interrupted",
			"lease", s.cfg.Lease)
	}
	now := s.cfg.Now()
	err := s.cfg.Store.RenewLease(ctx, store.Lease{Gateway: s.cfg.Name, Advertise: s.cfg.Advertise,
		Renewed: now, Expires: now.Add(s.cfg.Lease)})
	s.renewed = s.renewed || err == nil
	return err
}

// expirePeers marks interrupted the live sessions of peers whose lease
// expired (one peer wins, in the store) and audits each.
func (s *Server) expirePeers(ctx context.Context) {
	gone, err := s.cfg.Store.ExpireGateways(ctx, s.cfg.Name, s.cfg.Now())
	if err != nil {
		s.log.Error("cannot look for peers whose lease expired", "err", err)
		return
	}
	for _, g := range gone {
		s.log.Warn("peer gateway's lease expired; its live sessions are marked interrupted",
			"peer", g.Gateway, "sessions", g.Sessions)
		for _, id := range g.Sessions {
			x, err := s.cfg.Store.Session(ctx, id)
			if err != nil {
				s.log.Error("interrupted session not audited", "session", id, "err", err)
				continue
			}
			s.audit(store.AuditEvent{Actor: x.Person, Action: "session.interrupted", Target: x.Host, Outcome: "allowed",
				Detail: fmt.Sprintf("gateway %s lost (lease expired), noticed by %s; the recording is in %s's spool",
					g.Gateway, s.cfg.Name, g.Gateway), SessionID: id})
			if x.EventID != "" {
				if err := s.cfg.Store.EventSessionEnded(ctx, x.EventID, s.cfg.Now()); err != nil {
					s.log.Error("event status not updated", "event", x.EventID, "err", err)
				}
			}
		}
	}
}

func (s *Server) liveCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// takeKills kills, as a local kill does, the sessions peers asked to.
func (s *Server) takeKills() {
	ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
	defer cancel()
	reqs, err := s.cfg.Store.TakeKillRequests(ctx, s.cfg.Name)
	if err != nil {
		s.log.Error("cannot take kill requests", "err", err)
		return
	}
	for _, r := range reqs {
		s.mu.Lock()
		ss := s.sessions[r.SessionID]
		s.mu.Unlock()
		if ss == nil {
			// Ended meanwhile (the asker reads how on its row), or its
			// row is written but it is not registered yet: then it is
			// asked again, for the next take.
			if x, err := s.cfg.Store.Session(ctx, r.SessionID); err == nil && x.State == store.StateLive && x.Gateway == s.cfg.Name {
				if err := s.cfg.Store.RequestKill(ctx, r); err != nil {
					s.log.Error("kill request not kept", "session", r.SessionID, "err", err)
				}
			}
			continue
		}
		ss.log.Info("session killed from a peer gateway", "by", r.By, "reason", r.Reason)
		ss.cancel(&killError{by: r.By, reason: r.Reason})
	}
}

// killAnywhere kills live session id wherever it is held: here, as Kill
// does; on a peer, through a kill request in the store, answering once
// the session's row says it is finalized (or ctx ends).
func (s *Server) killAnywhere(ctx context.Context, id, by, reason string) error {
	err := s.Kill(ctx, id, by, reason)
	if !errors.Is(err, ErrNotLive) {
		return err
	}
	x, err := s.cfg.Store.Session(ctx, id)
	if err != nil {
		return err
	}
	if x.State != store.StateLive {
		return admin.ErrEndedFirst
	}
	if x.Gateway == "" || x.Gateway == s.cfg.Name {
		return ErrNotLive
	}
	l, err := s.cfg.Store.Lease(ctx, x.Gateway)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && l.Expires.Before(s.cfg.Now()):
		return &admin.GatewayGoneError{Gateway: x.Gateway}
	case err != nil:
		return err
	}
	if err := s.cfg.Store.RequestKill(ctx, store.KillRequest{SessionID: id, Gateway: x.Gateway, By: by,
		Reason: reason, Requested: s.cfg.Now()}); err != nil {
		return err
	}
	if n, ok := s.cfg.Store.(Notifier); ok {
		if err := n.Notify(ctx, killChannel, x.Gateway); err != nil {
			s.log.Warn("kill notification not sent; the peer polls", "peer", x.Gateway, "err", err)
		}
	}
	s.log.Info("kill asked of the peer holding the session", "session", id, "peer", x.Gateway, "by", by)
	tick := time.NewTicker(killRowPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("session %s on %s: not finalized yet: %w", id, x.Gateway, ctx.Err())
		case <-tick.C:
		}
		x, err := s.cfg.Store.Session(ctx, id)
		if err != nil {
			continue // the store may come back before ctx ends
		}
		switch {
		case x.State == store.StateLive:
		case x.KilledBy == by:
			return nil
		default:
			return admin.ErrEndedFirst
		}
	}
}

// peersHolding names the peers that hold a tunnel of host (with their
// advertise address): where a person may reach a host this gateway has no
// tunnel of. Nil when there is none, or the store cannot say.
func (s *Server) peersHolding(host string) []string {
	ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
	defer cancel()
	ps, err := s.cfg.Store.Presence(ctx, s.cfg.Now())
	if err != nil {
		s.log.Warn("cannot read host presence", "host", host, "err", err)
		return nil
	}
	var out []string
	for _, p := range ps {
		if p.Host != host || p.Gateway == s.cfg.Name {
			continue
		}
		where := p.Gateway
		if l, err := s.cfg.Store.Lease(ctx, p.Gateway); err == nil && l.Advertise != "" {
			where += " (" + l.Advertise + ")"
		}
		out = append(out, where)
	}
	return out
}
