package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/admin"
	"github.com/rr-gateway/rr/store"
)

// Gateway is what the web console needs of the gateway.
type Gateway interface {
	RunWebSession(ctx context.Context, t gateway.WebTerminal) error
	WebHosts(ctx context.Context, login *auth.Login) ([]gateway.WebHost, error)
	WebCaller(ctx context.Context, login *auth.Login, remote string) (admin.Caller, error)
	Console() *admin.Console
	WebRecording(ctx context.Context, who admin.Caller, id string, start func(store.Session), w io.Writer) error
	WebWatch(ctx context.Context, login *auth.Login, remote, id string, t admin.WatchTerminal) error
}

// Config configures the web console. Gateway and Auth are required.
type Config struct {
	Gateway Gateway
	Auth    *auth.Service
	Logger  *slog.Logger
	// Assets are the built front end (index.html and what it loads);
	// default: the bundle embedded at build time.
	Assets fs.FS
	// IdleTimeout ends a browser's login this long after its last request
	// (15m); MaxLogin this long after it began, whatever it did (12h). A
	// terminal running keeps its login seen.
	IdleTimeout time.Duration
	MaxLogin    time.Duration
	// PromptGrace bounds one conversation: a login's or a session's
	// factors (3m: long enough to fetch a mailed code).
	PromptGrace time.Duration
	// MaxLogins bounds the browsers logged in at once (1000); a person
	// keeps at most LoginsPerPerson (5: the oldest goes) and runs at most
	// TerminalsPerLogin terminals at once from one (4).
	MaxLogins         int
	LoginsPerPerson   int
	TerminalsPerLogin int
	// PendingLogins bounds the logins waiting on a question (a team) at
	// once (64).
	PendingLogins int
	// Admitted, if set, is told of a request whose connection becomes a
	// logged-in person's terminal (rr-gateway gives its before-login slot
	// back: a terminal lives far longer than a page's request).
	Admitted func(r *http.Request)
	Now      func() time.Time
}

func (c *Config) checkAndSetDefaults() error {
	var errs []error
	if c.Gateway == nil {
		errs = append(errs, errors.New("web: no gateway"))
	}
	if c.Auth == nil {
		errs = append(errs, errors.New("web: no auth service"))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Assets == nil {
		c.Assets = Bundle()
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	dur(&c.IdleTimeout, 15*time.Minute)
	dur(&c.MaxLogin, 12*time.Hour)
	dur(&c.PromptGrace, 3*time.Minute)
	num := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	num(&c.MaxLogins, 1000)
	num(&c.LoginsPerPerson, 5)
	num(&c.TerminalsPerLogin, 4)
	num(&c.PendingLogins, 64)
	if c.Now == nil {
		c.Now = time.Now
	}
	return errors.Join(errs...)
}

// Handler serves the web console. Close it to end its conversations and
// terminals.
type Handler struct {
	cfg    Config
	log    *slog.Logger
	logins logins
	mux    *http.ServeMux

	ctx    context.Context // every conversation's and terminal's parent
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	pending map[string]*conversation // logins waiting on a question, by id
}

// New returns the web console's handler.
func New(cfg Config) (*Handler, error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, pending: map[string]*conversation{},
		logins: logins{idle: cfg.IdleTimeout, max: cfg.MaxLogin, limit: cfg.MaxLogins, perPerson: cfg.LoginsPerPerson,
			now: cfg.Now, all: map[[32]byte]*webLogin{}}}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	m := http.NewServeMux()
	m.HandleFunc("POST /api/login", h.login)
	m.HandleFunc("POST /api/login/answer", h.loginAnswer)
	m.HandleFunc("POST /api/logout", h.withLogin(h.logout))
	m.HandleFunc("GET /api/me", h.withLogin(h.me))
	m.HandleFunc("GET /api/hosts", h.withLogin(h.hosts))
	m.HandleFunc("GET /api/events", h.withLogin(h.events))
	m.HandleFunc("GET /api/events/{id}", h.withLogin(h.event))
	m.HandleFunc("GET /api/sessions", h.withLogin(h.sessions))
	m.HandleFunc("POST /api/sessions/{id}/close", h.withLogin(h.closeSession))
	m.HandleFunc("GET /api/recordings/{id}", h.withLogin(h.recording))
	m.HandleFunc("POST /api/sessions/{id}/watch", h.withLogin(h.watchSession))
	m.HandleFunc("POST /api/start", h.withLogin(h.start))
	m.HandleFunc("POST /api/start/answer", h.withLogin(h.startAnswer))
	m.HandleFunc("GET /api/terminal", h.terminal)
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) { fail(w, http.StatusNotFound, "no such API") })
	m.Handle("/", h.assets())
	h.mux = m
	return h, nil
}

// ServeHTTP serves the console with its security headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	// xterm.js sets its own styles at run time: styles may be inline,
	// scripts never.
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "+
		"img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if len(r.URL.Path) >= 5 && r.URL.Path[:5] == "/api/" {
		hd.Set("Cache-Control", "no-store")
	}
	h.mux.ServeHTTP(w, r)
}

// Close ends every conversation and terminal and waits for them.
func (h *Handler) Close() error {
	h.cancel()
	h.wg.Wait()
	return nil
}

// withLogin refuses a request without a live login, and a state change
// without the login's CSRF token (403).
func (h *Handler) withLogin(next func(http.ResponseWriter, *http.Request, *webLogin)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		l := h.logins.get(r)
		if l == nil {
			fail(w, http.StatusUnauthorized, "log in first")
			return
		}
		if r.Method != http.MethodGet && !l.csrfOK(r) {
			h.log.Warn("web: request without its CSRF token refused", "person", l.login.Person.Name,
				"remote", r.RemoteAddr, "path", r.URL.Path)
			fail(w, http.StatusForbidden, "missing or wrong CSRF token; reload the page")
			return
		}
		next(w, r, l)
	}
}

// maxBody bounds a request's JSON body.
const maxBody = 8 << 10

// decode reads r's JSON body into v (bounded, strict); false after
// answering 400.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	d := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "malformed request: want a JSON object with the documented fields")
		return false
	}
	return true
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]string{"error": msg})
}

// remoteIP is the browser's address, as the limits count it.
func remoteAddr(r *http.Request) string {
	if _, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return r.RemoteAddr
	}
	return r.RemoteAddr + ":0"
}
