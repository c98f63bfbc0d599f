package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/download"
	"github.com/rr-gateway/rr/internal/termtext"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/wire"
)

// Causes of a session's end. The person is told the ones that are an
// endNotice (or a kill); the others are for the row and the log alone.
var (
	errClientGone = errors.New("client gone")
	errShutdown   = endNotice("the gateway shut down; session closed")
	errRecording  = endNotice("recording failed; session closed")
	errAgentLost  = endNotice("connection to the host was lost")
	errRecorder   = errors.New("recorder failed")
	errIdle       = endNotice("the session was idle too long; closed")
	errMaxLength  = endNotice("the session reached its maximum length; closed")
)

// toldEnd is a cause of a session's end that the person is told: Notice
// is the line they read, Error what the row and the recording keep.
type toldEnd interface {
	error
	Notice() string
}

// endNotice is a toldEnd whose notice is its text after "rr: ".
type endNotice string

func (e endNotice) Error() string  { return string(e) }
func (e endNotice) Notice() string { return "rr: " + string(e) }

// noticeOf is the line the person reads of cause, "" when they are told
// nothing (they left, or the cause is the gateway's own business).
func noticeOf(cause error) string {
	var t toldEnd
	if errors.As(cause, &t) {
		return t.Notice()
	}
	return ""
}

// maxSetupRequests bounds what a client may send before naming a host.
const maxSetupRequests = 128

// session is one person's channel from the moment it names a live host.
type session struct {
	srv  *Server
	id   string
	host string
	// event and eventRule name the security event it was opened from.
	event, eventRule string
	pty              bool
	client           ssh.Channel
	log              *slog.Logger
	cancel           context.CancelCauseFunc
	// finished is closed once the recording and the store row are final;
	// killedBy (set before) says who killed it, "" if nobody did.
	finished chan struct{}
	killedBy string
	notices  sync.WaitGroup // lines notify is writing
	watch    watchHub       // its recent output and who watches it

	bytesIn  atomic.Int64 // person → host
	bytesOut atomic.Int64 // host → person
	active   atomic.Int64 // when a byte last crossed, Unix nanoseconds
}

// notify writes a line to the person's terminal (stderr), whatever the
// session is doing.
//
// It does not wait for the line to go out: a person who has stopped
// reading (their window is full) must not hold up the session's end, a
// kill, or a shutdown. noticesSent waits for the lines a while.
func (ss *session) notify(msg string) {
	ss.notices.Add(1)
	go func() {
		defer ss.notices.Done()
		writeLine(ss.client, ss.pty, msg)
	}()
}

// noticesSent waits up to d for notify's lines to go out, and reports
// whether they did.
func (ss *session) noticesSent(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done(&ss.notices):
		return true
	case <-t.C:
		return false
	}
}

func writeLine(ch ssh.Channel, pty bool, msg string) { lineTo(ch.Stderr(), pty, msg) }

// lineTo writes msg to w as one line, escaped (a kill reason is someone
// else's text), ended as a raw terminal wants it when tty.
func lineTo(w io.Writer, tty bool, msg string) {
	eol := "\n"
	if tty {
		eol = "\r\n" // the client's terminal is raw
	}
	w.Write([]byte(termtext.Escape(msg) + eol))
}

func sendExitStatus(ch ssh.Channel, status uint32) {
	ch.SendRequest(wire.ReqExitStatus, false, ssh.Marshal(&wire.ExitStatus{Status: status}))
}

// runSession owns one session channel from accept to close, then calls
// done. A session that goes live is handed, bridge and end, to a goroutine
// of its own (liveSession.serve), and this one ends: the stack an idle
// session parks on then holds the bridge's frames alone, not the set-up's.
func (c *personConn) runSession(parent context.Context, ch ssh.Channel, reqs <-chan *ssh.Request, done func()) {
	s := c.srv
	ctx, cancel := context.WithCancelCause(parent)
	closeChannel := func() {
		c.sessions.Add(-1) // before the close: a person who sees it may open the next at once
		ch.Close()
		cancel(nil)
		done()
	}
	handedOff := false
	defer func() {
		if !handedOff {
			closeChannel()
		}
	}()
	id := newSessionID()
	p := &preStart{personConn: c, ch: ch, reqs: reqs, log: c.log.With("session", id)}
	defer s.recoverPanic("session", "session", id, "person", c.person)

	start := p.awaitStart(ctx)
	if start == nil {
		return
	}
	ss, target, passphrase := p.prepare(ctx, start, id, cancel)
	if ss == nil {
		return
	}
	live := p.openSession(ctx, ss, start, target, passphrase)
	if live == nil {
		return
	}
	handedOff = true
	c.handOff(adoption{live: live, ctx: ctx, closeChannel: closeChannel})
}

