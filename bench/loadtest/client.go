package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
)

// mailbox routes mailed login codes to the login waiting for them, by
// address: an auth.Mailer for in-process gateways, fed by a mailpit
// poller for real ones.
type mailbox struct {
	mu      sync.Mutex
	codes   map[string][]string // address → codes, oldest first
	changed chan struct{}
	fail    atomic.Bool
}

func newMailbox() *mailbox {
	return &mailbox{codes: map[string][]string{}, changed: make(chan struct{})}
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// Send implements auth.Mailer.
func (m *mailbox) Send(_ context.Context, msg auth.Message) error {
	if m.fail.Load() {
		return errors.New("connection refused")
	}
	m.add(msg.To, sixDigits.FindString(msg.Body))
	return nil
}

func (m *mailbox) add(to, code string) {
	to = strings.ToLower(to)
	m.mu.Lock()
	m.codes[to] = append(m.codes[to], code)
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

func (m *mailbox) count(to string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.codes[strings.ToLower(to)])
}

// wait returns the (n+1)-th code mailed to to.
func (m *mailbox) wait(to string, n int, timeout time.Duration) (string, error) {
	to = strings.ToLower(to)
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		m.mu.Lock()
		if c := m.codes[to]; len(c) > n {
			m.mu.Unlock()
			return c[n], nil
		}
		ch := m.changed
		m.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return "", fmt.Errorf("no code mailed to %s within %v", to, timeout)
		}
	}
}

// person is one load-test person: one per session, so that mail and store
// rows map to sessions by name.
type person struct {
	Name, Email string
	Signer      ssh.Signer
}

// plan is what one session does.
type plan struct {
	Index      int
	Person     person
	Host       string
	Passphrase string
	Kind       string // "cat" or "pty"
	Seed       uint64
	Rate       int           // cat: bytes per second pushed
	Duration   time.Duration // how long it pushes or types (0: until stop)
	Stop       <-chan struct{}
	Group      string // the fault run's group
}

// target is a gateway for clients.
type target struct {
	Addr    string
	HostKey ssh.PublicKey
	Mail    *mailbox
}

// liveCounter counts sessions held at once.
type liveCounter struct {
	mu         sync.Mutex
	live, peak int
}

func (l *liveCounter) add(d int) {
	l.mu.Lock()
	l.live += d
	l.peak = max(l.peak, l.live)
	l.mu.Unlock()
}

func (l *liveCounter) Peak() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peak
}

// SessionResult is one session: what its client did and saw, its store
// row and the check of its recording.
type SessionResult struct {
	Index    int     `json:"index"`
	Group    string  `json:"group,omitempty"`
	Person   string  `json:"person"`
	Host     string  `json:"host"`
	Kind     string  `json:"kind"`
	ID       string  `json:"id,omitempty"`
	LoginMS  int64   `json:"login_ms"`
	Seconds  float64 `json:"seconds"`
	Sent     int64   `json:"sent"`
	Received int64   `json:"received"`
	Commands int     `json:"commands,omitempty"`
	// Saw is how the session ended for the client: "exit 0", "login
	// refused: …", "connection lost: …".
	Saw    string `json:"saw"`
	Notice string `json:"notice,omitempty"` // the gateway's lines on stderr
	Err    string `json:"error,omitempty"`  // what went wrong client-side, if anything
	// The store row.
	State     string `json:"state,omitempty"`
	EndReason string `json:"end_reason,omitempty"`
	BytesIn   int64  `json:"bytes_in"`
	BytesOut  int64  `json:"bytes_out"`
	Recording string `json:"recording,omitempty"`
	// The recording against the client.
	Check Check `json:"check"`

	in, out Ref // what the client sent and received
}

func (r *SessionResult) fail(format string, args ...any) {
	if r.Err == "" {
		r.Err = fmt.Sprintf(format, args...)
	}
}

