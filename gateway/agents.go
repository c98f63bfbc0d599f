package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/internal/prelogin"
	"github.com/rr-gateway/rr/internal/sshkit"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/wire"
)

const (
	extHost   = "rr-host"   // agents: the host the connection serves
	extEnroll = "rr-enroll" // agents: key to bind once the token is checked
)

var errAgentDenied = errors.New("agent not allowed")

// agentsConfig is the SSH server config of the agents' port. An agent
// authenticates as its host name with its key: either the key bound to that
// host, or, when the host has an unused enrollment token, any key followed
// by the token as a password, which binds the key.
func (s *Server) agentsConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-rr-gateway",
		MaxAuthTries:  3,
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			host := meta.User()
			if !store.ValidName(host) {
				return nil, errAgentDenied
			}
			ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			defer cancel()
			h, err := s.cfg.Store.Host(ctx, host)
			if err != nil {
				return nil, errAgentDenied
			}
			if h.AgentKey != "" {
				bound, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.AgentKey))
				if err == nil && subtle.ConstantTimeCompare(bound.Marshal(), key.Marshal()) == 1 {
					return &ssh.Permissions{Extensions: map[string]string{extHost: host, extKey: ssh.FingerprintSHA256(key)}}, nil
				}
				return nil, errAgentDenied // an enrolled host takes its key only: host reenroll replaces it, never a token
			}
			ok, err := s.cfg.Store.HasEnrollToken(ctx, host, s.cfg.Now())
			if err != nil || !ok {
				return nil, errAgentDenied
			}
			return &ssh.Permissions{Extensions: map[string]string{
				extEnroll: string(ssh.MarshalAuthorizedKey(key)),
			}}, nil
		},
		VerifiedPublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey, perms *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			authorized, ok := perms.Extensions[extEnroll]
			if !ok {
				return perms, nil
			}
			// The key is proven; the token decides.
			host := meta.User()
			return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
				PasswordCallback: func(meta ssh.ConnMetadata, token []byte) (*ssh.Permissions, error) {
					ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
					defer cancel()
					err := s.cfg.Store.UseEnrollToken(ctx, host, store.EnrollTokenHash(token), authorized, s.cfg.Now())
					if err != nil {
						s.audit(store.AuditEvent{Actor: "agent:" + host, Action: "agent.enroll", Target: host,
							Outcome: "denied", Detail: "bad or used token", Source: meta.RemoteAddr().String()})
						return nil, errAgentDenied
					}
					s.audit(store.AuditEvent{Actor: "agent:" + host, Action: "agent.enroll", Target: host,
						Outcome: "allowed", Detail: ssh.FingerprintSHA256(key), Source: meta.RemoteAddr().String()})
					s.log.Info("agent enrolled", "host", host, "key", ssh.FingerprintSHA256(key))
					return &ssh.Permissions{Extensions: map[string]string{extHost: host, extKey: ssh.FingerprintSHA256(key)}}, nil
				},
			}}
		},
	}
	cfg.AddHostKey(s.cfg.HostKey)
	return cfg
}

// agentsConfigFor is the agents' config bound to one connection (see
// withKexHook).
func (s *Server) agentsConfigFor(nc *prelogin.Conn) *ssh.ServerConfig {
	return withKexHook(s.agents, nc)
}

// serveAgent admits a logged-in agent's tunnel (see connServer) and
// returns what holds it until it ends: the admission's work is done here,
// on the login's goroutine, so that the goroutine holding the idle tunnel
// starts afresh and parks on a shallow stack.
func (s *Server) serveAgent(nc *prelogin.Conn, sc *ssh.ServerConn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) func() {
	ac := s.agentConnected(nc, sc)
	if ac == nil {
		sc.Close()
		return nil
	}
	return func() { s.holdAgent(nc, ac, chans, reqs) }
}

// holdAgent holds an admitted agent's tunnel until it ends.
func (s *Server) holdAgent(nc *prelogin.Conn, ac *agentConn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) {
	defer ac.conn.Close()
	ac.keepalive.Start(ac.conn, s.cfg.AgentKeepalive, s.cfg.KeepaliveMaxMissed)
	defer ac.keepalive.Stop()
	holdTunnel(chans, reqs)
	s.agentGone(nc, ac, ac.conn.Wait())
}

// agentConnected admits a logged-in agent's tunnel, or returns nil.
func (s *Server) agentConnected(nc *prelogin.Conn, sc *ssh.ServerConn) *agentConn {
	host := sc.Permissions.Extensions[extHost]
	log := s.log.With("host", host, "remote", nc.RemoteAddr().String())
	ac := &agentConn{conn: sc, host: host, key: sc.Permissions.Extensions[extKey], since: s.cfg.Now()}
	sc.Permissions = nil // all of it is in ac now: the tunnel need not hold its map
	if !s.admitAgent(ac, log, nc.RemoteAddr().String()) {
		return nil
	}
	s.touchHost(host)
	s.setPresence(host, true)
	log.Info("agent connected")
	s.audit(store.AuditEvent{Actor: "agent:" + host, Action: "agent.connect", Target: host,
		Outcome: "allowed", Source: nc.RemoteAddr().String()})
	return ac
}

