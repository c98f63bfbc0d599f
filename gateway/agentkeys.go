package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/store"
)

// One host, one agent key at a time: the newest connection of a host's
// agent never silently replaces a live one with another key, and a tunnel
// whose key the store no longer binds (the host was re-enrolled) gets no
// session.

// extKey carries the fingerprint of the key an agent logged in with.
const extKey = "rr-agent-key"

// boundKey is the fingerprint of the key the store binds to host ("" if
// none).
func (s *Server) boundKey(host string) (string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	h, err := s.cfg.Store.Host(ctx, host)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if h.AgentKey == "" {
		return "", nil
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.AgentKey))
	if err != nil {
		return "", fmt.Errorf("agent key of %s: %w", host, err)
	}
	return ssh.FingerprintSHA256(k), nil
}

// admitAgent puts ac in the registry, unless a live tunnel of its host
// holds another key: then ac is refused (logged at warning, audited),
// except when the store binds ac's key and no longer theirs (the host was
// re-enrolled from the command line or another gateway, and ac is the new
// agent): they are dropped instead, logged and audited too.
func (s *Server) admitAgent(ac *agentConn, log *slog.Logger, remote string) bool {
	r := &s.registry
	r.mu.Lock()
	var others []*agentConn
	for _, x := range r.hosts[ac.host] {
		if x.key != ac.key {
			others = append(others, x)
		}
	}
	if len(others) == 0 {
		r.hosts[ac.host] = append(r.hosts[ac.host], ac)
		r.notifyLocked()
		r.mu.Unlock()
		return true
	}
	r.mu.Unlock()
	bound, err := s.boundKey(ac.host)
	if err != nil || bound != ac.key {
		log.Warn("agent refused: an agent of this host with another key is connected", "key", ac.key,
			"live_key", others[0].key, "err", err)
		s.audit(store.AuditEvent{Actor: "agent:" + ac.host, Action: "agent.connect", Target: ac.host, Outcome: "denied",
			Source: remote, Detail: fmt.Sprintf("key %s while an agent with key %s is connected", ac.key, others[0].key)})
		return false
	}
	for _, x := range others {
		log.Warn("agent dropped: its key is no longer bound to the host", "old_key", x.key, "key", ac.key)
		s.audit(store.AuditEvent{Actor: "agent:" + ac.host, Action: "agent.replace", Target: ac.host, Outcome: "allowed",
			Source: remote, Detail: fmt.Sprintf("key %s, bound now, replaces key %s, no longer bound", ac.key, x.key)})
		x.conn.Close()
	}
	r.add(ac)
	return true
}

// checkTunnel refuses (and closes) a tunnel whose key the store no longer
// binds to its host: re-enrolled from the command line, or by another
// gateway, while it was up.
func (s *Server) checkTunnel(ac *agentConn) error {
	bound, err := s.boundKey(ac.host)
	if err != nil {
		return fmt.Errorf("check the agent key of %s: %w", ac.host, err)
	}
	if bound == ac.key {
		return nil
	}
	s.log.Warn("agent dropped: its key is no longer bound to the host", "host", ac.host, "key", ac.key)
	s.audit(store.AuditEvent{Actor: "agent:" + ac.host, Action: "agent.disconnect", Target: ac.host, Outcome: "denied",
		Detail: fmt.Sprintf("key %s is no longer bound to the host", ac.key)})
	ac.conn.Close()
	return errHostOffline
}

// dropAgents closes host's live agent connections (host reenroll) and
// says how many there were; each leaves the registry as its handler ends.
func (s *Server) dropAgents(host string) int {
	s.registry.mu.Lock()
	list := append([]*agentConn(nil), s.registry.hosts[host]...)
	s.registry.mu.Unlock()
	for _, ac := range list {
		s.log.Warn("agent dropped: host reenrolled", "host", host, "key", ac.key)
		ac.conn.Close()
	}
	return len(list)
}
