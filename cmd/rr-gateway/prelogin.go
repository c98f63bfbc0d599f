package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/internal/prelogin"
)

// fileBeforeLogin is before_login: each port's bounds on connections that
// have not logged in yet.
type fileBeforeLogin struct {
	People filePortLimits `yaml:"people"`
	Agents filePortLimits `yaml:"agents"`
	HTTP   filePortLimits `yaml:"http"`
	HTTPS  filePortLimits `yaml:"https"`
}

type filePortLimits struct {
	PerAddress       int           `yaml:"per_address"`
	MaxStartups      string        `yaml:"max_startups"`
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
}

// defaultUnusedConnTimeout is unused_connection_timeout's default: long
// enough to start the next session over a ControlMaster.
const defaultUnusedConnTimeout = 2 * time.Minute

// unusedConnTimeout is unused_connection_timeout (absent: the default;
// 0s: never).
func (c *fileConfig) unusedConnTimeout() time.Duration {
	if c.UnusedConnTimeout == nil {
		return defaultUnusedConnTimeout
	}
	return *c.UnusedConnTimeout
}

// defaultHTTPLimits bound the HTTP port: every connection counts (nothing
// logs in), so the caps are on open connections; HandshakeTimeout is the
// server's ReadHeaderTimeout. A scraper or two and health checks.
var defaultHTTPLimits = prelogin.Limits{
	PerAddress:       10,
	MaxStartups:      prelogin.Startups{Start: 50, Rate: 30, Full: 200},
	HandshakeTimeout: 5 * time.Second,
}

func (b *fileBeforeLogin) check() error {
	var errs []error
	for name, p := range map[string]filePortLimits{"people": b.People, "agents": b.Agents, "http": b.HTTP, "https": b.HTTPS} {
		if _, err := p.limits(prelogin.Limits{}); err != nil {
			errs = append(errs, fmt.Errorf("before_login.%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// limits is p over def (zero fields of p keep def's).
func (p filePortLimits) limits(def prelogin.Limits) (prelogin.Limits, error) {
	l := def
	if p.PerAddress < 0 || p.HandshakeTimeout < 0 {
		return l, errors.New("per_address and handshake_timeout may not be negative")
	}
	if p.PerAddress > 0 {
		l.PerAddress = p.PerAddress
	}
	if p.HandshakeTimeout > 0 {
		l.HandshakeTimeout = p.HandshakeTimeout
	}
	if p.MaxStartups != "" {
		s, err := prelogin.ParseStartups(p.MaxStartups)
		if err != nil {
			return l, err
		}
		l.MaxStartups = s
	}
	return l, nil
}

// gatewayLimits are the people's and agents' limits for gateway.Config
// (zero fields take the gateway's defaults).
func (b *fileBeforeLogin) gatewayLimits() (people, agents prelogin.Limits) {
	people, _ = b.People.limits(prelogin.Limits{})
	agents, _ = b.Agents.limits(prelogin.Limits{})
	return people, agents
}

// listenHTTP listens on addr for srv, within the HTTP port's limits:
// accepting never stops, and one address cannot hold every connection.
func (b *fileBeforeLogin) listenHTTP(addr string, srv *http.Server, m *gateway.Metrics, log *slog.Logger) (net.Listener, error) {
	return b.listenWeb("http", b.HTTP, addr, srv, m, log)
}

// listenWeb listens on addr for srv within p's limits (over
// defaultHTTPLimits), counting refusals under port.
func (b *fileBeforeLogin) listenWeb(port string, p filePortLimits, addr string, srv *http.Server, m *gateway.Metrics, log *slog.Logger) (net.Listener, error) {
	lim, err := p.limits(defaultHTTPLimits)
	if err != nil {
		return nil, err
	}
	srv.ReadHeaderTimeout = lim.HandshakeTimeout
	lim.HandshakeTimeout = 0 // the server sets its own deadlines
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return prelogin.Wrap(ln, prelogin.Config{Limits: lim, Port: port, Logger: log, Refused: m.ConnRefused(port)})
}