// holdTunnel answers the agent's requests and refuses its channels (the
// gateway opens channels to the agent, never the other way round) until
// the connection ends: one goroutine, so that an idle tunnel costs as few
// stacks as it can.
func holdTunnel(chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) {
	for chans != nil || reqs != nil {
		select {
		case req, ok := <-reqs:
			if !ok {
				reqs = nil
			} else if req.WantReply {
				req.Reply(req.Type == wire.ReqKeepalive, nil)
			}
		case nch, ok := <-chans:
			if !ok {
				chans = nil
			} else {
				nch.Reject(ssh.Prohibited, "agents may not open channels")
			}
		}
	}
}

// agentGone forgets a tunnel that ended with err.
func (s *Server) agentGone(nc *prelogin.Conn, ac *agentConn, err error) {
	s.registry.remove(ac)
	if s.registry.get(ac.host) == nil {
		s.setPresence(ac.host, false)
	}
	s.touchHost(ac.host)
	s.log.Info("agent disconnected", "host", ac.host, "remote", nc.RemoteAddr().String(), "err", err)
	s.audit(store.AuditEvent{Actor: "agent:" + ac.host, Action: "agent.disconnect", Target: ac.host,
		Outcome: "ok", Source: nc.RemoteAddr().String()})
}

func (s *Server) touchHost(host string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.cfg.Store.TouchHost(ctx, host, s.cfg.Now()); err != nil {
		s.log.Warn("cannot record host last seen", "host", host, "err", err)
	}
}

// setPresence tells peers, through the store, whether this gateway holds
// a tunnel of host.
func (s *Server) setPresence(host string, on bool) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	var err error
	if on {
		err = s.cfg.Store.SetPresence(ctx, host, s.cfg.Name, s.cfg.Now())
	} else {
		err = s.cfg.Store.DropPresence(ctx, host, s.cfg.Name)
	}
	if err != nil {
		s.log.Warn("cannot record host presence", "host", host, "online", on, "err", err)
	}
}

// agentConn is one agent's tunnel.
type agentConn struct {
	conn  ssh.Conn
	host  string
	key   string // fingerprint of the key it logged in with
	since time.Time
	// keepalive is kept here rather than allocated apart: see
	// sshkit.KeepaliveTimer.
	keepalive sshkit.KeepaliveTimer
}

// registry knows which hosts have a tunnel. A host may hold several (a
// reconnect racing the old connection's timeout); the newest is used.
type registry struct {
	mu      sync.Mutex
	hosts   map[string][]*agentConn
	changed chan struct{} // closed and replaced on every change
}

func (r *registry) init() {
	r.hosts = map[string][]*agentConn{}
	r.changed = make(chan struct{})
}

func (r *registry) add(c *agentConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts[c.host] = append(r.hosts[c.host], c)
	r.notifyLocked()
}

func (r *registry) remove(c *agentConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.hosts[c.host]
	for i, x := range list {
		if x == c {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(r.hosts, c.host)
	} else {
		r.hosts[c.host] = list
	}
	r.notifyLocked()
}

func (r *registry) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// count is how many hosts have a tunnel.
func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.hosts)
}

// get returns the host's newest tunnel, or nil.
func (r *registry) get(host string) *agentConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.hosts[host]
	if len(list) == 0 {
		return nil
	}
	return list[len(list)-1]
}

// Online reports whether host has an agent connected to this gateway.
func (s *Server) Online(host string) bool { return s.registry.get(host) != nil }

// WaitHost waits until host's online state is online, or ctx is done.
func (s *Server) WaitHost(ctx context.Context, host string, online bool) error {
	for {
		s.registry.mu.Lock()
		now := len(s.registry.hosts[host]) > 0
		changed := s.registry.changed
		s.registry.mu.Unlock()
		if now == online {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("gateway: waiting for %s online=%v: %w", host, online, context.Cause(ctx))
		}
	}
}

var errHostOffline = errors.New("host offline")

// openAgentChannel opens a session channel to host over its tunnel.
func (s *Server) openAgentChannel(host string, open wire.SessionOpen) (ssh.Channel, <-chan *ssh.Request, error) {
	ac := s.registry.get(host)
	if ac == nil {
		return nil, nil, errHostOffline
	}
	if err := s.checkTunnel(ac); err != nil {
		return nil, nil, err
	}
	ch, reqs, err := ac.conn.OpenChannel(wire.ChannelSession, ssh.Marshal(&open))
	if err != nil {
		return nil, nil, fmt.Errorf("open channel to %s: %w", host, err)
	}
	return ch, reqs, nil
}
