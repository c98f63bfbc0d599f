package gateway_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/internal/prelogin"
)

// dialFrom opens a TCP connection to addr from the loopback address from
// (all of 127.0.0.0/8 is loopback on Linux), closed when the test ends.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// junkFrom opens a silent TCP connection to addr from from, or returns
// nil if the gateway refused it before the dial returned (on loopback its
// reset can come first).
func junkFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// loginFrom logs in as user from the loopback address from and returns
// the client and how long the login took.
func (e *env) loginFrom(t *testing.T, from, user string, auths ...ssh.AuthMethod) (*ssh.Client, time.Duration, error) {
	t.Helper()
	start := time.Now()
	nc := dialFrom(t, from, e.gw.PeopleAddr)
	if len(auths) == 0 {
		auths = []ssh.AuthMethod{ssh.PublicKeys(e.alice.Signer),
			gatewaytest.Answers(t, e.gw.Outbox, map[string]string{"Passphrase for web-01": "pp-web-01"})}
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, e.gw.PeopleAddr, &ssh.ClientConfig{User: user, Auth: auths,
		HostKeyCallback: ssh.FixedHostKey(e.gw.HostKey.PublicKey())})
	if err != nil {
		return nil, time.Since(start), err
	}
	c := ssh.NewClient(sc, chans, reqs)
	t.Cleanup(func() { c.Close() })
	return c, time.Since(start), nil
}

// closedBy reports how many of conns the other side has closed by the
// time given, the rest being still open then.
func closedBy(conns []net.Conn, by time.Time) int {
	n := 0
	for _, c := range conns {
		if c == nil {
			n++ // refused before the dial returned
			continue
		}
		c.SetReadDeadline(by)
		if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			n++
		}
	}
	return n
}

