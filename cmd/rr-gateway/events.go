package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/events"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/internal/config"
	"github.com/rr-gateway/rr/store/sqlite"
)

// fileHTTPS is https: the listener that takes security events (and will
// serve the web console).
type fileHTTPS struct {
	Listen   string `yaml:"listen"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// PlainHTTP serves without TLS on an address that is not loopback
	// (behind a proxy that terminates TLS). Without cert and key files,
	// a loopback address is served plain anyway.
	PlainHTTP bool `yaml:"plain_http"`
}

// fileEvents is events: the intake's tokens, host mapping, limits, mail
// and retention.
type fileEvents struct {
	FalcoTokenFile        string        `yaml:"falco_token_file"`
	AlertmanagerTokenFile string        `yaml:"alertmanager_token_file"`
	HostLabels            []string      `yaml:"host_labels"`
	MatchLabels           []string      `yaml:"match_labels"`
	Rate                  float64       `yaml:"rate"`
	Burst                 int           `yaml:"burst"`
	Retention             time.Duration `yaml:"retention"`
	MailQueue             int           `yaml:"mail_queue"`
	DigestAfter           int           `yaml:"digest_after"`
	DigestWindow          time.Duration `yaml:"digest_window"`
}

// minTokenLen bounds how short a source's token may be.
const minTokenLen = 16

func defaultEvents() fileEvents {
	return fileEvents{HostLabels: events.DefaultHostLabels, MatchLabels: []string{"node"}, Rate: 200, Burst: 1000,
		Retention: 90 * 24 * time.Hour, MailQueue: 1024, DigestAfter: 5, DigestWindow: 10 * time.Minute}
}

func (c *fileConfig) checkEvents() error {
	var errs []error
	h, e := c.HTTPS, c.Events
	if h.Listen != "" {
		if (h.CertFile == "") != (h.KeyFile == "") {
			errs = append(errs, errors.New("https: cert_file and key_file go together"))
		}
		if h.CertFile == "" && !h.PlainHTTP && !loopback(h.Listen) {
			errs = append(errs, fmt.Errorf("https.listen %s: not a loopback address, and no cert_file and key_file: "+
				"give them, or set plain_http: true if a proxy in front terminates TLS", h.Listen))
		}
		if e.FalcoTokenFile == "" && e.AlertmanagerTokenFile == "" && !c.Web.Enabled {
			errs = append(errs, errors.New("https.listen set, the web console off, and no events token file: every request would be refused"))
		}
	}
	if err := c.Web.check(); err != nil {
		errs = append(errs, err)
	}
	if e.Rate < 0 || e.Burst < 0 || e.Retention < 0 || e.MailQueue < 0 || e.DigestAfter < 0 || e.DigestWindow < 0 {
		errs = append(errs, errors.New("events: rate, burst, retention, mail_queue, digest_after and digest_window may not be negative"))
	}
	for i, t := range c.Teams {
		if t.Events != "" && !events.ValidSubscription(t.Events) {
			errs = append(errs, fmt.Errorf("teams[%d] %s: events %q: want off or a priority (emergency … debug)", i, t.Name, t.Events))
		}
	}
	return errors.Join(errs...)
}

// loopback reports whether addr (HOST:PORT) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tokens reads each source's bearer token.
func (e fileEvents) tokens() (map[string][]byte, error) {
	out := map[string][]byte{}
	var errs []error
	for source, file := range map[string]string{events.SourceFalco: e.FalcoTokenFile, events.SourceAlertmanager: e.AlertmanagerTokenFile} {
		if file == "" {
			continue
		}
		tok, err := config.Secret("", file, "")
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("events: %s token: %w", source, err))
		case len(tok) < minTokenLen:
			errs = append(errs, fmt.Errorf("events: %s token in %s: shorter than %d characters", source, file, minTokenLen))
		default:
			out[source] = []byte(tok)
		}
	}
	return out, errors.Join(errs...)
}

// eventParts are the running parts of event intake.
type eventParts struct {
	intake   *events.Intake
	notifier *events.Notifier
	handler  http.Handler
}

// newEvents builds the intake, its handler and the notifier (not yet
// running).
func (c *fileConfig) newEvents(st *sqlite.Store, mailer auth.Mailer, log *slog.Logger) (*eventParts, error) {
	e := c.Events
	n, err := events.NewNotifier(events.NotifierConfig{Directory: st, Mailer: mailer, Address: c.address(),
		Queue: e.MailQueue, DigestAfter: e.DigestAfter, DigestWindow: e.DigestWindow, Logger: log})
	if err != nil {
		return nil, err
	}
	in, err := events.NewIntake(events.IntakeConfig{Store: st, Notifier: n, HostLabels: e.HostLabels,
		MatchLabels: e.MatchLabels, Logger: log})
	if err != nil {
		return nil, err
	}
	tokens, err := e.tokens()
	if err != nil {
		return nil, err
	}
	h, err := events.NewHandler(events.HandlerConfig{Intake: in, Tokens: tokens, HostLabels: e.HostLabels,
		Rate: e.Rate, Burst: e.Burst, Logger: log})
	if err != nil {
		return nil, err
	}
	return &eventParts{intake: in, notifier: n, handler: h}, nil
}

// serveHTTPS starts the HTTPS listener with h, within its before-login
// limits, and returns the server (nil when https.listen is empty).
func (c *fileConfig) serveHTTPS(h http.Handler, m *gateway.Metrics, log *slog.Logger) (*http.Server, error) {
	if c.HTTPS.Listen == "" {
		return nil, nil
	}
	srv := newHTTPServer(h)
	srv.ConnContext = connContext
	var tlsCfg *tls.Config
	if c.HTTPS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.HTTPS.CertFile, c.HTTPS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("https: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := c.BeforeLogin.listenWeb("https", c.BeforeLogin.HTTPS, c.HTTPS.Listen, srv, m, log)
	if err != nil {
		return nil, fmt.Errorf("https.listen: %w", err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	go srv.Serve(ln)
	log.Info("https: events intake and web console", "https", ln.Addr().String(), "tls", tlsCfg != nil, "web_console", c.Web.Enabled)
	return srv, nil
}

// pruneEvents deletes events older than the retention, now and every
// hour, until ctx is done.
func pruneEvents(ctx context.Context, st *sqlite.Store, retention time.Duration, log *slog.Logger) {
	if retention <= 0 {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := st.PruneEvents(ctx, time.Now().Add(-retention))
		if err != nil && ctx.Err() == nil {
			log.Error("events not pruned", "err", err)
		} else if n > 0 {
			log.Info("events past their retention deleted", "events", n, "retention", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
