package gatewaytest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/internal/testtool"
	"github.com/rr-gateway/rr/recorder"
	"github.com/rr-gateway/rr/store/sqlite"
)

// Logger returns a logger that writes through t.Log, so output shows only
// for failing tests (or with -v), tagged with name.
func Logger(t testing.TB, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("who", name)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Key is a key pair written to disk for the OpenSSH client.
type Key struct {
	Signer ssh.Signer
	Path   string // private key file, mode 0600; Path+".pub" beside it
}

// NewKey makes an ed25519 key and writes it under t.TempDir().
func NewKey(t testing.TB, name string) Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(s.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	return Key{Signer: s, Path: path}
}

// Gateway is a gateway serving on 127.0.0.1.
type Gateway struct {
	Srv         *gateway.Server
	Store       *sqlite.Store
	PeopleAddr  string
	AgentAddr   string
	HostKey     ssh.Signer
	Fingerprint string
	// KnownHosts is a known_hosts file naming the gateway's host key for
	// both addresses, for ssh -o UserKnownHostsFile.
	KnownHosts string
	// Outbox holds the mail the gateway sent, unless Config.Auth.Mailer
	// was set.
	Outbox *Outbox

	t      testing.TB
	cfg    gateway.Config
	mu     sync.Mutex
	done   chan struct{}
	closed bool
}

// Config is what StartGateway starts with. In Gateway, HostKey, Store,
// Auth and Logger are filled in when empty; in Auth, Directory (the
// store), Mailer (an Outbox unless set) and Logger.
type Config struct {
	Gateway gateway.Config
	Auth    auth.Config
	// Store, if set, is the gateway's store instead of a SQLite
	// database: one that several gateways share (PostgreSQL's). The test
	// closes it.
	Store *sqlite.Store
	// Database is the SQLite file when Store is nil; "" for a fresh one.
	// Gateways given the same file share one store, as peers do
	// (docs/architecture.md).
	Database string
	// WrapStore, if set, wraps the store the gateway is given (to add
	// what another backend offers, such as a gateway.Notifier).
	WrapStore func(*sqlite.Store) gateway.Store
}

// StartGateway starts a gateway with cfg on fresh 127.0.0.1 ports and a
// fresh SQLite database (unless c.Store or c.Database says otherwise), and stops it when the test ends.
func StartGateway(t testing.TB, c Config) *Gateway {
	t.Helper()
	cfg := c.Gateway
	if cfg.HostKey == nil {
		cfg.HostKey = NewKey(t, "gateway_host_key").Signer
	}
	if cfg.Logger == nil {
		cfg.Logger = Logger(t, "gateway")
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = time.Second
	}
	st := c.Store
	if st == nil {
		db := c.Database
		if db == "" {
			db = filepath.Join(t.TempDir(), "rr.db")
		}
		var err error
		if st, err = sqlite.Open(db); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
	}
	cfg.Store = st
	if c.WrapStore != nil {
		cfg.Store = c.WrapStore(st)
	}
	if cfg.Recorders == nil {
		sp, err := recorder.NewSpool(recorder.SpoolConfig{Dir: filepath.Join(t.TempDir(), "recordings"),
			FlushInterval: 100 * time.Millisecond, Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sp.Close() })
		cfg.Recorders = gateway.SpoolRecorders(sp, st, cfg.Logger, nil)
	}
	g := &Gateway{t: t, Store: st, HostKey: cfg.HostKey,
		Fingerprint: ssh.FingerprintSHA256(cfg.HostKey.PublicKey())}
	acfg := c.Auth
	acfg.Directory = gateway.StoreDirectory(st)
	if acfg.Counters == nil {
		acfg.Counters = st // as the gateway runs: lockouts and limits in the store
	}
	if acfg.Mailer == nil {
		g.Outbox = NewOutbox()
		acfg.Mailer = g.Outbox
	}
	if acfg.Logger == nil {
		acfg.Logger = cfg.Logger
	}
	if acfg.Audit == nil {
		acfg.Audit = gateway.AuthAudit(st, cfg.Logger)
	}
	a, err := auth.New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = a
	g.cfg = cfg
	pl := listen(t, "127.0.0.1:0")
	al := listen(t, "127.0.0.1:0")
	g.PeopleAddr, g.AgentAddr = pl.Addr().String(), al.Addr().String()
	if g.cfg.Address == "" {
		g.cfg.Address = g.PeopleAddr
	}
	g.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	var kh strings.Builder
	for _, a := range []string{g.PeopleAddr, g.AgentAddr} {
		host, port, _ := net.SplitHostPort(a)
		fmt.Fprintf(&kh, "[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(cfg.HostKey.PublicKey()))
	}
	if err := os.WriteFile(g.KnownHosts, []byte(kh.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	g.serve(pl, al)
	t.Cleanup(g.Close)
	return g
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func (g *Gateway) serve(pl, al net.Listener) {
	g.t.Helper()
	srv, err := gateway.New(g.cfg)
	if err != nil {
		g.t.Fatal(err)
	}
	g.mu.Lock()
	g.Srv, g.done, g.closed = srv, make(chan struct{}), false
	g.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	for _, f := range []func() error{func() error { return srv.ServePeople(pl) }, func() error { return srv.ServeAgents(al) }} {
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, gateway.ErrServerClosed) {
				g.t.Errorf("serve: %v", err)
			}
		}()
	}
	done := g.done
	go func() { wg.Wait(); close(done) }()
}

// Close stops the gateway at once (sessions are ended, not drained).
func (g *Gateway) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	srv, done := g.Srv, g.done
	g.mu.Unlock()
	srv.Close()
	<-done
}

// Shutdown stops the gateway gracefully, as SIGTERM does.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	srv, done := g.Srv, g.done
	g.mu.Unlock()
	err := srv.Shutdown(ctx)
	<-done
	return err
}

// Restart stops the gateway and starts a new one on the same addresses,
// host key and database, as a restarted daemon would be.
func (g *Gateway) Restart() {
	g.t.Helper()
	g.Close()
	g.serve(listen(g.t, g.PeopleAddr), listen(g.t, g.AgentAddr))
}

// AddHost declares host in the store with a fresh agent key bound to it
// and returns that key.
func (g *Gateway) AddHost(name string) Key {
	g.t.Helper()
	k := NewKey(g.t, name+"_agent")
	ctx := context.Background()
	if err := g.Store.UpsertHost(ctx, name); err != nil {
		g.t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Signer.PublicKey())))
	if err := g.Store.SetAgentKey(ctx, name, line); err != nil {
		g.t.Fatal(err)
	}
	return k
}