func refusedCount(t *testing.T, reg *prometheus.Registry, port, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "rr_connections_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["port"] == port && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestFloodFromOneAddress: silent connections from one address hold at
// most per_address slots of the people's port (the rest are closed at
// once and counted), a person at another address still logs in at once,
// and a flood of the agents' port leaves the people's port alone.
func TestFloodFromOneAddress(t *testing.T) {
	m := gateway.NewMetrics()
	e := newEnv(t, gateway.Config{Metrics: m,
		AgentLimits: prelogin.Limits{PerAddress: 3}})
	reg := prometheus.NewRegistry()
	if err := e.gw.Srv.Register(reg); err != nil {
		t.Fatal(err)
	}
	const flood = 300
	per := gateway.DefaultPeopleLimits.PerAddress
	var junk []net.Conn
	for range flood {
		junk = append(junk, junkFrom(t, "127.0.0.1", e.gw.PeopleAddr))
	}
	// The agents' port, flooded from the address the person comes from.
	var agentJunk []net.Conn
	for range 10 {
		agentJunk = append(agentJunk, junkFrom(t, "127.0.0.3", e.gw.AgentAddr))
	}

	// Queued behind the whole flood, from another address.
	c, took, err := e.loginFrom(t, "127.0.0.2", "rr+web-01")
	if err != nil {
		t.Fatalf("login during the flood: %v", err)
	}
	t.Logf("login from 127.0.0.2 behind %d junk connections: %v", flood, took)
	if took > time.Second {
		t.Errorf("login took %v behind the flood, want under 1 s", took)
	}
	if out, _, err := run(t, c, "echo hi", nil); err != nil || out != "hi\n" {
		t.Fatalf("session during the flood: %q, %v", out, err)
	}
	// From the address whose agents' port is full: the people's is not.
	if _, _, err := e.loginFrom(t, "127.0.0.3", "rr+web-01"); err != nil {
		t.Fatalf("login from an address flooding the agents' port: %v", err)
	}

	by := time.Now().Add(time.Second)
	if got := closedBy(junk, by); got != flood-per {
		t.Errorf("the gateway closed %d of %d junk connections from one address, want all but per_address (%d)", got, flood, per)
	}
	if got := closedBy(agentJunk, by); got != 10-3 {
		t.Errorf("the gateway closed %d of 10 junk connections on the agents' port, want 7", got)
	}
	if got := refusedCount(t, reg, "people", prelogin.PerAddress); got != float64(flood-per) {
		t.Errorf("rr_connections_refused_total{people,per_address} = %v, want %d", got, flood-per)
	}
	if got := refusedCount(t, reg, "agents", prelogin.PerAddress); got != 10-3 {
		t.Errorf("rr_connections_refused_total{agents,per_address} = %v, want 7", got)
	}
}

// TestHandshakeDeadline: a client that sends nothing, or its version and
// then nothing, is closed after the handshake timeout, long before the
// login grace.
func TestHandshakeDeadline(t *testing.T) {
	e := newEnv(t, gateway.Config{LoginGraceTime: time.Minute,
		PeopleLimits: prelogin.Limits{HandshakeTimeout: 200 * time.Millisecond}})
	silent := dialFrom(t, "127.0.0.1", e.gw.PeopleAddr)
	version := dialFrom(t, "127.0.0.1", e.gw.PeopleAddr)
	io.WriteString(version, "SSH-2.0-OpenSSH_9.2\r\n")
	start := time.Now()
	for name, c := range map[string]net.Conn{"silent": silent, "version only": version} {
		c.SetReadDeadline(start.Add(5 * time.Second))
		_, err := io.Copy(io.Discard, c) // the server's version, its kexinit, then the close
		if err != nil {
			t.Errorf("%s client: %v, want closed by the gateway within 5 s", name, err)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v, want about 200 ms", d)
	}
}

// TestLoginGraceExtendedOnceIdentityProven: the login grace bounds
// proving who one is; once the key or password has passed, an rr+HOST
// login has PromptGraceTime for its passphrase and code. Before that it
// has not.
func TestLoginGraceExtendedOnceIdentityProven(t *testing.T) {
	e := newEnv(t, gateway.Config{LoginGraceTime: time.Second, PromptGraceTime: time.Minute})
	e.gw.AddPerson("bob", "advanced", "bob@example.com", "bob-password")
	e.gw.AddTeam("bob_RR", true, []string{"bob"}, "web-01")
	// slowOn answers as its person would, taking 1.5 s (past the login
	// grace) at the prompt that starts with slow.
	slowOn := func(slow string) ssh.AuthMethod {
		mailed := e.gw.Outbox.Count()
		return ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
			out := make([]string, len(qs))
			for i, q := range qs {
				if strings.HasPrefix(q, slow) {
					time.Sleep(1500 * time.Millisecond) // a person typing, not a wait for an event
				}
				switch {
				case strings.HasPrefix(q, "Username"):
					out[i] = "bob"
				case strings.HasPrefix(q, "Password"):
					out[i] = "bob-password"
				case strings.HasPrefix(q, "Passphrase for web-01"):
					out[i] = "pp-web-01"
				case strings.HasPrefix(q, "Code sent to"):
					code, err := e.gw.Outbox.CodeAfter(mailed)
					if err != nil {
						return nil, err
					}
					mailed++
					out[i] = code
				}
			}
			return out, nil
		})
	}
	for _, tc := range []struct {
		name  string
		auths []ssh.AuthMethod
		ok    bool
	}{
		{"key, then a slow passphrase", []ssh.AuthMethod{ssh.PublicKeys(e.alice.Signer), slowOn("Passphrase")}, true},
		{"password, then a slow passphrase", []ssh.AuthMethod{slowOn("Passphrase")}, true},
		{"a slow password", []ssh.AuthMethod{slowOn("Password")}, false},
	} {
		c, took, err := e.loginFrom(t, "127.0.0.1", "rr+web-01", tc.auths...)
		if tc.ok && err != nil {
			t.Errorf("%s: login failed after %v: %v", tc.name, took, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("%s: logged in after %v, past the 1 s login grace", tc.name, took)
		}
		if c != nil {
			c.Close()
		}
	}
}

// TestUnusedConnectionClosed: a person's connection that never opens a
// channel is closed after the login grace; one whose sessions have ended,
// after UnusedConnectionTimeout; never while a session runs. Agents'
// tunnels, which have no channel most of the time, stay.
func TestUnusedConnectionClosed(t *testing.T) {
	e := newEnv(t, gateway.Config{LoginGraceTime: 2 * time.Second, UnusedConnectionTimeout: 300 * time.Millisecond})
	waitClosed := func(what string, c *ssh.Client, within time.Duration) {
		t.Helper()
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(within):
			t.Fatalf("%s: still open after %v", what, within)
		}
	}
	// ssh -N: logs in, opens nothing.
	start := time.Now()
	c := e.dial(t, "rr", e.alice.Signer)
	waitClosed("no channel ever", c, 10*time.Second)
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("a connection with no channel was closed after %v, before the 2 s login grace", d)
	}

	// A session longer than the login grace and the idle time runs to
	// its end; the connection closes after it.
	c = e.dial(t, "rr+web-01", e.alice.Signer)
	out, _, err := run(t, c, "sleep 2.5; echo done", nil)
	if err != nil || out != "done\n" {
		t.Fatalf("session: %q, %v", out, err)
	}
	ended := time.Now()
	waitClosed("sessions ended", c, 5*time.Second)
	t.Logf("closed %v after its last session ended", time.Since(ended))
	if !e.gw.Srv.Online("web-01") {
		t.Error("the agent's tunnel was closed")
	}
}

// TestUnusedConnectionKeptWhenOff: with UnusedConnectionTimeout 0 (the
// gateway's zero value), a connection without a channel stays.
func TestUnusedConnectionKeptWhenOff(t *testing.T) {
	e := newEnv(t, gateway.Config{LoginGraceTime: 200 * time.Millisecond})
	c := e.dial(t, "rr", e.alice.Signer)
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	select {
	case <-done:
		t.Fatal("closed with unused_connection_timeout off")
	case <-time.After(time.Second):
	}
	c.Close()
	<-done
}

// TestProtocolBreakLoggedAsWarning: a client that breaks the login
// protocol is logged at warning level, where operators look.
func TestProtocolBreakLoggedAsWarning(t *testing.T) {
	var logs syncBuffer
	e := newEnv(t, gateway.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := dialFrom(t, "127.0.0.1", e.gw.PeopleAddr)
	// A version, then a packet claiming to be 1 GiB long.
	io.WriteString(c, "SSH-2.0-scanner\r\n\x40\x00\x00\x00junkjunkjunkjunk")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("the gateway did not close the connection: %v", err)
	}
	waitFor(t, &logs, "client broke the login protocol")
	if !strings.Contains(logs.String(), `level=WARN msg="client broke the login protocol"`) {
		t.Fatalf("not a warning:\n%s", logs.String())
	}
}
