package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/internal/sshkit"
	"github.com/rr-gateway/rr/store"
)

const (
	extPerson    = "rr-person"     // people: who this is
	extLoginHost = "rr-login-host" // people: host named in the login name
)

var errDenied = errors.New("permission denied")

// peopleConfig is the SSH server config of the people's port. Until the
// authentication issue lands, a person is identified by a registered public
// key alone; the login name is "rr", "rr+HOST", the person's own name, or
// NAME+HOST.
func (s *Server) peopleConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-rr-gateway",
		MaxAuthTries:  6,
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			login, err := ParseLogin(meta.User())
			if err != nil {
				return nil, errDenied
			}
			p := s.byKey[string(key.Marshal())]
			if p == nil || (login.Name != ServiceLogin && login.Name != p.Name) {
				return nil, errDenied
			}
			return &ssh.Permissions{Extensions: map[string]string{
				extPerson:    p.Name,
				extLoginHost: login.Host,
			}}, nil
		},
	}
	cfg.AddHostKey(s.cfg.HostKey)
	return cfg
}

func (s *Server) handlePerson(nc net.Conn) {
	remote := nc.RemoteAddr().String()
	nc.SetDeadline(s.cfg.Now().Add(s.cfg.LoginGraceTime))
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.people)
	if err != nil {
		var authErr *ssh.ServerAuthError
		if errors.As(err, &authErr) {
			s.log.Info("login denied", "remote", remote)
			s.audit(store.AuditEvent{Action: "login", Outcome: "denied", Source: remote, Detail: "no registered key"})
		} else {
			s.log.Debug("handshake failed", "remote", remote, "err", err)
		}
		return
	}
	defer sc.Close()
	nc.SetDeadline(time.Time{})
	person := sc.Permissions.Extensions[extPerson]
	c := &personConn{
		srv:       s,
		conn:      sc,
		person:    s.personNamed(person),
		loginHost: sc.Permissions.Extensions[extLoginHost],
		remote:    remote,
		log:       s.log.With("person", person, "remote", remote),
	}
	c.log.Info("login", "login", sc.User())
	s.audit(store.AuditEvent{Actor: person, Action: "login", Outcome: "allowed", Source: remote, Detail: "publickey"})

	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(errClientGone)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		sshkit.Keepalive(ctx, sc, s.cfg.ClientKeepalive, s.cfg.KeepaliveMaxMissed)
	}()
	go func() {
		defer s.wg.Done()
		c.globalRequests(reqs)
	}()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			c.log.Warn("channel refused", "type", nch.ChannelType())
			s.audit(store.AuditEvent{Actor: person, Action: "forward", Target: nch.ChannelType(), Outcome: "denied",
				Source: remote, Detail: "only session channels are allowed"})
			nch.Reject(ssh.Prohibited, "rr: forwarding is disabled on this gateway; only sessions are allowed")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		if !s.startSession() {
			ch.Stderr().Write([]byte("rr: the gateway is shutting down\r\n"))
			ch.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.sessionWG.Done()
			c.runSession(ctx, ch, creqs)
		}()
	}
}

// startSession counts a new session unless the server is closing.
func (s *Server) startSession() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessionWG.Add(1)
	return true
}

func (s *Server) personNamed(name string) *Person {
	for i := range s.cfg.People {
		if s.cfg.People[i].Name == name {
			return &s.cfg.People[i]
		}
	}
	return nil
}

// personConn is one person's authenticated connection.
type personConn struct {
	srv       *Server
	conn      *ssh.ServerConn
	person    *Person
	loginHost string
	remote    string
	log       *slog.Logger
}

// globalRequests refuses port forwarding (tcpip-forward, streamlocal…) and
// answers everything else no.
func (c *personConn) globalRequests(reqs <-chan *ssh.Request) {
	for req := range reqs {
		switch req.Type {
		case "tcpip-forward", "cancel-tcpip-forward", "streamlocal-forward@openssh.com", "cancel-streamlocal-forward@openssh.com":
			c.log.Warn("forwarding refused", "request", req.Type)
			c.srv.audit(store.AuditEvent{Actor: c.person.Name, Action: "forward", Target: req.Type, Outcome: "denied",
				Source: c.remote, Detail: "remote forwarding is disabled"})
		}
		if req.WantReply {
			req.Reply(false, nil)
		}
	}
}
