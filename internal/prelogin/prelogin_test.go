package prelogin

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listen wraps a fresh 127.0.0.1 listener with cfg and collects the
// refusals' reasons.
func listen(t *testing.T, cfg Config) (*Listener, *reasons) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &reasons{}
	cfg.Refused = r.add
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := Wrap(ln, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, r
}

type reasons struct {
	mu sync.Mutex
	rs []string
}

func (r *reasons) add(reason string) { r.mu.Lock(); r.rs = append(r.rs, reason); r.mu.Unlock() }
func (r *reasons) list() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.rs, ",")
}

// dialFrom connects to l from the loopback address from (all of
// 127.0.0.0/8 is loopback on Linux).
func dialFrom(t *testing.T, l net.Listener, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// accepted dials l from from and returns the connection Accept gave for
// it, or nil when Accept moved on to the next one (refused): a marker
// connection from 127.0.0.99 follows each dial so that Accept always
// returns.
func accepted(t *testing.T, l *Listener, from string) *Conn {
	t.Helper()
	c := dialFrom(t, l, from)
	local := c.LocalAddr().String()
	nc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if nc.RemoteAddr().String() != local {
		t.Fatalf("accepted %s, want %s", nc.RemoteAddr(), local)
	}
	return nc.(*Conn)
}

// refused dials l from from and checks that the gateway closed it: the
// next connection, from probe, is what Accept returns.
func refused(t *testing.T, l *Listener, from, probe string) *Conn {
	t.Helper()
	c := dialFrom(t, l, from)
	p := dialFrom(t, l, probe)
	nc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if nc.RemoteAddr().String() != p.LocalAddr().String() {
		t.Fatalf("accepted %s, want the probe %s after %s was refused", nc.RemoteAddr(), p.LocalAddr(), c.LocalAddr())
	}
	assertClosed(t, c)
	return nc.(*Conn)
}

// assertClosed checks that the other side closed c.
func assertClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("refused connection: read %v, want it closed", err)
	}
}

func TestPerAddressCap(t *testing.T) {
	l, r := listen(t, Config{Port: "test", Limits: Limits{PerAddress: 2, MaxStartups: Startups{100, 30, 100}}})
	a1 := accepted(t, l, "127.0.0.1")
	accepted(t, l, "127.0.0.1")
	// A third from the same address is refused; another address is not.
	refused(t, l, "127.0.0.1", "127.0.0.2")
	if got := r.list(); got != PerAddress {
		t.Fatalf("refusals %q, want %q", got, PerAddress)
	}
	if l.Pending() != 3 {
		t.Fatalf("pending %d, want 3", l.Pending())
	}
	// Authenticating gives the slot back (and only once).
	a1.Authenticated()
	a1.Authenticated()
	a1.Close()
	accepted(t, l, "127.0.0.1")
	if l.Pending() != 3 {
		t.Fatalf("pending %d, want 3", l.Pending())
	}
}

func TestFull(t *testing.T) {
	l, r := listen(t, Config{Port: "test", Limits: Limits{PerAddress: 10, MaxStartups: Startups{2, 30, 2}}})
	accepted(t, l, "127.0.0.1")
	b := accepted(t, l, "127.0.0.2")
	type result struct {
		c   net.Conn
		err error
	}
	res := make(chan result, 1)
	go func() { c, err := l.Accept(); res <- result{c, err} }()
	// Full: a third address is refused (closed at once) ...
	// (On loopback the reset can reach the dialler before its connect
	// returns.)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	if c, err := d.Dial("tcp", l.Addr().String()); err == nil {
		defer c.Close()
		assertClosed(t, c)
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	if got := r.list(); got != Full {
		t.Fatalf("refusals %q, want %q", got, Full)
	}
	// ... until a slot is free.
	b.Close()
	p := dialFrom(t, l, "127.0.0.4")
	got := <-res
	if got.err != nil {
		t.Fatal(got.err)
	}
	defer got.c.Close()
	if got.c.RemoteAddr().String() != p.LocalAddr().String() {
		t.Fatalf("accepted %s, want %s", got.c.RemoteAddr(), p.LocalAddr())
	}
}