// awaitStart buffers the channel's set-up requests until one starts the
// session (shell, exec, subsystem), and returns it; nil when the channel
// ended first or started nothing within the login grace time.
func (p *preStart) awaitStart(ctx context.Context) *ssh.Request {
	grace := time.NewTimer(p.srv.cfg.LoginGraceTime)
	defer grace.Stop()
	for n := 0; ; n++ {
		select {
		case <-grace.C:
			p.log.Info("session channel closed: nothing started within the login grace time")
			return nil
		case <-ctx.Done():
			return nil
		case req, ok := <-p.reqs:
			if !ok {
				return nil
			}
			if n >= maxSetupRequests {
				if req.WantReply {
					req.Reply(false, nil)
				}
				continue
			}
			if p.st.handle(p.personConn, req) {
				return req
			}
		}
	}
}

// prepare works out the session that start asks for: its target, the
// person's right to open it and the host's factors. It returns a nil
// session when it served the request itself (scp, watch, a subsystem of
// the gateway's, the host menu) or refused it. (Apart from runSession,
// whose frame a live session's stack holds.)
func (p *preStart) prepare(ctx context.Context, start *ssh.Request, id string, cancel context.CancelCauseFunc) (*session, Target, auth.Secret) {
	c, ch := p.personConn, p.ch
	pty := p.st.pty != nil

	var target Target
	switch start.Type {
	case wire.ReqExec:
		var cmd wire.Command
		if err := wire.Unmarshal(start.Type, start.Payload, &cmd); err != nil {
			start.Reply(false, nil)
			return nil, Target{}, auth.Secret{}
		}
		if c.loginHost == "" && download.IsSCP(cmd.Command) {
			start.Reply(true, nil)
			p.serveSCP(ctx, cmd.Command)
			return nil, Target{}, auth.Secret{}
		}
		start.Reply(true, nil)
		if id, ok := strings.CutPrefix(strings.TrimSpace(cmd.Command), watchPrefix); ok && c.loginHost == "" && c.loginEvent == "" {
			p.serveWatch(ctx, id)
			return nil, Target{}, auth.Secret{}
		}
		t, err := ParseCommand(c.loginHost, cmd.Command)
		if errors.Is(err, errBadEventID) {
			p.end(2, `rr: an event id is "e-" and hex digits: ssh rr@GATEWAY event:e-7f3a9c`)
			return nil, Target{}, auth.Secret{}
		}
		if err != nil {
			p.end(2, `rr: the command must start with a host name: ssh rr@GATEWAY HOST [-- COMMAND]`)
			return nil, Target{}, auth.Secret{}
		}
		target = t
		if c.loginEvent != "" {
			target.Event = c.loginEvent
		}
	case wire.ReqShell:
		start.Reply(true, nil)
		target.Host, target.Event = c.loginHost, c.loginEvent
		if target.Host == "" && target.Event == "" {
			host, ok := p.pickHost(ctx)
			if !ok {
				return nil, Target{}, auth.Secret{}
			}
			target.Host = host
		}
	case wire.ReqSubsystem:
		if c.loginHost == "" {
			if !p.serveGatewaySubsystem(ctx, start) {
				p.log.Info("subsystem refused", "request", string(start.Payload))
				start.Reply(false, nil)
			}
			return nil, Target{}, auth.Secret{}
		}
		start.Reply(true, nil)
		target.Host, target.Event = c.loginHost, c.loginEvent
	}
	var ev *store.Event
	if target.Event != "" {
		e, ok := c.launchEvent(ctx, ch, pty, target.Event, p.log)
		if !ok {
			return nil, Target{}, auth.Secret{}
		}
		ev, target.Host = &e, e.Host
		p.log = p.log.With("event", e.ID)
	}
	p.log = p.log.With("host", target.Host)

	if err := c.mayOpen(ctx, target.Host); err != nil {
		if start.Type == wire.ReqExec && c.quietProbe(target.Host, err) {
			sendExitStatus(ch, 127)
			return nil, Target{}, auth.Secret{}
		}
		p.log.Info("session refused", "reason", err)
		c.srv.audit(store.AuditEvent{Actor: c.person, Action: "session.open", Target: target.Host,
			Outcome: "denied", Source: c.remote, Detail: err.Error()})
		p.end(1, c.refusal(target.Host, err))
		return nil, Target{}, auth.Secret{}
	}

	passphrase, ok := p.hostFactors(ctx, target.Host)
	if !ok {
		return nil, Target{}, auth.Secret{}
	}
	ss := &session{srv: c.srv, id: id, host: target.Host, pty: pty, client: ch, log: p.log, cancel: cancel,
		finished: make(chan struct{})}
	if ev != nil {
		ss.event, ss.eventRule = ev.ID, ev.Rule
		for _, line := range eventBanner(*ev) {
			writeLine(ch, pty, line)
		}
	}
	return ss, target, passphrase
}

