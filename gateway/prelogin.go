package gateway

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/internal/prelogin"
)

// DefaultPeopleLimits bound the people's port before login. Higher than
// sshd's (per-source none, MaxStartups 10:30:100): one gateway serves a
// whole incident's responders, several behind one NAT address, each taking
// tens of seconds to type a password and fetch a code. 1 000 silent
// connections cost the gateway about 7 MiB (make bench: connections held
// per MiB).
var DefaultPeopleLimits = prelogin.Limits{
	PerAddress:       20,
	MaxStartups:      prelogin.Startups{Start: 100, Rate: 30, Full: 1000},
	HandshakeTimeout: 10 * time.Second,
}

// DefaultAgentLimits bound the agents' port before login. Agents log in
// with a key in milliseconds, but a fleet reconnects at once after the
// gateway restarts (and backs off when refused), often many hosts behind
// one NAT address.
var DefaultAgentLimits = prelogin.Limits{
	PerAddress:       100,
	MaxStartups:      prelogin.Startups{Start: 200, Rate: 30, Full: 2000},
	HandshakeTimeout: 10 * time.Second,
}

// limitsDefaults fills l's zero fields from def; grace is the login grace.
func limitsDefaults(l, def prelogin.Limits, grace time.Duration) prelogin.Limits {
	if l.PerAddress <= 0 {
		l.PerAddress = def.PerAddress
	}
	if l.MaxStartups == (prelogin.Startups{}) {
		l.MaxStartups = def.MaxStartups
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = def.HandshakeTimeout
	}
	l.LoginGrace = grace
	return l
}

// withKexHook returns a copy of cfg whose PreAuthConnCallback (key
// exchange over, authentication starting) moves nc from its handshake
// deadline to its login grace.
func withKexHook(cfg *ssh.ServerConfig, nc *prelogin.Conn) *ssh.ServerConfig {
	c := *cfg
	c.PreAuthConnCallback = func(ssh.ServerPreAuthConn) { nc.KexDone() }
	return &c
}

// provenPrompter is the keyboard-interactive Prompter of a connection
// not yet authenticated: once auth.Service.Interactive has proven who the
// person is, the connection gets PromptGraceTime for the rest (an rr+HOST
// login's passphrase and mailed code), instead of what is left of the
// login grace.
type provenPrompter struct {
	auth.Prompter
	nc    *prelogin.Conn
	grace time.Duration
}

func (p provenPrompter) IdentityProven() { p.nc.Extend(p.grace) }

// logLoginFailure logs why a connection did not log in: at warning level
// when the client broke the protocol (a bad version line, no common
// algorithm, a malformed packet…), so that operators see scanners and
// broken clients; lower for what every day brings (a client that leaves,
// a failed login, which the auth audit records, a timeout).
func logLoginFailure(log *slog.Logger, port, remote string, err error) {
	var authErr *ssh.ServerAuthError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), strings.HasPrefix(err.Error(), "ssh: disconnect, reason"):
		log.Debug("client left before logging in", "port", port, "remote", remote, "err", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Info("login timed out", "port", port, "remote", remote, "err", err)
	case errors.As(err, &authErr):
		log.Info("login failed", "port", port, "remote", remote, "err", err)
	default:
		log.Warn("client broke the login protocol", "port", port, "remote", remote, "err", err)
	}
}
