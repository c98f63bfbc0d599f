package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/download"
	"github.com/rr-gateway/rr/internal/sshkit"
	"github.com/rr-gateway/rr/store"
)

const (
	extPerson    = "rr-person"     // people: who this is
	extLoginHost = "rr-login-host" // people: host named in the login name
)

var errDenied = errors.New("permission denied")

// peopleConfig is the SSH server config of the people's port. A
// registered key proves who someone is; the login ends there when nothing
// must be asked at login time (verifiedKey), else it hands over to
// keyboard-interactive for the rest (team, passphrase, code); without a
// key, keyboard-interactive asks for username and password first. Every
// path runs auth.Service.Interactive; its Login reaches the connection's
// handler in the connection's Permissions.
func (s *Server) peopleConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-rr-gateway",
		MaxAuthTries:  6,
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			login, err := ParseLogin(meta.User())
			if err != nil {
				return nil, errDenied
			}
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			defer cancel()
			p, ok, err := s.cfg.Auth.KeyPerson(ctx, ssh.FingerprintSHA256(key), login.Name)
			if err != nil {
				s.log.Error("key lookup failed", "err", err)
				return nil, errDenied
			}
			if !ok {
				return nil, errDenied
			}
			return &ssh.Permissions{ExtraData: map[any]any{keyPersonKey{}: p}}, nil
		},
		VerifiedPublicKeyCallback:   s.verifiedKey,
		KeyboardInteractiveCallback: s.interactive(nil),
	}
	cfg.AddHostKey(s.cfg.HostKey)
	return cfg
}

// interactive returns the keyboard-interactive callback that completes a
// login; known is the person a key identified, or nil.
func (s *Server) interactive(known *auth.Person) func(ssh.ConnMetadata, ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	return func(meta ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		login, err := ParseLogin(meta.User())
		if err != nil {
			return nil, errDenied
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.LoginGraceTime)
		defer cancel()
		l, err := s.cfg.Auth.Interactive(ctx, auth.KeyboardInteractive(endInstructions(meta, client)), known, login.Name, login.Host, meta.RemoteAddr().String())
		if err != nil {
			return nil, s.loginDenied(meta, err)
		}
		return loginPermissions(l, login.Host), nil
	}
}

// maxSessionsPerConn bounds the session channels one connection runs at
// once, as sshd's MaxSessions does (10).
const maxSessionsPerConn = 10

// loginKey is the Permissions.ExtraData key of a connection's Login.
type loginKey struct{}

func (s *Server) handlePerson(nc net.Conn) {
	remote := nc.RemoteAddr().String()
	nc.SetDeadline(s.cfg.Now().Add(s.cfg.LoginGraceTime))
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.people)
	if err != nil {
		s.log.Debug("login failed", "remote", remote, "err", err)
		return
	}
	defer sc.Close()
	nc.SetDeadline(time.Time{})
	login, _ := sc.Permissions.ExtraData[loginKey{}].(*auth.Login)
	if login == nil {
		s.log.Error("authenticated connection without a login", "remote", remote)
		return
	}
	person := login.Person.Name
	c := &personConn{
		srv:       s,
		conn:      sc,
		login:     login,
		person:    person,
		loginHost: sc.Permissions.Extensions[extLoginHost],
		remote:    remote,
		log:       s.log.With("person", person, "team", login.Team.Name, "remote", remote),
	}
	c.log.Info("login", "login", sc.User())

	defer c.auditDownloadSums()
	defer c.auditProbes()
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(errClientGone)
	stopKeepalive, _ := sshkit.StartKeepalive(sc, s.cfg.ClientKeepalive, s.cfg.KeepaliveMaxMissed)
	defer stopKeepalive()
	// One goroutine takes both new channels and global requests: an idle
	// connection costs as few stacks as it can.
	for {
		var nch ssh.NewChannel
		select {
		case req, ok := <-reqs:
			if !ok {
				reqs = nil
			} else {
				c.globalRequest(req)
			}
			continue
		case nch = <-chans:
		}
		if nch == nil {
			return // the connection is gone
		}
		if nch.ChannelType() != "session" {
			c.log.Warn("channel refused", "type", nch.ChannelType())
			s.audit(store.AuditEvent{Actor: person, Action: "forward", Target: nch.ChannelType(), Outcome: "denied",
				Source: remote, Detail: "only session channels are allowed"})
			nch.Reject(ssh.Prohibited, "rr: forwarding is disabled on this gateway; only sessions are allowed")
			continue
		}
		if c.sessions.Load() >= maxSessionsPerConn {
			nch.Reject(ssh.ResourceShortage, fmt.Sprintf("rr: at most %d sessions on one connection", maxSessionsPerConn))
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
		c.sessions.Add(1) // runSession gives it back before the channel closes
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

// personConn is one person's authenticated connection.
type personConn struct {
	srv          *Server
	conn         *ssh.ServerConn
	login        *auth.Login
	person       string
	loginHost    string
	remote       string
	log          *slog.Logger
	sessions     atomic.Int32  // session channels running (maxSessionsPerConn)
	refused      atomic.Int64  // recording reads refused on this connection (maxRefusedListed)
	downloadConn download.Conn // what this connection's download channels share
	fetchesMu    sync.Mutex
	fetches      map[[2]string]int // downloads by recording and outcome (auditDownloadSums)
	probed       probes            // probe commands refused (auditProbes)
}

// globalRequest refuses port forwarding (tcpip-forward, streamlocal…) and
// answers everything else no.
func (c *personConn) globalRequest(req *ssh.Request) {
	switch req.Type {
	case "tcpip-forward", "cancel-tcpip-forward", "streamlocal-forward@openssh.com", "cancel-streamlocal-forward@openssh.com":
		c.log.Warn("forwarding refused", "request", req.Type)
		c.srv.audit(store.AuditEvent{Actor: c.person, Action: "forward", Target: req.Type, Outcome: "denied",
			Source: c.remote, Detail: "remote forwarding is disabled"})
	}
	if req.WantReply {
		req.Reply(false, nil)
	}
}