// mayOpen decides whether this person may open a session on host now:
// with their role and team as they are now (hosts included), not as they
// were when this connection logged in.
func (c *personConn) mayOpen(ctx context.Context, host string) error {
	_, team, err := c.current(ctx)
	if err != nil {
		return err
	}
	if err := c.srv.cfg.Auth.MayOpen(ctx, authTeam(team), host); err != nil {
		if errors.Is(err, auth.ErrNoSuchHost) {
			return errNoSuchHost
		}
		return err
	}
	if !c.srv.Online(host) {
		return errHostOffline
	}
	return nil
}

var errNoSuchHost = errors.New("no such host for this person")

// refusal is the one line a person reads when a session is refused.
// Unknown hosts and hosts they may not reach read the same.
func (c *personConn) refusal(host string, err error) string {
	switch {
	case errors.Is(err, errNoSuchHost):
		return fmt.Sprintf("rr: no host %q that you may reach; \"ssh rr@GATEWAY\" lists yours", host)
	case errors.Is(err, errHostOffline):
		if peers := c.srv.peersHolding(host); len(peers) > 0 {
			return fmt.Sprintf("rr: host %q is not connected to this gateway; its agent is connected to %s",
				host, strings.Join(peers, ", "))
		}
		return fmt.Sprintf("rr: host %q is offline: its agent is not connected to the gateway", host)
	case errors.Is(err, errNoLongerAllowed):
		return "rr: " + err.Error()
	default:
		return "rr: internal error; the session was not started"
	}
}

// openSession records the session, opens the host's side and returns it
// live, ready to bridge; nil when it could not start, its store row and
// recording then final. Once live, the session is in the server's list:
// a kill or a shutdown reaches it while its recording starts and its host
// side opens (a cancel cuts the host side's start short, closing that
// side: a host that never answers must not hold the session).
func (c *preStart) openSession(ctx context.Context, ss *session, start *ssh.Request, target Target, passphrase auth.Secret) *liveSession {
	s := c.srv
	started := s.cfg.Now()
	if !c.createRow(ctx, ss, start, target, started) {
		return nil
	}
	l := &liveSession{ss: ss, rec: nopRecorder{}, end: SessionEnd{Reason: "setup failed"}}
	s.mu.Lock()
	s.sessions[ss.id] = ss
	s.mu.Unlock()
	opened := false
	defer func() {
		if !opened {
			l.close()
		}
	}()
	agent, agentReqs := c.startHost(ctx, ss, start, target, started, passphrase, &l.rec, &l.end)
	if agent == nil {
		return nil
	}
	l.bridge = newBridge(ss, c.reqs, agent, agentReqs, l.rec)
	opened = true
	return l
}