// WaitOnline waits (up to 20 s) until host is online on this gateway.
func (g *Gateway) WaitOnline(host string) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.Srv.WaitHost(ctx, host, true); err != nil {
		g.t.Fatal(err)
	}
}

// AgentConfig is the agent config StartAgent starts with.
type AgentConfig = agent.Config

// StartAgent runs an agent for host against g with key, applying edit to
// its config first (may be nil), and stops it when the test ends.
func StartAgent(t testing.TB, g *Gateway, host string, key Key, edit func(*agent.Config)) *agent.Agent {
	t.Helper()
	cfg := agent.Config{
		Gateways:           []string{g.AgentAddr},
		GatewayHostKey:     g.Fingerprint,
		Host:               host,
		Signer:             key.Signer,
		KeepaliveInterval:  time.Second,
		KeepaliveMaxMissed: 3,
		BackoffMin:         50 * time.Millisecond,
		BackoffMax:         500 * time.Millisecond,
		KillGrace:          500 * time.Millisecond,
		Logger:             Logger(t, "agent "+host),
	}
	if edit != nil {
		edit(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return a
}

// FreeAddr returns a 127.0.0.1:PORT address that was free a moment ago,
// for a server the test starts as a process of its own.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitPort waits until something listens on addr (a child process gives
// no readiness event), failing the test after 30 seconds.
func WaitPort(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never listened", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Tool returns the path of a program the tests run (testtool.Path): a
// missing one skips the test, or fails it under CI=true.
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	return testtool.Path(t, name, install)
}

// Auth is the gateway's authentication service (the web console's logins
// go through it too).
func (g *Gateway) Auth() *auth.Service { return g.cfg.Auth }
