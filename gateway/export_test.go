package gateway

import (
	"context"

	"golang.org/x/crypto/ssh"
)

// AdmitTunnel runs the registry's admission of a tunnel of host on conn
// whose agent logged in with the key of fingerprint key: the moment a
// second key's agent would be admitted is a race between its login and
// a re-enrollment, which a test cannot time otherwise.
func (s *Server) AdmitTunnel(conn ssh.Conn, host, key string) bool {
	return s.admitAgent(&agentConn{conn: conn, host: host, key: key, since: s.cfg.Now()}, s.log, "test")
}

// WaitTunnelKey waits until the newest tunnel of host is the agent's
// logged in with the key of fingerprint key.
func (s *Server) WaitTunnelKey(ctx context.Context, host, key string) error {
	for {
		s.registry.mu.Lock()
		list, changed := s.registry.hosts[host], s.registry.changed
		s.registry.mu.Unlock()
		if len(list) > 0 && list[len(list)-1].key == key {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