func TestDropChance(t *testing.T) {
	s := Startups{Start: 10, Rate: 30, Full: 100}
	for _, tc := range []struct{ n, want int }{{0, 0}, {9, 0}, {10, 30}, {55, 65}, {99, 99}, {100, 100}, {500, 100}} {
		if got := s.dropChance(tc.n); got != tc.want {
			t.Errorf("dropChance(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
	for _, in := range []string{"10:30:100", "50", " 1:0:2"} {
		if _, err := ParseStartups(in); err != nil {
			t.Errorf("ParseStartups(%q): %v", in, err)
		}
	}
	for _, in := range []string{"", "a", "10:30", "100:30:10", "1:101:2", "0", "-1:30:10"} {
		if _, err := ParseStartups(in); err == nil {
			t.Errorf("ParseStartups(%q): no error", in)
		}
	}
}

func TestDeadlines(t *testing.T) {
	l, _ := listen(t, Config{Port: "test", Limits: Limits{PerAddress: 10, MaxStartups: Startups{10, 30, 10},
		HandshakeTimeout: 50 * time.Millisecond, LoginGrace: 300 * time.Millisecond}})
	// Silent past the handshake timeout: the server's read times out.
	c := accepted(t, l, "127.0.0.1")
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want the handshake deadline", err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("handshake deadline hit after %v", d)
	}
	// Key exchange done: the login grace counts from accept.
	c = accepted(t, l, "127.0.0.1")
	c.KexDone()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want the login grace", err)
	}
	if d := time.Since(c.accepted); d < 300*time.Millisecond {
		t.Fatalf("login grace hit after %v", d)
	}
	// Authenticated: no deadline at all.
	c = accepted(t, l, "127.0.0.1")
	c.Authenticated()
	errc := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); errc <- err }()
	select {
	case err := <-errc:
		t.Fatalf("read after authentication: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	c.Close()
	<-errc
}

// emfile is a listener that fails with EMFILE n times, then accepts.
type emfile struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (e *emfile) Accept() (net.Conn, error) {
	e.mu.Lock()
	if e.n > 0 {
		e.n--
		e.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	e.mu.Unlock()
	return e.Listener.Accept()
}

func TestAcceptCarriesOnAfterEMFILE(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	l, err := Wrap(&emfile{Listener: ln, n: 7}, Config{Port: "test", Limits: Limits{PerAddress: 1, MaxStartups: Startups{1, 30, 1}},
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := dialFrom(t, l, "127.0.0.1")
	nc, err := l.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	nc.Close()
	if nc.RemoteAddr().String() != c.LocalAddr().String() {
		t.Fatalf("accepted %s", nc.RemoteAddr())
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	// 7 failures within about 0.6 s of back-off: one line, not seven.
	if n := strings.Count(out, "accept failed"); n != 1 || !strings.Contains(out, "too many open files") {
		t.Fatalf("logged %d lines for 7 EMFILE failures, want 1:\n%s", n, out)
	}

	// Closed while backing off: Accept returns at once.
	l2, err := Wrap(&emfile{Listener: ln, n: 1 << 30}, Config{Port: "test", Limits: Limits{PerAddress: 1, MaxStartups: Startups{1, 30, 1}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := l2.Accept(); errc <- err }()
	time.AfterFunc(100*time.Millisecond, func() { l2.Close() })
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept after close: %v", err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func TestAddrKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:22", "127.0.0.1"},
		{"[::ffff:10.0.0.1]:22", "10.0.0.1"},
		{"[2001:db8:1:2:3:4:5:6]:22", "2001:db8:1:2::"},
		{"[2001:db8:1:2:ffff::1]:22", "2001:db8:1:2::"},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := addrKey(a).String(); got != tc.want {
			t.Errorf("addrKey(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
