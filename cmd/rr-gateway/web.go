package main

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/web"
	"github.com/rr-gateway/rr/internal/prelogin"
)

// fileWeb is web: the web console on the HTTPS listener.
type fileWeb struct {
	// Enabled serves the console beside the event intake (true).
	Enabled           bool          `yaml:"enabled"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	MaxLogin          time.Duration `yaml:"max_login"`
	MaxLogins         int           `yaml:"max_logins"`
	LoginsPerPerson   int           `yaml:"logins_per_person"`
	TerminalsPerLogin int           `yaml:"terminals_per_login"`
}

func defaultWeb() fileWeb {
	return fileWeb{Enabled: true, IdleTimeout: 15 * time.Minute, MaxLogin: 12 * time.Hour, MaxLogins: 1000,
		LoginsPerPerson: 5, TerminalsPerLogin: 4}
}

func (w fileWeb) check() error {
	if w.IdleTimeout < 0 || w.MaxLogin < 0 || w.MaxLogins < 0 || w.LoginsPerPerson < 0 || w.TerminalsPerLogin < 0 {
		return errors.New("web: idle_timeout, max_login, max_logins, logins_per_person and terminals_per_login may not be negative")
	}
	return nil
}

// connKey is the request context's key of its connection (connContext).
type connKey struct{}

// connContext keeps each connection in its requests' context, for
// admitted.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// admitted gives a web terminal's connection its before-login slot back.
func admitted(r *http.Request) {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if pc, ok := c.(*prelogin.Conn); ok {
		pc.Authenticated()
	}
}

// httpsHandler is what the HTTPS listener serves: the event intake under
// /v1/, the web console (when enabled) everywhere else. The
// returned close ends the console's terminals (nil when there is none).
func (c *fileConfig) httpsHandler(intake http.Handler, srv *gateway.Server, authSvc *auth.Service, log *slog.Logger) (http.Handler, func() error, error) {
	if !c.Web.Enabled {
		return intake, nil, nil
	}
	console, err := web.New(web.Config{Gateway: srv, Auth: authSvc, Logger: log,
		IdleTimeout: c.Web.IdleTimeout, MaxLogin: c.Web.MaxLogin, PromptGrace: c.PromptGraceTime,
		MaxLogins: c.Web.MaxLogins, LoginsPerPerson: c.Web.LoginsPerPerson, TerminalsPerLogin: c.Web.TerminalsPerLogin,
		Admitted: admitted})
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", intake) // the intake answers every /v1/ path, its 404s included
	mux.Handle("/", console)
	return mux, console.Close, nil
}
