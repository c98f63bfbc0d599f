package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/events"
	"github.com/rr-gateway/rr/gateway/admin"
	"github.com/rr-gateway/rr/internal/prelogin"
	"github.com/rr-gateway/rr/recorder"
	"github.com/rr-gateway/rr/store"
)

// killWait bounds how long a console kill waits for the session to be
// finalized.
const killWait = 15 * time.Second

// ErrServerClosed is returned by the Serve methods after Shutdown or Close.
var ErrServerClosed = errors.New("gateway: server closed")

// Store is the subset of the store the gateway uses, the admin console's
// included.
type Store interface {
	admin.Store
	Host(ctx context.Context, name string) (store.Host, error)
	Hosts(ctx context.Context) ([]store.Host, error)
	TouchHost(ctx context.Context, name string, t time.Time) error
	HasEnrollToken(ctx context.Context, host string, now time.Time) (bool, error)
	UseEnrollToken(ctx context.Context, host string, tokenHash []byte, authorizedKey string, now time.Time) error
	PersonByName(ctx context.Context, name string) (store.Person, error)
	PersonByKey(ctx context.Context, fingerprint string) (store.Person, error)
	TeamsOf(ctx context.Context, person string) ([]store.Team, error)
	CreateSession(ctx context.Context, s store.Session) error
	FinishSession(ctx context.Context, id string, end store.SessionEnd) error
	Session(ctx context.Context, id string) (store.Session, error)
	Sessions(ctx context.Context, f store.SessionFilter) ([]store.Session, error)
	Audit(ctx context.Context, e store.AuditEvent) error
	Event(ctx context.Context, id string) (store.Event, error)
	EventResponding(ctx context.Context, id, person string, at time.Time) error
	EventSessionEnded(ctx context.Context, id string, at time.Time) error
	ClusterStore
}

