package prelogin

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Startups is sshd's MaxStartups start:rate:full: from Start connections
// not yet authenticated on, a new one is dropped with a chance of Rate
// percent, growing linearly to 100 % at Full.
type Startups struct{ Start, Rate, Full int }

// ParseStartups reads "start:rate:full" or a single "full".
func ParseStartups(s string) (Startups, error) {
	parts := strings.Split(s, ":")
	var n []int
	for _, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 0 {
			return Startups{}, fmt.Errorf("max_startups %q: want start:rate:full or full, whole numbers", s)
		}
		n = append(n, v)
	}
	var st Startups
	switch len(n) {
	case 1:
		st = Startups{Start: n[0], Rate: 100, Full: n[0]}
	case 3:
		st = Startups{Start: n[0], Rate: n[1], Full: n[2]}
	default:
		return Startups{}, fmt.Errorf("max_startups %q: want start:rate:full or full", s)
	}
	return st, st.check()
}

func (s Startups) check() error {
	if s.Full < 1 || s.Start > s.Full || s.Rate > 100 {
		return fmt.Errorf("max_startups %s: want 0 <= start <= full, full >= 1, rate <= 100", s)
	}
	return nil
}

func (s Startups) String() string { return fmt.Sprintf("%d:%d:%d", s.Start, s.Rate, s.Full) }

// dropChance is the percent chance that a new connection is dropped when
// n are already waiting to authenticate (sshd's formula).
func (s Startups) dropChance(n int) int {
	switch {
	case n >= s.Full:
		return 100
	case n < s.Start:
		return 0
	}
	return s.Rate + (100-s.Rate)*(n-s.Start)/(s.Full-s.Start)
}

// Limits are one port's bounds; the zero value of a field takes its
// default from the Config that holds them.
type Limits struct {
	// PerAddress caps the connections one address (IPv4) or /64 (IPv6)
	// holds unauthenticated.
	PerAddress int
	// MaxStartups caps them all, with random early drop.
	MaxStartups Startups
	// HandshakeTimeout bounds the version exchange and key exchange,
	// from accept; 0: no deadline (an HTTP server sets its own).
	HandshakeTimeout time.Duration
	// LoginGrace bounds authentication, from accept; 0: no deadline.
	LoginGrace time.Duration
}

// Refusal reasons, as counted and logged.
const (
	PerAddress = "per_address" // the address holds PerAddress already
	EarlyDrop  = "early_drop"  // dropped at random between start and full
	Full       = "full"        // full connections wait already
)

// Config configures a Listener.
type Config struct {
	Limits
	// Port names the listener in logs ("people", "agents", "http").
	Port   string
	Logger *slog.Logger
	// Refused, if set, is called for each refused connection with its
	// reason (PerAddress, EarlyDrop, Full); it must not block.
	Refused func(reason string)
}

// Listener is a net.Listener that refuses connections past its Limits and
// returns each one it accepts as a *Conn.
type Listener struct {
	net.Listener
	cfg  Config
	log  *slog.Logger
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	pending int                // connections not yet authenticated
	byAddr  map[netip.Addr]int // the same, by address (/64 for IPv6)
	refused map[string]int     // refusals since the last log line
	lastLog time.Time          // of refusals
	errs    rateLog            // accept errors
}

// Wrap returns ln bounded by cfg. PerAddress and MaxStartups must be set
// (see Limits); Logger defaults to slog.Default().
func Wrap(ln net.Listener, cfg Config) (*Listener, error) {
	if cfg.PerAddress < 1 {
		return nil, fmt.Errorf("prelogin %s: per_address %d: want at least 1", cfg.Port, cfg.PerAddress)
	}
	if err := cfg.MaxStartups.check(); err != nil {
		return nil, fmt.Errorf("prelogin %s: %w", cfg.Port, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Listener{Listener: ln, cfg: cfg, log: cfg.Logger.With("port", cfg.Port),
		done: make(chan struct{}), byAddr: map[netip.Addr]int{}, refused: map[string]int{}}, nil
}

// Close closes the listener; a pending Accept returns net.ErrClosed.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Pending is the number of connections accepted and not yet authenticated
// or closed.
func (l *Listener) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending
}

// Accept is AcceptConn for a net.Listener's users (an http.Server).
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptConn()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptConn waits for a connection within the limits. It returns an
// error only when the listener is closed: any other error is logged and
// waited out with back-off (5 ms doubling to 1 s), so that running out of
// file descriptors for a while does not end the port.
func (l *Listener) AcceptConn() (*Conn, error) {
	var delay time.Duration
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			if n, ok := l.errs.due(time.Now()); ok {
				l.log.Warn("accept failed; retrying", "err", err, "failures", n, "delay", delay)
			}
			t := time.NewTimer(delay)
			select {
			case <-l.done:
				t.Stop()
				return nil, net.ErrClosed
			case <-t.C:
			}
			continue
		}
		delay = 0
		if c := l.admit(nc); c != nil {
			return c, nil
		}
	}
}