// login dials the gateway as rr+HOST with the person's key, answering the
// passphrase and the mailed code. The banner (a refusal's reason) is
// returned with the error.
func login(tg target, p plan) (*ssh.Client, error) {
	n := tg.Mail.count(p.Person.Email)
	var mu sync.Mutex
	var banner strings.Builder
	cfg := &ssh.ClientConfig{
		User: "rr+" + p.Host,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(p.Person.Signer),
			ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
				ans := make([]string, len(qs))
				for i, q := range qs {
					switch {
					case strings.HasPrefix(q, "Passphrase for"):
						ans[i] = p.Passphrase
					case strings.HasPrefix(q, "Code sent to"):
						code, err := tg.Mail.wait(p.Person.Email, n, 30*time.Second)
						if err != nil {
							return nil, err
						}
						n++
						ans[i] = code
					default:
						return nil, fmt.Errorf("unexpected prompt %q", q)
					}
				}
				return ans, nil
			})},
		HostKeyCallback: ssh.FixedHostKey(tg.HostKey),
		BannerCallback: func(m string) error {
			mu.Lock()
			banner.WriteString(m)
			mu.Unlock()
			return nil
		},
		Timeout: time.Minute,
	}
	nc, err := dialPerson(p.Index, tg.Addr, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, tg.Addr, cfg)
	if err != nil {
		nc.Close()
		mu.Lock()
		defer mu.Unlock()
		if b := strings.TrimSpace(banner.String()); b != "" {
			return nil, fmt.Errorf("%s (%v)", b, err)
		}
		return nil, err
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// runSession logs in and runs one session to its end.
func runSession(tg target, p plan, live *liveCounter) *SessionResult {
	r := &SessionResult{Index: p.Index, Group: p.Group, Person: p.Person.Name, Host: p.Host, Kind: p.Kind}
	r.in, r.out = Ref{Seed: p.Seed}, Ref{Seed: p.Seed}
	start := time.Now()
	c, err := login(tg, p)
	r.LoginMS = time.Since(start).Milliseconds()
	if err != nil {
		r.Saw = "login refused: " + err.Error()
		r.fail("login: %v", err)
		return r
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		r.Saw = "no session: " + err.Error()
		r.fail("session: %v", err)
		return r
	}
	defer s.Close()
	begin := time.Now()
	if p.Kind == "pty" {
		runPTY(s, p, r, live)
	} else {
		runCat(s, p, r, live)
	}
	r.Seconds = time.Since(begin).Seconds()
	return r
}

// stopped reports whether the session should end: its time is up or the
// run said stop.
func stopped(p plan, deadline time.Time) bool {
	select {
	case <-p.Stop:
		return true
	default:
	}
	return p.Duration > 0 && time.Now().After(deadline)
}

func describe(err error) string {
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return "exit 0"
	case errors.As(err, &ee):
		if ee.Signal() != "" {
			return "signal " + ee.Signal()
		}
		return fmt.Sprintf("exit %d", ee.ExitStatus())
	case errors.As(err, &missing):
		return "closed without an exit status"
	default:
		return "connection lost: " + err.Error()
	}
}

// runCat runs `cat`, pushes genStream(seed) at p.Rate and checks that
// what comes back is what went, as it comes.
func runCat(s *ssh.Session, p plan, r *SessionResult, live *liveCounter) {
	stdin, _ := s.StdinPipe()
	stdout, _ := s.StdoutPipe()
	errb := newWatchBuffer()
	s.Stderr = errb
	if err := s.Start("cat"); err != nil {
		r.Saw = "refused: " + err.Error()
		r.fail("start: %v", err)
		return
	}
	live.add(1)
	defer live.add(-1)
	recv := NewMatcher(Ref{Seed: p.Seed, Len: 1 << 62})
	readDone := make(chan struct{})
	go func() {
		io.Copy(recv, stdout)
		close(readDone)
	}()
	dead := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = s.Wait()
		close(dead)
	}()
	deadline := time.Now().Add(p.Duration)
	rng := rand.New(rand.NewPCG(p.Seed, 2))
	send := genStream(p.Seed)
	avg := max(p.Rate/5, 1) // five chunks a second
	buf := make([]byte, 2*avg)
	for !stopped(p, deadline) {
		k := 1 + rng.IntN(2*avg)
		io.ReadFull(send, buf[:k])
		n, err := stdin.Write(buf[:k])
		r.Sent += int64(n)
		if err != nil {
			break
		}
		pause := time.Duration(100+rng.IntN(200)) * time.Millisecond
		select {
		case <-time.After(pause):
		case <-p.Stop:
		case <-dead:
		}
		select {
		case <-dead:
		default:
			continue
		}
		break
	}
	stdin.Close() // EOF: cat exits
	select {
	case <-dead:
	case <-time.After(time.Minute):
		r.fail("cat did not end within a minute of EOF")
		s.Close()
		<-dead
	}
	select {
	case <-readDone:
	case <-time.After(10 * time.Second):
		r.fail("stdout did not reach EOF")
	}
	r.Saw = describe(waitErr)
	r.Notice = strings.TrimSpace(string(errb.Bytes()))
	r.Received = recv.N
	if recv.Common != recv.N {
		r.fail("received bytes differ from those sent at offset %d", recv.Common)
	}
	if r.Received > r.Sent {
		r.fail("received %d bytes, more than the %d sent", r.Received, r.Sent)
	}
	r.in.Len, r.out.Len = r.Sent, r.Received
	if waitErr == nil && r.Received != r.Sent {
		r.fail("cat exited 0 but echoed %d of %d bytes", r.Received, r.Sent)
	}
}

