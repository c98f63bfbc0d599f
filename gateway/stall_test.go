package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/admin"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/wire"
)

// The bridge must keep seeing kills, timeouts and shutdowns whatever the
// person or the host does: a request nobody answers, a person who stopped
// reading, a host side that never answers the start.

// onlySession returns the one session row, and waits (up to 15 s) for it
// to leave the live state when ended is true.
func onlySession(t *testing.T, e *env, ended bool) store.Session {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		rows, err := e.gw.Store.Sessions(context.Background(), store.SessionFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 1 && (!ended || rows[0].State != store.StateLive) {
			return rows[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s: %+v (want one session, ended: %v)", rows, ended)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// notReading starts cmd on web-01 and never reads its output.
func notReading(t *testing.T, e *env, cmd string) *ssh.Client {
	t.Helper()
	c := e.dial(t, "rr+web-01", e.alice.Signer)
	s := newSession(t, c)
	if _, err := s.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StderrPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(cmd); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRequestWantingAReply: a window-change that asks for a reply is
// answered, and does not stop the idle timeout from ending the session.
func TestRequestWantingAReply(t *testing.T) {
	e := newEnv(t, gateway.Config{IdleTimeout: time.Second})
	s, _, _ := startCommand(t, e.dial(t, "rr+web-01", e.alice.Signer), "echo started; sleep 30")
	ok, err := s.SendRequest(wire.ReqWindowChange, true, ssh.Marshal(&wire.WindowChange{Columns: 100, Rows: 40}))
	if err != nil || !ok {
		t.Errorf("window-change wanting a reply: %v, %v", ok, err)
	}
	if row := onlySession(t, e, true); row.EndReason != "the session was idle too long; closed" {
		t.Errorf("ended %q, want the idle timeout", row.EndReason)
	}
}

// TestStalledPersonIsKilledAfterTheHostExits: the host wrote more than
// the person's window and exits; the person reads nothing. A kill still
// ends the session, at once: killed, or, if the host's exit came first,
// as the host said (exit 7), the kill told it came second.
func TestStalledPersonIsKilledAfterTheHostExits(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	notReading(t, e, "head -c 3000000 /dev/zero; exit 7")
	row := onlySession(t, e, false)
	time.Sleep(500 * time.Millisecond) // the host is done, or nearly; its output waits
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := e.gw.Srv.Kill(ctx, row.ID, "bob", "stuck")
	row = onlySession(t, e, true)
	switch {
	case err == nil && row.State == store.StateKilled:
	case errors.Is(err, admin.ErrEndedFirst) && row.State == store.StateClosed && row.EndReason == "exit 7":
	default:
		t.Errorf("kill: %v, row %+v; want it killed, or closed with exit 7 and the kill told so", err, row)
	}
}

// TestStalledPersonTimesOut: the host keeps writing, the person reads
// nothing: the idle timeout ends the session, though the notice cannot
// reach them.
func TestStalledPersonTimesOut(t *testing.T) {
	e := newEnv(t, gateway.Config{IdleTimeout: time.Second})
	notReading(t, e, "head -c 50000000 /dev/zero; sleep 30")
	if row := onlySession(t, e, true); row.EndReason != "the session was idle too long; closed" {
		t.Errorf("ended %q, want the idle timeout", row.EndReason)
	}
}

// TestShutdownWithAStalledPerson: Shutdown keeps to its deadline when a
// person has stopped reading.
func TestShutdownWithAStalledPerson(t *testing.T) {
	e := newEnv(t, gateway.Config{ShutdownGrace: 500 * time.Millisecond})
	notReading(t, e, "head -c 50000000 /dev/zero; sleep 30")
	onlySession(t, e, false)
	time.Sleep(time.Second) // the person's window fills
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.gw.Srv.Shutdown(ctx) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Shutdown did not return within 15 s of a 10 s deadline")
	}
	if row := onlySession(t, e, true); row.EndReason != "the gateway shut down; session closed" {
		t.Errorf("ended %q, want the shutdown", row.EndReason)
	}
}

// silentHost is an agent for host that accepts session channels and never
// answers a request on them.
func silentHost(t *testing.T, e *env, host string) {
	t.Helper()
	key := e.gw.AddHost(host)
	nc, err := net.Dial("tcp", e.gw.AgentAddr)
	if err != nil {
		t.Fatal(err)
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, e.gw.AgentAddr, &ssh.ClientConfig{User: host,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(key.Signer)}, HostKeyCallback: ssh.FixedHostKey(e.gw.HostKey.PublicKey())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		for r := range reqs {
			if r.WantReply {
				r.Reply(true, nil)
			}
		}
	}()
	go func() {
		for nch := range chans {
			_, creqs, err := nch.Accept()
			if err != nil {
				continue
			}
			go func() {
				for range creqs { // never answered
				}
			}()
		}
	}()
	e.gw.WaitOnline(host)
}

// TestHostThatNeverStarts: while the host side has not answered the start
// of the session, the session is live and a kill ends it.
func TestHostThatNeverStarts(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	silentHost(t, e, "web-02")
	c, err := ssh.Dial("tcp", e.gw.PeopleAddr, &ssh.ClientConfig{User: "rr+web-02",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(e.alice.Signer),
			gatewaytest.Answers(t, e.gw.Outbox, map[string]string{"Passphrase for web-02": "pp-web-02"})},
		HostKeyCallback: ssh.FixedHostKey(e.gw.HostKey.PublicKey()), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run("true") }()
	row := onlySession(t, e, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.gw.Srv.Kill(ctx, row.ID, "bob", "stuck"); err != nil {
		t.Fatalf("kill while the host side starts: %v", err)
	}
	if row = onlySession(t, e, true); row.State != store.StateKilled || row.EndReason != "killed by bob: stuck" {
		t.Errorf("row %+v, want killed by bob", row)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("the person's session did not end")
	}
}

// TestMetricsCountSessions: an ended session is counted by its state, its
// bytes by direction.
func TestMetricsCountSessions(t *testing.T) {
	m := gateway.NewMetrics()
	e := newEnv(t, gateway.Config{Metrics: m})
	reg := prometheus.NewRegistry()
	if err := e.gw.Srv.Register(reg); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(t, e.dial(t, "rr+web-01", e.alice.Signer), "echo hello", nil); err != nil || out != "hello\n" {
		t.Fatalf("session: %q %v", out, err)
	}
	onlySession(t, e, true)
	want := `
# HELP rr_sessions_ended_total Sessions finalized, by the state their row ended in (closed, killed).
# TYPE rr_sessions_ended_total counter
rr_sessions_ended_total{state="closed"} 1
# HELP rr_session_bytes_total Bytes relayed and recorded by ended sessions: in (person to host), out (host to person).
# TYPE rr_session_bytes_total counter
rr_session_bytes_total{direction="in"} 0
rr_session_bytes_total{direction="out"} 6
`
	// Counted just after the row is final: look again for a moment.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rr_sessions_ended_total", "rr_session_bytes_total")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

// TestPromptsGoToStderr: the passphrase asked on the session's terminal
// is on stderr, so output redirected on the person's side (ssh -t … >
// file) neither hides it nor holds it.
func TestPromptsGoToStderr(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c := e.dial(t, "rr", e.alice.Signer)
	s := newSession(t, c)
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	stdin, _ := s.StdinPipe()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	s.Stdout, s.Stderr = stdout, stderr
	n := e.gw.Outbox.Count()
	if err := s.Start("web-01 -- echo the-$((6*7))"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, stderr, "Passphrase for web-01: ")
	io.WriteString(stdin, "pp-web-01\r")
	waitFor(t, stderr, "Code sent to ")
	code, err := e.gw.Outbox.CodeAfter(n)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, code+"\r")
	waitFor(t, stdout, "the-42")
	s.Wait()
	if strings.Contains(stdout.String(), "Passphrase") || strings.Contains(stdout.String(), "Code sent") {
		t.Fatalf("a prompt went to stdout: %q", stdout.String())
	}
}

// TestSetupIsBounded: a connection runs at most 10 session channels; a
// channel that starts nothing ends after the login grace time, a menu
// nobody answers after the prompt grace time.
func TestSetupIsBounded(t *testing.T) {
	e := newEnv(t, gateway.Config{LoginGraceTime: time.Second, PromptGraceTime: time.Second})
	c := e.dial(t, "rr", e.alice.Signer)
	var chans []ssh.Channel
	for i := range 11 {
		ch, reqs, err := c.OpenChannel("session", nil)
		if i == 10 {
			if err == nil {
				t.Fatal("an 11th session channel was accepted")
			}
			break
		}
		if err != nil {
			t.Fatalf("channel %d: %v", i, err)
		}
		go ssh.DiscardRequests(reqs)
		chans = append(chans, ch)
	}
	// None of them started anything: all are closed within the grace time.
	for i, ch := range chans {
		done := make(chan struct{})
		go func() { io.Copy(io.Discard, ch); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("channel %d still open 10 s after a 1 s grace time", i)
		}
	}
	// The menu, unanswered.
	s, _, out := ptyShell(t, c, "xterm", 24, 80)
	waitFor(t, out, "Host (number or name")
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the menu waited more than 10 s with a 1 s grace time")
	}
}

// slowRecorders starts no recording until its session is cancelled.
type slowRecorders struct{ starting chan struct{} }

func (r slowRecorders) Start(ctx context.Context, _ gateway.SessionInfo) (gateway.SessionRecorder, error) {
	close(r.starting)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestKilledWhileTheRecordingStarts: a session killed before its
// recording has started ends at once, and the person is told who ended it
// (exit status 1), as when it is killed while the host side starts.
func TestKilledWhileTheRecordingStarts(t *testing.T) {
	rec := slowRecorders{starting: make(chan struct{})}
	e := newEnv(t, gateway.Config{Recorders: rec})
	c := e.dialB(t, "rr+web-01")
	s := newSession(t, c)
	var out strings.Builder
	s.Stdout, s.Stderr = &out, &out
	done := make(chan error, 1)
	go func() { done <- s.Run("true") }()
	<-rec.starting
	row := onlySession(t, e, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.gw.Srv.Kill(ctx, row.ID, "bob", "stuck"); err != nil {
		t.Fatalf("kill while the recording starts: %v", err)
	}
	select {
	case err := <-done:
		var exit *ssh.ExitError
		if !errors.As(err, &exit) || exit.ExitStatus() != 1 || !strings.Contains(out.String(), "Session closed by bob: stuck") {
			t.Errorf("the person saw %q, %v; want exit status 1 and who ended it", out.String(), err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the person's session did not end")
	}
	if row = onlySession(t, e, true); row.State != store.StateKilled || row.EndReason != "killed by bob: stuck" {
		t.Errorf("row %+v, want killed by bob", row)
	}
}

// TestRefusedReadsAreSummedUpPerConnection: a connection's first 20
// refused recording reads are audited one by one, and the rest in one row
// when it ends, however many channels ask.
func TestRefusedReadsAreSummedUpPerConnection(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c := e.dialB(t, "rr")
	for ch := range 3 {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for i := range 10 {
			names = append(names, fmt.Sprintf("recordings/%015x%d.gz", ch, i))
		}
		s.Stdin = bytes.NewReader(make([]byte, 64)) // scp's "go on" answers
		if err := s.Run("scp -f " + strings.Join(names, " ")); err == nil {
			t.Fatal("scp -f of recordings that are not there succeeded")
		}
	}
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := e.gw.Store.AuditEvents(context.Background(), store.AuditFilter{Action: "recording.download"})
		if err != nil {
			t.Fatal(err)
		}
		listed, summed := gatewaytest.RefusedReads(evs, "recordings/")
		if listed == 20 && summed != "" {
			if !strings.HasPrefix(summed, "10 more refused reads on this connection") {
				t.Fatalf("summed up as %q, want the 10 past the 20th", summed)
			}
			return
		}
		if listed > 20 || time.Now().After(deadline) {
			t.Fatalf("30 refused reads on 3 channels of one connection: %d audited one by one, summed up as %q; want 20 and one row for the rest", listed, summed)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRepeatedDownloadsAreSummedUp: the same recording fetched again and
// again on one connection is audited once, and the repeats in one row when
// the connection ends.
func TestRepeatedDownloadsAreSummedUp(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	ctx := context.Background()
	id := recordedSession(t, e)
	c := e.dialB(t, "rr")
	cl, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	for range 25 {
		f, err := cl.Open("recordings/" + id + ".gz")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	cl.Close()
	c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		evs, _ := e.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: "recording.download", Target: id})
		if len(evs) == 2 && evs[0].Outcome == "allowed" && strings.HasPrefix(evs[1].Detail, "24 more downloads") {
			return
		}
		if len(evs) > 2 || time.Now().After(deadline) {
			t.Fatalf("25 downloads of one recording on one connection audited as %+v; want one row and one for the 24 others", evs)
		}
	}
}

// TestUnsealedRecordingSaysSo: a session that is over but whose recording
// was not finalized (no SHA-256 yet) is refused with that reason, not as
// "still live"; one never recorded does not exist.
func TestUnsealedRecordingSaysSo(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	ctx := context.Background()
	for _, id := range []string{"0123456789abcdef", "fedcba9876543210"} {
		if err := e.gw.Store.CreateSession(ctx, store.Session{ID: id, Person: "alice", Team: "ops_RR", Host: "web-01",
			State: store.StateLive, Started: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.gw.Store.SetSessionRecording(ctx, "0123456789abcdef", "/nonexistent/0123456789abcdef.gz", 0, ""); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"0123456789abcdef", "fedcba9876543210"} {
		if err := e.gw.Store.FinishSession(ctx, id, store.SessionEnd{State: store.StateClosed, Ended: time.Now(),
			EndReason: "exit 0 (recording not finalized)"}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.dialB(t, "rr")
	for id, want := range map[string]string{
		"0123456789abcdef": "not finalized yet",
		"fedcba9876543210": "no such recording",
	} {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		s.Stdin = bytes.NewReader(make([]byte, 8))
		out, _ := s.Output("scp -f recordings/" + id + ".gz")
		s.Close()
		if !strings.Contains(string(out), want) {
			t.Errorf("%s: scp says %q, want %q", id, out, want)
		}
	}
}

// recordedSession runs one session on web-01 and returns its id once it
// is closed and its recording finalized (downloadable).
func recordedSession(t *testing.T, e *env) string {
	t.Helper()
	if out, _, err := run(t, e.dialB(t, "rr+web-01"), "echo recorded", nil); out != "recorded\n" || err != nil {
		t.Fatalf("session: %q %v", out, err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		rows, _ := e.gw.Store.Sessions(context.Background(), store.SessionFilter{})
		if len(rows) == 1 && rows[0].State != store.StateLive && rows[0].RecordingSHA256 != "" {
			return rows[0].ID
		}
	}
	t.Fatal("no closed session with its recording")
	return ""
}