// admit returns nc as a *Conn holding a slot, or closes it and returns nil.
func (l *Listener) admit(nc net.Conn) *Conn {
	key := addrKey(nc.RemoteAddr())
	now := time.Now()
	l.mu.Lock()
	reason := ""
	switch {
	case l.byAddr[key] >= l.cfg.PerAddress:
		reason = PerAddress
	case l.pending >= l.cfg.MaxStartups.Full:
		reason = Full
	case rand.IntN(100) < l.cfg.MaxStartups.dropChance(l.pending):
		reason = EarlyDrop
	}
	if reason != "" {
		l.refused[reason]++
		var counts map[string]int
		if now.Sub(l.lastLog) >= time.Second {
			counts, l.refused, l.lastLog = l.refused, map[string]int{}, now
		}
		pending := l.pending
		l.mu.Unlock()
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST: keep no TIME_WAIT for a stranger
		}
		if l.cfg.Refused != nil {
			l.cfg.Refused(reason)
		}
		nc.Close()
		if counts != nil {
			args := []any{"pending", pending, "per_address", l.cfg.PerAddress, "max_startups", l.cfg.MaxStartups.String()}
			for _, r := range []string{PerAddress, EarlyDrop, Full} {
				if counts[r] > 0 {
					args = append(args, r, counts[r])
				}
			}
			l.log.Warn("unauthenticated connections refused (counts since the last such line)", args...)
		}
		return nil
	}
	l.pending++
	l.byAddr[key]++
	l.mu.Unlock()
	c := &Conn{Conn: nc, l: l, key: key, accepted: now}
	if d := l.cfg.HandshakeTimeout; d > 0 {
		nc.SetDeadline(now.Add(d))
	} else if d := l.cfg.LoginGrace; d > 0 {
		nc.SetDeadline(now.Add(d))
	}
	return c
}

func (l *Listener) release(key netip.Addr) {
	l.mu.Lock()
	l.pending--
	if l.byAddr[key]--; l.byAddr[key] <= 0 {
		delete(l.byAddr, key)
	}
	l.mu.Unlock()
}

// addrKey is what the per-address cap counts: the IPv4 address, or the
// IPv6 /64 (one machine commonly holds a whole /64).
func addrKey(a net.Addr) netip.Addr {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// Conn is a connection accepted by a Listener. It holds one of the
// listener's slots until Authenticated or Close.
type Conn struct {
	net.Conn
	l        *Listener
	key      netip.Addr
	accepted time.Time
	released atomic.Bool
}

// KexDone moves the deadline from the handshake's to the login grace's
// (counted from accept): the key exchange is over, authentication starts.
func (c *Conn) KexDone() {
	if d := c.l.cfg.LoginGrace; d > 0 && !c.released.Load() {
		c.Conn.SetDeadline(c.accepted.Add(d))
	}
}

// Extend moves the deadline to d from now, while the connection is still
// unauthenticated: for the factors asked once identity is proven.
func (c *Conn) Extend(d time.Duration) {
	if d > 0 && !c.released.Load() {
		c.Conn.SetDeadline(time.Now().Add(d))
	}
}

// Authenticated gives the connection's slot back and lifts its deadline.
func (c *Conn) Authenticated() {
	if c.released.CompareAndSwap(false, true) {
		c.Conn.SetDeadline(time.Time{})
		c.l.release(c.key)
	}
}

// Close closes the connection and gives its slot back if it still held one.
func (c *Conn) Close() error {
	if c.released.CompareAndSwap(false, true) {
		c.l.release(c.key)
	}
	return c.Conn.Close()
}

// rateLog lets one line through at most once a second and counts the
// events in between.
type rateLog struct {
	mu   sync.Mutex
	last time.Time
	n    int
}

// due counts an event and reports whether to log it, with the events
// counted since the last line (this one included).
func (r *rateLog) due(now time.Time) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if now.Sub(r.last) < time.Second {
		return 0, false
	}
	n := r.n
	r.n, r.last = 0, now
	return n, true
}