// createRow records the session's row, live; if it cannot, it tells the
// person and returns false.
func (c *preStart) createRow(ctx context.Context, ss *session, start *ssh.Request, target Target, started time.Time) bool {
	row := store.Session{ID: ss.id, Person: c.person, Team: c.login.Team.Name, Host: target.Host, Command: target.Command,
		PTY: ss.pty, Source: c.remote, State: store.StateLive, Started: started, EventID: ss.event, EventRule: ss.eventRule,
		Gateway: c.srv.cfg.Name, GatewayAdvertise: c.srv.cfg.Advertise}
	if start.Type == wire.ReqSubsystem {
		row.Command = "subsystem " + string(start.Payload[min(4, len(start.Payload)):])
	}
	if err := c.srv.cfg.Store.CreateSession(ctx, row); err != nil {
		ss.log.Error("cannot record session", "err", err)
		writeLine(ss.client, ss.pty, "rr: internal error; the session was not started")
		sendExitStatus(ss.client, 1)
		return false
	}
	return true
}

// startHost starts the session's recording (into *rec) and its host side.
// If either fails it tells the person, says why in *end and returns a nil
// channel.
func (c *preStart) startHost(ctx context.Context, ss *session, start *ssh.Request, target Target, started time.Time,
	passphrase auth.Secret, rec *SessionRecorder, end *SessionEnd) (ssh.Channel, <-chan *ssh.Request) {
	s := c.srv
	info := SessionInfo{ID: ss.id, Person: c.person, Team: c.login.Team.Name, Host: target.Host, Command: target.Command,
		PTY: ss.pty, Started: started, Passphrase: passphrase, Gateway: s.cfg.Name, EventID: ss.event, EventRule: ss.eventRule,
		Client: c.client}
	if c.st.pty != nil {
		info.Term, info.Cols, info.Rows = c.st.pty.Term, c.st.pty.Columns, c.st.pty.Rows
		ss.watch.cols, ss.watch.rows = c.st.pty.Columns, c.st.pty.Rows
	}
	r, err := s.cfg.Recorders.Start(ctx, info)
	if err != nil && ctx.Err() != nil {
		*end = ss.cancelledBeforeStart(context.Cause(ctx)) // while the recording started
		return nil, nil
	}
	if err != nil {
		ss.log.Error("recorder refused the session", "err", err)
		writeLine(ss.client, ss.pty, "rr: the session cannot be recorded, so it was not started")
		sendExitStatus(ss.client, 1)
		end.Reason = "recorder failed"
		return nil, nil
	}
	*rec = r
	// The recorder has what it needs of the passphrase; nothing else here
	// keeps it (the session took it from the login: a next one asks again).
	info.Passphrase = auth.Secret{}

	agent, agentReqs, err := s.openAgentChannel(target.Host, wire.SessionOpen{SessionID: ss.id, Person: c.person})
	if err != nil {
		ss.log.Warn("cannot reach host", "err", err)
		writeLine(ss.client, ss.pty, c.refusal(target.Host, errHostOffline))
		sendExitStatus(ss.client, 1)
		end.Reason = "host offline"
		return nil, nil
	}
	stopWatch := context.AfterFunc(ctx, func() { agent.Close() })
	ok := replay(agent, &c.st, start, target)
	if !stopWatch() || !ok {
		agent.Close()
		if ctx.Err() != nil {
			*end = ss.cancelledBeforeStart(context.Cause(ctx))
			return nil, nil
		}
		writeLine(ss.client, ss.pty, "rr: the host refused to start the session")
		sendExitStatus(ss.client, 1)
		end.Reason = "host refused"
		return nil, nil
	}
	ss.log.Info("session started", "command", target.Command, "pty", ss.pty)
	opened := store.AuditEvent{Actor: c.person, Action: "session.open", Target: target.Host,
		Outcome: "allowed", Source: c.remote, SessionID: ss.id}
	if ss.event != "" {
		opened.Detail = "event " + ss.event + ": " + ss.eventRule
		if err := s.cfg.Store.EventResponding(ctx, ss.event, c.person, started); err != nil {
			ss.log.Error("event not marked responding", "err", err)
		}
	}
	s.audit(opened)
	return agent, agentReqs
}

// cancelledBeforeStart tells the person why their session ended before
// it started (a kill, a shutdown; nobody to tell if they left), gives it
// exit status 1, and returns how it ended.
func (ss *session) cancelledBeforeStart(cause error) SessionEnd {
	if msg := noticeOf(cause); msg != "" {
		writeLine(ss.client, ss.pty, msg)
	}
	sendExitStatus(ss.client, 1)
	return endOf(cause)
}

