package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/download"
	"github.com/rr-gateway/rr/internal/prelogin"
	"github.com/rr-gateway/rr/internal/sshkit"
	"github.com/rr-gateway/rr/store"
)

const (
	extPerson     = "rr-person"      // people: who this is
	extLoginHost  = "rr-login-host"  // people: host named in the login name
	extLoginEvent = "rr-login-event" // people: event named in the login name (rr+event:ID)
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
		ServerVersion:               "SSH-2.0-rr-gateway",
		MaxAuthTries:                6,
		PublicKeyCallback:           s.publicKey,
		VerifiedPublicKeyCallback:   s.verifiedKey(nil),
		KeyboardInteractiveCallback: s.interactive(nil, nil),
	}
	cfg.AddHostKey(s.cfg.HostKey)
	return cfg
}

// peopleConfigFor is the people's config bound to one connection: its
// deadline moves to the login grace when the key exchange is over, and to
// PromptGraceTime once the person's identity is proven.
func (s *Server) peopleConfigFor(nc *prelogin.Conn) *ssh.ServerConfig {
	cfg := withKexHook(s.people, nc)
	cfg.VerifiedPublicKeyCallback = s.verifiedKey(nc)
	cfg.KeyboardInteractiveCallback = s.interactive(nil, nc)
	return cfg
}

// publicKey finds whose key a client offers; verifiedKey goes on once
// the client has proven it holds it.
func (s *Server) publicKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
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
}

// interactive returns the keyboard-interactive callback that completes a
// login on nc (nil: no connection's); known is the person a key
// identified, or nil.
func (s *Server) interactive(known *auth.Person, nc *prelogin.Conn) func(ssh.ConnMetadata, ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	return func(meta ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		login, err := ParseLogin(meta.User())
		if err != nil {
			return nil, errDenied
		}
		// The connection's deadline bounds each step (see
		// provenPrompter); this bounds the whole.
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.LoginGraceTime+s.cfg.PromptGraceTime)
		defer cancel()
		var p auth.Prompter = auth.KeyboardInteractive(endInstructions(meta, client))
		if nc != nil {
			p = provenPrompter{p, nc, s.cfg.PromptGraceTime}
		}
		if login.Event != "" {
			login.Host = s.eventHost(ctx, login.Event)
		}
		l, err := s.cfg.Auth.Interactive(ctx, p, known, login.Name, login.Host, meta.RemoteAddr().String())
		if err != nil {
			return nil, s.loginDenied(meta, err)
		}
		return loginPermissions(l, login), nil
	}
}

// maxSessionsPerConn bounds the session channels one connection runs at
// once, as sshd's MaxSessions does (10).
const maxSessionsPerConn = 10

// loginKey is the Permissions.ExtraData key of a connection's Login.
type loginKey struct{}

// servePerson admits a logged-in person's connection and returns what
// serves it until it ends (connDuty.run, on a fresh goroutine), or nil
// when it is closed at once.
func (s *Server) servePerson(nc *prelogin.Conn, sc *ssh.ServerConn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) func() {
	c := s.newPersonConn(nc, sc)
	if c == nil {
		sc.Close()
		return nil
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	c.keepalive.Start(sc, s.cfg.ClientKeepalive, s.cfg.KeepaliveMaxMissed)
	d := &connDuty{c: c, sc: sc, ctx: ctx, cancel: cancel, chans: chans, reqs: reqs,
		unused: newUnusedTimer(s.cfg.LoginGraceTime, s.cfg.UnusedConnectionTimeout)}
	return d.run
}

// newPersonConn is the connection sc of a person who has logged in, or
// nil if its login is missing.
func (s *Server) newPersonConn(nc *prelogin.Conn, sc *ssh.ServerConn) *personConn {
	remote := nc.RemoteAddr().String()
	login, _ := sc.Permissions.ExtraData[loginKey{}].(*auth.Login)
	if login == nil {
		s.log.Error("authenticated connection without a login", "remote", remote)
		return nil
	}
	person := login.Person.Name
	c := &personConn{
		srv:        s,
		conn:       sc,
		login:      login,
		person:     person,
		loginHost:  sc.Permissions.Extensions[extLoginHost],
		loginEvent: sc.Permissions.Extensions[extLoginEvent],
		remote:     remote,
		adopt:      make(chan adoption),
		log:        s.log.With("person", person, "team", login.Team.Name, "remote", remote),
	}
	sc.Permissions = nil // all of it is in c now: the connection need not hold its maps
	c.log.Info("login", "login", sc.User())
	return c
}

// newChannel accepts a session channel and runs it on a goroutine of its
// own, or refuses the channel.
func (c *personConn) newChannel(ctx context.Context, nch ssh.NewChannel, unused *unusedTimer) {
	s := c.srv
	if nch.ChannelType() != "session" {
		c.log.Warn("channel refused", "type", nch.ChannelType())
		s.audit(store.AuditEvent{Actor: c.person, Action: "forward", Target: nch.ChannelType(), Outcome: "denied",
			Source: c.remote, Detail: "only session channels are allowed"})
		nch.Reject(ssh.Prohibited, "rr: forwarding is disabled on this gateway; only sessions are allowed")
		return
	}
	if c.sessions.Load() >= maxSessionsPerConn {
		nch.Reject(ssh.ResourceShortage, fmt.Sprintf("rr: at most %d sessions on one connection", maxSessionsPerConn))
		return
	}
	ch, creqs, err := nch.Accept()
	if err != nil {
		return
	}
	if !s.startSession() {
		ch.Stderr().Write([]byte("rr: the gateway is shutting down\r\n"))
		ch.Close()
		return
	}
	s.wg.Add(1)
	c.sessions.Add(1) // runSession gives it back before the channel closes
	unused.sessionStarted()
	go c.runSession(ctx, ch, creqs, func() {
		unused.notifyEnded()
		s.sessionWG.Done()
		s.wg.Done()
	})
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
	loginEvent   string // the event of an rr+event:ID login (loginHost is its host)
	remote       string
	client       string // what the recording's header names as the client ("": an SSH client)
	log          *slog.Logger
	sessions     atomic.Int32  // session channels running (maxSessionsPerConn)
	adopt        chan adoption // a started session for the connection's goroutine (handOff)
	refused      atomic.Int64  // recording reads refused on this connection (maxRefusedListed)
	downloadConn download.Conn // what this connection's download channels share
	fetchesMu    sync.Mutex
	fetches      map[[2]string]int     // downloads by recording and outcome (auditDownloadSums)
	probed       probes                // probe commands refused (auditProbes)
	keepalive    sshkit.KeepaliveTimer // here rather than apart: see its doc
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