// Config configures a Server. HostKey, Store, Auth and Recorders are
// required; every other field has a default (see New).
type Config struct {
	HostKey ssh.Signer
	Store   Store
	// Auth runs people's authentication; build it over StoreDirectory.
	Auth      *auth.Service
	Recorders Recorders // required: no recorder, no session
	Logger    *slog.Logger
	// Metrics, if set, counts ended sessions and their bytes (see
	// Server.Register).
	Metrics *Metrics

	// Name identifies this gateway in logs and recordings (default:
	// DefaultName()).
	Name string
	// Address is how people reach the gateway (HOST or HOST:PORT), shown
	// in hints such as the scp command of a recording (default: Name).
	Address string
	// Advertise is where peers and people reach this gateway directly
	// (HOST:PORT), past any load balancer; it goes into its session rows
	// (default: Address).
	Advertise string
	// Lease is how long this gateway's lease in the store lasts: a peer
	// that finds it expired marks its live sessions interrupted (15s). It
	// is renewed every third of it.
	Lease time.Duration
	// KillPoll is how often, while it holds live sessions, the gateway
	// looks in the store for kills asked on a peer (500ms); a store with
	// Listen and Notify (a Notifier) wakes it at once as well.
	KillPoll time.Duration
	// Recordings reads finalized recordings back, for downloads, wherever
	// the store says they are (the zero Opener: files in the local spool).
	Recordings recorder.Opener
	// Declared reports whether a person, team or host is declared in the
	// configuration file (applied at every start): the rr-admin console
	// refuses to change those. Optional.
	Declared func(kind, name string) bool
	// TokenRule says whether host's agent may be enrolled with a token
	// made in the console (the configuration file's rule): the reason to
	// audit, or the refusal. Optional: without it, hosts Declared
	// declares get no token.
	TokenRule func(host string) (reason string, err error)
	// LoginGraceTime bounds, from accept, the SSH handshake and proving
	// who one is (60s); an authenticated person's connection that never
	// opens a channel is closed this long after login (see
	// UnusedConnectionTimeout).
	LoginGraceTime time.Duration
	// PromptGraceTime bounds what is asked once identity is proven: the
	// rest of an rr+HOST login's keyboard-interactive (team, passphrase,
	// mailed code), and the menu, passphrase and code asked on a
	// session's terminal (3m: long enough to fetch a mailed code).
	PromptGraceTime time.Duration
	// UnusedConnectionTimeout closes a person's connection that has had
	// no channel open for this long after its last one ended (ssh -N, a
	// ControlMaster between sessions); one that never opened a channel
	// is closed LoginGraceTime after login. Zero: never (both). Agents'
	// tunnels are never closed for it.
	UnusedConnectionTimeout time.Duration
	// PeopleLimits and AgentLimits bound the connections not logged in
	// yet on each port (zero fields: DefaultPeopleLimits,
	// DefaultAgentLimits); their LoginGrace is LoginGraceTime.
	PeopleLimits prelogin.Limits
	AgentLimits  prelogin.Limits
	// ShutdownGrace is how long Shutdown lets live sessions run after
	// telling them the gateway is going away (10s).
	ShutdownGrace time.Duration
	// AgentKeepalive and ClientKeepalive are the intervals of keepalive
	// requests to agents (15s) and to people's clients (30s); a connection
	// that misses KeepaliveMaxMissed (3) in a row is closed.
	AgentKeepalive     time.Duration
	ClientKeepalive    time.Duration
	KeepaliveMaxMissed int
	// IdleTimeout closes a session when no byte has crossed it either way
	// for this long; MaxSessionLength closes it this long after it
	// started. Zero: no limit.
	IdleTimeout      time.Duration
	MaxSessionLength time.Duration
	// Notary signs each finalized recording's manifest (see package
	// evidence). Optional here; rr-gateway always sets it.
	Notary Notary
	// Evidence, with the audit public key, lets the console verify the
	// live trail (audit verify) and show manifests. Optional.
	Evidence *admin.Evidence
	// Now is the clock (time.Now).
	Now func() time.Time
	// Algorithms are the SSH algorithms both ports offer
	// (DefaultAlgorithms for an empty list).
	Algorithms Algorithms
}