// ptyCommand is one line typed at the shell: text, and whether to
// interrupt it with ^C.
func ptyCommand(rng *rand.Rand, k int) (string, bool) {
	switch rng.IntN(10) {
	case 0, 1:
		return fmt.Sprintf("echo \"typing é ü ✓ %d\"", k*7), false
	case 2, 3:
		return fmt.Sprintf("seq 1 %d", 1+rng.IntN(2000)), false
	case 4, 5:
		return `printf 'tab\there\001\377\376 not UTF-8 \342\202\254 bell\007\n'`, false
	case 6:
		return fmt.Sprintf("head -c %d /dev/urandom", 64+rng.IntN(1024)), false
	case 7:
		return "sleep 5", true
	case 8:
		return "yes rr-load | head -n 300", false
	default:
		return "ls -la / | head -n 20", false
	}
}

// runPTY types commands at a shell on a terminal, waiting for each to
// finish (a marker only its output holds), then types exit.
func runPTY(s *ssh.Session, p plan, r *SessionResult, live *liveCounter) {
	if err := s.RequestPty("xterm", 40, 120, ssh.TerminalModes{}); err != nil {
		r.Saw = "pty refused: " + err.Error()
		r.fail("pty-req: %v", err)
		return
	}
	stdin, _ := s.StdinPipe()
	out, errb := newWatchBuffer(), newWatchBuffer()
	s.Stdout, s.Stderr = out, errb
	if err := s.Shell(); err != nil {
		r.Saw = "refused: " + err.Error()
		r.fail("shell: %v", err)
		return
	}
	live.add(1)
	defer live.add(-1)
	dead := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = s.Wait()
		close(dead)
	}()
	var sent []byte
	write := func(b string) bool {
		n, err := io.WriteString(stdin, b)
		sent = append(sent, b[:n]...)
		return err == nil
	}
	deadline := time.Now().Add(p.Duration)
	rng := rand.New(rand.NewPCG(p.Seed, 3))
	mark := 0
	alive := true
	for k := 0; alive && !stopped(p, deadline); k++ {
		cmd, interrupt := ptyCommand(rng, k)
		if interrupt {
			// ^C once it runs (if it lands before, the sleep just ends).
			if !write(fmt.Sprintf("echo \"S$((%d+1))S\"; %s\r", k, cmd)) {
				break
			}
			if end := out.waitFor(fmt.Sprintf("S%dS", k+1), mark, time.Minute, dead); end > 0 {
				mark = end
			}
			time.Sleep(200 * time.Millisecond)
			if !write("\x03") {
				break
			}
			cmd = "true"
		}
		if k == 3 {
			s.WindowChange(50, 132)
		}
		if !write(fmt.Sprintf("%s; echo \"@@$((%d+1))@\"\r", cmd, k)) {
			break
		}
		end := out.waitFor(fmt.Sprintf("@@%d@", k+1), mark, time.Minute, dead)
		if end < 0 {
			select {
			case <-dead:
			default:
				r.fail("command %d (%q) did not finish in a minute", k, cmd)
			}
			alive = false
			break
		}
		mark = end
		r.Commands++
		select {
		case <-time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond):
		case <-p.Stop:
		case <-dead:
			alive = false
		}
	}
	if alive {
		write("exit\r")
	}
	select {
	case <-dead:
	case <-time.After(time.Minute):
		r.fail("the shell did not exit within a minute")
		s.Close()
		<-dead
	}
	r.Saw = describe(waitErr)
	r.Notice = strings.TrimSpace(string(errb.Bytes()))
	got := out.Bytes()
	r.Sent, r.Received = int64(len(sent)), int64(len(got))
	r.in = Ref{Bytes: sent, Len: int64(len(sent))}
	r.out = Ref{Bytes: got, Len: int64(len(got))}
}