// replay sends the agent what the client asked for before the host was
// known, then the request that starts the session. It reports whether the
// host agreed to start it.
func replay(agent ssh.Channel, st *setup, start *ssh.Request, target Target) bool {
	if st.pty != nil {
		if ok, err := agent.SendRequest(wire.ReqPTY, true, ssh.Marshal(st.pty)); err != nil || !ok {
			return false
		}
	}
	for i := range st.env {
		if _, err := agent.SendRequest(wire.ReqEnv, true, ssh.Marshal(&st.env[i])); err != nil {
			return false
		}
	}
	var ok bool
	var err error
	switch {
	case start.Type == wire.ReqSubsystem:
		ok, err = agent.SendRequest(wire.ReqSubsystem, true, start.Payload)
	case target.Command == "":
		ok, err = agent.SendRequest(wire.ReqShell, true, nil)
	default:
		ok, err = agent.SendRequest(wire.ReqExec, true, ssh.Marshal(&wire.Command{Command: target.Command}))
	}
	return err == nil && ok
}

// finishSession closes the recording and the store row, whatever ended the
// session.
func (s *Server) finishSession(ss *session, rec SessionRecorder, end SessionEnd) {
	state := store.StateClosed
	if end.KilledBy != "" {
		state = store.StateKilled
	}
	var steps []finalStep
	if err := rec.Close(end); err != nil {
		var pw *pendingRowWrite
		if errors.As(err, &pw) {
			// The file is final; only its row was not told.
			steps = append(steps, finalStep{"recording's size and SHA-256", pw.write})
		} else {
			ss.log.Error("recording not finalized", "err", err)
			end.Reason += " (recording not finalized)" // the row says so too
		}
	}
	ended := s.cfg.Now() // when it ended, not when the store heard of it
	bytesIn, bytesOut := ss.bytesIn.Load(), ss.bytesOut.Load()
	steps = append(steps, finalStep{"session row", func(ctx context.Context) error {
		return s.cfg.Store.FinishSession(ctx, ss.id, store.SessionEnd{
			State: state, Ended: ended, BytesIn: bytesIn, BytesOut: bytesOut,
			ExitStatus: end.ExitStatus, EndReason: end.Reason, KilledBy: end.KilledBy,
		})
	}}, finalStep{"audit event", func(ctx context.Context) error {
		return s.closeEvidence(ctx, ss, end, ended)
	}})
	if ss.event != "" {
		steps = append(steps, finalStep{"event status", func(ctx context.Context) error {
			return s.cfg.Store.EventSessionEnded(ctx, ss.event, ended)
		}})
	}
	if f, ok := rec.(sessionFinisher); ok {
		steps = append(steps, finalStep{"upload", func(context.Context) error {
			f.Finished() // the row is final: its recording may go
			return nil
		}})
	}
	s.final.run(ss.log, steps)
	if m := s.cfg.Metrics; m != nil {
		m.sessionEnded(string(state), bytesIn, bytesOut)
	}
	ss.log.Info("session ended", "reason", end.Reason, "bytes_in", bytesIn, "bytes_out", bytesOut)
}

// endOf is how a session cancelled with cause ended, for its row and its
// recording.
func endOf(cause error) SessionEnd {
	e := SessionEnd{Reason: cause.Error()}
	var k *killError
	if errors.As(cause, &k) {
		e.KilledBy = k.by
	}
	return e
}

// limits arms the idle and maximum-length timers (no goroutine waits on
// them) and returns what disarms them.
func (ss *session) limits(idle, maxLen time.Duration) (stop func()) {
	ss.active.Store(time.Now().UnixNano())
	var timers []*time.Timer
	if maxLen > 0 {
		timers = append(timers, time.AfterFunc(maxLen, func() { ss.cancel(errMaxLength) }))
	}
	if idle > 0 {
		var t atomic.Pointer[time.Timer]
		check := func() {
			quiet := time.Since(time.Unix(0, ss.active.Load()))
			if quiet >= idle {
				ss.cancel(errIdle)
				return
			}
			if tt := t.Load(); tt != nil {
				tt.Reset(idle - quiet)
			}
		}
		tt := time.AfterFunc(idle, check)
		t.Store(tt)
		timers = append(timers, tt)
	}
	return func() {
		for _, t := range timers {
			t.Stop()
		}
	}
}