func (c *Config) checkAndSetDefaults() error {
	var errs []error
	if c.HostKey == nil {
		errs = append(errs, errors.New("gateway: no host key"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("gateway: no store"))
	}
	if c.Auth == nil {
		errs = append(errs, errors.New("gateway: no auth service"))
	}
	if c.Recorders == nil {
		errs = append(errs, errors.New("gateway: no recorders (sessions are never run unrecorded)"))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Name == "" {
		c.Name = DefaultName()
	}
	if c.Address == "" {
		c.Address = c.Name
	}
	if c.Advertise == "" {
		c.Advertise = c.Address
	}
	setDefault(&c.Lease, 15*time.Second)
	setDefault(&c.KillPoll, 500*time.Millisecond)
	setDefault(&c.LoginGraceTime, time.Minute)
	setDefault(&c.PromptGraceTime, 3*time.Minute)
	c.PeopleLimits = limitsDefaults(c.PeopleLimits, DefaultPeopleLimits, c.LoginGraceTime)
	c.AgentLimits = limitsDefaults(c.AgentLimits, DefaultAgentLimits, c.LoginGraceTime)
	setDefault(&c.ShutdownGrace, 10*time.Second)
	setDefault(&c.AgentKeepalive, 15*time.Second)
	setDefault(&c.ClientKeepalive, 30*time.Second)
	if c.KeepaliveMaxMissed <= 0 {
		c.KeepaliveMaxMissed = 3
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if err := c.Algorithms.checkAndSetDefaults(); err != nil {
		errs = append(errs, fmt.Errorf("gateway: ssh algorithms: %w", err))
	}
	return errors.Join(errs...)
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Server is an rr gateway. Create it with New, then call ServePeople and
// ServeAgents, each with its own listener.
type Server struct {
	cfg      Config
	log      *slog.Logger
	people   *ssh.ServerConfig
	agents   *ssh.ServerConfig
	registry registry
	console  *admin.Console
	// renewed says the lease was renewed once: set by joinCluster, then
	// by runCluster's goroutine only.
	renewed bool

	// ctx is cancelled, with a cause, when the server closes; every
	// connection's context derives from it.
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	sessions  map[string]*session
	notices   notices        // changes to mail to the admins
	final     *finalizer     // session ends the store has still to hear
	sessionWG sync.WaitGroup // live sessions
	wg        sync.WaitGroup // every goroutine the server started
}

// New checks cfg and returns a Server ready to serve.
func New(cfg Config) (*Server, error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		listeners: map[net.Listener]struct{}{},
		conns:     map[net.Conn]struct{}{},
		sessions:  map[string]*session{},
	}
	s.registry.init()
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	s.final = newFinalizer(cfg.Logger, s.ctx.Done(), &s.wg)
	s.people = s.peopleConfig()
	s.agents = s.agentsConfig()
	cfg.Algorithms.apply(s.people)
	cfg.Algorithms.apply(s.agents)
	console, err := admin.New(admin.Config{
		Store: cfg.Store,
		Kill: func(ctx context.Context, id, by, reason string) error {
			// The kill is sent at once; waiting for its end does not
			// depend on the console's connection, so the audit says
			// how it ended even when that connection drops meanwhile.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
			defer cancel()
			return s.killAnywhere(ctx, id, by, reason)
		},
		Online:          s.Online,
		Live:            s.liveBytes,
		DownloadCommand: s.downloadCommand,
		EventCommand:    func(id string) string { return events.Command(cfg.Address, id) },
		Watch:           s.watch,
		Watchers:        s.watchers,
		Declared:        cfg.Declared,
		SecondFactor:    s.consoleSecondFactor,
		Notify:          s.notifyAdmins,
		DropAgents:      s.dropAgents,
		TokenRule:       cfg.TokenRule,
		Evidence:        cfg.Evidence,
		Now:             cfg.Now,
		Logger:          cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	s.console = console
	if err := s.joinCluster(); err != nil {
		s.cancel(err)
		return nil, fmt.Errorf("gateway: join the cluster: %w", err)
	}
	return s, nil
}

// ServePeople accepts people's connections on ln until the server closes,
// within Config.PeopleLimits.
func (s *Server) ServePeople(ln net.Listener) error {
	return s.serve(ln, "people", s.cfg.PeopleLimits, s.peopleConfigFor, s.servePerson)
}

// ServeAgents accepts agents' connections on ln until the server closes,
// within Config.AgentLimits.
func (s *Server) ServeAgents(ln net.Listener) error {
	return s.serve(ln, "agents", s.cfg.AgentLimits, s.agentsConfigFor, s.serveAgent)
}

func (s *Server) serve(raw net.Listener, port string, lim prelogin.Limits, config func(*prelogin.Conn) *ssh.ServerConfig, serve connServer) error {
	ln, err := prelogin.Wrap(raw, prelogin.Config{Limits: lim, Port: port, Logger: s.log, Refused: s.cfg.Metrics.ConnRefused(port)})
	if err != nil {
		raw.Close()
		return err
	}
	if !s.track(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.untrack(ln)
	var delay time.Duration
	for {
		nc, err := ln.AcceptConn()
		if err != nil {
			if s.isClosing() || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			// prelogin waits out trouble that passes (out of file
			// descriptors…) itself; anything else, all the same: back
			// off and try again, rather than end every session.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "delay", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if !s.trackConn(nc) {
			nc.Close()
			continue
		}
		s.wg.Add(1)
		go s.connection(nc, port, config, serve)
	}
}

// connection logs nc in with config's SSH server, has serve admit it,
// then runs what serve returned on a goroutine of its own: the login's
// deep calls (key exchange callbacks, argon2id, the store) and the
// admission's grow the login goroutine's stack, which an idle connection
// would otherwise keep (a goroutine's stack halves at a collection only
// while what it uses parked, plus an 800-byte guard, is under a quarter
// of it).
func (s *Server) connection(nc *prelogin.Conn, port string, config func(*prelogin.Conn) *ssh.ServerConfig, serve connServer) {
	var run func()
	func() {
		defer s.recoverPanic("connection", "remote", nc.RemoteAddr().String())
		sc, chans, reqs, err := ssh.NewServerConn(nc, config(nc))
		if err != nil {
			logLoginFailure(s.log, port, nc.RemoteAddr().String(), err)
			return
		}
		nc.Authenticated()
		run = serve(nc, sc, chans, reqs)
	}()
	if run == nil {
		s.connectionDone(nc)
		return
	}
	go func() {
		defer s.connectionDone(nc)
		run()
	}()
}

// connectionDone forgets and closes a connection that has ended (after a
// panic too: a deferred call of its own, it recovers it).
func (s *Server) connectionDone(nc *prelogin.Conn) {
	if r := recover(); r != nil {
		s.logPanic("connection", r, "remote", nc.RemoteAddr().String())
	}
	s.untrackConn(nc)
	nc.Close()
	s.wg.Done()
}

// connServer admits a logged-in connection and returns what serves it
// until it ends; nil if it closed the connection at once.
type connServer func(nc *prelogin.Conn, sc *ssh.ServerConn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) func()

// Shutdown stops accepting, tells every live session that the gateway is
// going away, lets them run for Config.ShutdownGrace (or until ctx is
// done), then ends the rest and closes every connection. It returns when
// every goroutine has exited, or ctx's error if that comes first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopAcceptingLocked()
	live := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		live = append(live, ss)
	}
	s.mu.Unlock()

	grace := s.cfg.ShutdownGrace
	for _, ss := range live {
		ss.notify(fmt.Sprintf("rr: the gateway is shutting down; this session will be closed in %s", grace))
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-done(&s.sessionWG):
	case <-timer.C:
	case <-ctx.Done():
	}
	s.closeAll(errShutdown)
	return s.wait(ctx)
}

// Close ends every session and connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.stopAcceptingLocked()
	s.mu.Unlock()
	s.closeAll(errShutdown)
	return s.wait(context.Background())
}

// stopAcceptingLocked marks the server closing and closes its listeners.
func (s *Server) stopAcceptingLocked() {
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
}

func (s *Server) closeAll(cause error) {
	// Sessions first, so each finalizes with the shutdown as its reason,
	// then the connections under them.
	s.cancel(cause)
	select {
	case <-done(&s.sessionWG):
	case <-time.After(5 * time.Second):
		s.log.Warn("sessions slow to end at shutdown; closing connections")
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

func (s *Server) wait(ctx context.Context) error {
	select {
	case <-done(&s.wg):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
}

func (s *Server) trackConn(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrackConn(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// recoverPanic keeps the daemon up when one connection or session panics.
func (s *Server) recoverPanic(what string, args ...any) {
	if r := recover(); r != nil {
		s.logPanic(what, r, args...)
	}
}

// logPanic logs a recovered panic r with its stack.
func (s *Server) logPanic(what string, r any, args ...any) {
	s.log.Error("panic in "+what, append(args, "panic", r, "stack", string(debug.Stack()))...)
}

func (s *Server) audit(e store.AuditEvent) {
	if e.Time.IsZero() {
		e.Time = s.cfg.Now()
	}
	// Through the finalizer: while the store is down the event waits,
	// in order with the sessions' ends, instead of being lost.
	s.final.runAudit(s.log.With("action", e.Action, "actor", e.Actor), finalStep{"audit event " + e.Action,
		func(ctx context.Context) error { return s.cfg.Store.Audit(ctx, e) }})
}

func newSessionID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}
