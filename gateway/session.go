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

// Causes of a session's end; the text of the ones starting "rr:" is what
// the person is told.
var (
	errClientGone = errors.New("client gone")
	errShutdown   = errors.New("rr: the gateway shut down; session closed")
	errRecording  = errors.New("rr: recording failed; session closed")
	errAgentLost  = errors.New("rr: connection to the host was lost")
	errRecorder   = errors.New("recorder failed")
	errIdle       = errors.New("rr: the session was idle too long; closed")
	errMaxLength  = errors.New("rr: the session reached its maximum length; closed")
)

// maxSetupRequests bounds what a client may send before naming a host.
const maxSetupRequests = 128

// session is one person's channel from the moment it names a live host.
type session struct {
	srv    *Server
	id     string
	host   string
	pty    bool
	client ssh.Channel
	log    *slog.Logger
	cancel context.CancelCauseFunc
	// finished is closed once the recording and the store row are final;
	// killedBy (set before) says who killed it, "" if nobody did.
	finished chan struct{}
	killedBy string
	notices  sync.WaitGroup // lines notify is writing

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

func writeLine(ch ssh.Channel, pty bool, msg string) {
	eol := "\n"
	if pty {
		eol = "\r\n" // the client's terminal is raw
	}
	ch.Stderr().Write([]byte(termtext.Escape(msg) + eol)) // a kill reason is someone else's text
}

func sendExitStatus(ch ssh.Channel, status uint32) {
	ch.SendRequest(wire.ReqExitStatus, false, ssh.Marshal(&wire.ExitStatus{Status: status}))
}

// maxEnvValue bounds an accepted environment value (LANG, TZ, LC_*).
const maxEnvValue = 256

// setup is what a client asked for before naming the host.
type setup struct {
	pty *wire.PTYRequest
	env []wire.Env
}

// handle applies one pre-start request. It returns true when req starts
// the session (shell, exec, subsystem); the caller replies to it.
func (st *setup) handle(c *personConn, req *ssh.Request) bool {
	ok := false
	switch req.Type {
	case wire.ReqShell, wire.ReqExec, wire.ReqSubsystem:
		return true
	case wire.ReqPTY:
		var p wire.PTYRequest
		if wire.Unmarshal(req.Type, req.Payload, &p) == nil && st.pty == nil {
			st.pty, ok = &p, true
		}
	case wire.ReqEnv:
		var e wire.Env
		if wire.Unmarshal(req.Type, req.Payload, &e) == nil && len(st.env) < 64 && len(e.Value) <= maxEnvValue && wire.AcceptEnv(e.Name) {
			st.env, ok = append(st.env, e), true
		}
	case wire.ReqWindowChange:
		var w wire.WindowChange
		if wire.Unmarshal(req.Type, req.Payload, &w) == nil && st.pty != nil {
			st.pty.Columns, st.pty.Rows, st.pty.Width, st.pty.Height = w.Columns, w.Rows, w.Width, w.Height
		}
	case wire.ReqX11, wire.ReqAuthAgent:
		c.refuse(req.Type)
	}
	if req.WantReply {
		req.Reply(ok, nil)
	}
	return false
}

// refuse logs and audits a refused forwarding request.
func (c *personConn) refuse(what string) {
	c.log.Warn("forwarding refused", "request", what)
	c.srv.audit(store.AuditEvent{Actor: c.person, Action: "forward", Target: what, Outcome: "denied",
		Source: c.remote, Detail: "forwarding is disabled"})
}

// runSession owns one session channel from accept to close.
func (c *personConn) runSession(parent context.Context, ch ssh.Channel, reqs <-chan *ssh.Request) {
	s := c.srv
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	defer ch.Close()
	defer c.sessions.Add(-1) // before the close: a person who sees it may open the next at once
	id := newSessionID()
	log := c.log.With("session", id)
	defer s.recoverPanic("session", "session", id, "person", c.person)

	var st setup
	var start *ssh.Request
	// A channel that never asks for a shell, a command or a subsystem is
	// closed after the login grace time.
	grace := time.NewTimer(s.cfg.LoginGraceTime)
	defer grace.Stop()
	for n := 0; start == nil; n++ {
		select {
		case <-grace.C:
			log.Info("session channel closed: nothing started within the login grace time")
			return
		case <-ctx.Done():
			return
		case req, ok := <-reqs:
			if !ok {
				return
			}
			if n >= maxSetupRequests {
				if req.WantReply {
					req.Reply(false, nil)
				}
				continue
			}
			if st.handle(c, req) {
				start = req
			}
		}
	}
	pty := st.pty != nil

	var target Target
	switch start.Type {
	case wire.ReqExec:
		var cmd wire.Command
		if err := wire.Unmarshal(start.Type, start.Payload, &cmd); err != nil {
			start.Reply(false, nil)
			return
		}
		if c.loginHost == "" && download.IsSCP(cmd.Command) {
			start.Reply(true, nil)
			c.serveSCP(ctx, ch, reqs, &st, cmd.Command)
			return
		}
		start.Reply(true, nil)
		t, err := ParseCommand(c.loginHost, cmd.Command)
		if err != nil {
			writeLine(ch, pty, `rr: the command must start with a host name: ssh rr@GATEWAY HOST [-- COMMAND]`)
			sendExitStatus(ch, 2)
			return
		}
		target = t
	case wire.ReqShell:
		start.Reply(true, nil)
		target.Host = c.loginHost
		if target.Host == "" {
			host, ok := c.pickHost(ctx, ch, reqs, &st)
			if !ok {
				return
			}
			target.Host = host
		}
	case wire.ReqSubsystem:
		if c.loginHost == "" {
			if !c.serveGatewaySubsystem(ctx, ch, reqs, &st, start, log) {
				log.Info("subsystem refused", "request", string(start.Payload))
				start.Reply(false, nil)
			}
			return
		}
		start.Reply(true, nil)
		target.Host = c.loginHost
	}
	log = log.With("host", target.Host)

	if err := c.mayOpen(ctx, target.Host); err != nil {
		if start.Type == wire.ReqExec && c.quietProbe(target.Host, err) {
			sendExitStatus(ch, 127)
			return
		}
		log.Info("session refused", "reason", err)
		c.srv.audit(store.AuditEvent{Actor: c.person, Action: "session.open", Target: target.Host,
			Outcome: "denied", Source: c.remote, Detail: err.Error()})
		writeLine(ch, pty, c.refusal(target.Host, err))
		sendExitStatus(ch, 1)
		return
	}

	passphrase, ok := c.hostFactors(ctx, ch, reqs, &st, target.Host, log)
	if !ok {
		return
	}
	ss := &session{srv: c.srv, id: id, host: target.Host, pty: pty, client: ch, log: log, cancel: cancel,
		finished: make(chan struct{})}
	c.openSession(ctx, ss, &st, start, target, reqs, passphrase)
}

// hostFactors makes sure this connection has given host's passphrase and
// the second factor, asking on the session's terminal (echo off) what the
// keyboard-interactive login did not. Without a terminal they cannot be
// asked, and the person is told how to do it.
func (c *personConn) hostFactors(ctx context.Context, ch ssh.Channel, reqs <-chan *ssh.Request, st *setup, host string, log *slog.Logger) (auth.Secret, bool) {
	if pp, ok := c.login.Take(host); ok { // one entry, one session
		return pp, true
	}
	pty := st.pty != nil
	if !pty {
		writeLine(ch, false, noTerminalMessage(host, c.loginHost))
		sendExitStatus(ch, 1)
		return auth.Secret{}, false
	}
	var pp auth.Secret
	var err error
	ctx, cancel := context.WithTimeoutCause(ctx, c.srv.cfg.PromptGraceTime, errors.New("prompt timed out"))
	defer cancel()
	talked := c.converse(ctx, ch, reqs, st, func() {
		pp, err = c.srv.cfg.Auth.HostFactors(ctx, terminalPrompter{ch}, c.login, host)
	})
	if !talked {
		return auth.Secret{}, false
	}
	if err != nil {
		var d *auth.Denied
		msg := "rr: permission denied"
		if errors.As(err, &d) && d.Message != "" {
			msg = d.Message
		} else if errors.Is(err, errAbandoned) {
			msg = "rr: cancelled"
		} else if !errors.As(err, &d) {
			log.Info("factors not given", "err", err)
		}
		writeLine(ch, true, msg)
		sendExitStatus(ch, 1)
		return auth.Secret{}, false
	}
	return pp, true
}

// terminalPrompter asks auth's questions on the session's terminal.
type terminalPrompter struct{ ch ssh.Channel }

var errAbandoned = errors.New("the person left the prompt")

func (t terminalPrompter) Ask(_ context.Context, instruction, prompt string, echo bool) (string, error) {
	// On stderr, as sudo's prompt goes to the terminal: with the output
	// redirected (ssh -t … > file), the prompt still shows, and is not in
	// the file.
	w := t.ch.Stderr()
	if instruction != "" {
		io.WriteString(w, termtext.Escape(instruction)+"\r\n")
	}
	io.WriteString(w, termtext.Escape(prompt))
	line, ok := readLine(t.ch, 256, echo)
	io.WriteString(w, "\r\n")
	if !ok {
		return "", errAbandoned
	}
	return line, nil
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
		return fmt.Sprintf("rr: host %q is offline: its agent is not connected to the gateway", host)
	case errors.Is(err, errNoLongerAllowed):
		return "rr: " + err.Error()
	default:
		return "rr: internal error; the session was not started"
	}
}

// openSession records the session, opens the host's side and bridges the
// two until the session ends; every path out finalizes the store row and
// the recording.
func (c *personConn) openSession(ctx context.Context, ss *session, st *setup, start *ssh.Request, target Target, reqs <-chan *ssh.Request, passphrase auth.Secret) {
	s := c.srv
	started := s.cfg.Now()
	info := SessionInfo{ID: ss.id, Person: c.person, Team: c.login.Team.Name, Host: target.Host, Command: target.Command,
		PTY: ss.pty, Started: started, Passphrase: passphrase, Gateway: s.cfg.Name}
	if st.pty != nil {
		info.Term, info.Cols, info.Rows = st.pty.Term, st.pty.Columns, st.pty.Rows
	}
	row := store.Session{ID: ss.id, Person: c.person, Team: c.login.Team.Name, Host: target.Host, Command: target.Command,
		PTY: ss.pty, Source: c.remote, State: store.StateLive, Started: started}
	if start.Type == wire.ReqSubsystem {
		row.Command = "subsystem " + string(start.Payload[min(4, len(start.Payload)):])
	}
	if err := s.cfg.Store.CreateSession(ctx, row); err != nil {
		ss.log.Error("cannot record session", "err", err)
		writeLine(ss.client, ss.pty, "rr: internal error; the session was not started")
		sendExitStatus(ss.client, 1)
		return
	}
	end := SessionEnd{Reason: "setup failed"}
	rec := SessionRecorder(nopRecorder{})
	finished := false
	finish := func(e SessionEnd) {
		finished = true
		s.finishSession(ss, rec, e)
		ss.killedBy = e.KilledBy
		close(ss.finished)
	}
	defer func() {
		if !finished {
			finish(end)
		}
	}()
	// Live from here, as its row says: a kill or a shutdown reaches it
	// while its recording starts and its host side opens (a cancel cuts
	// the host side's start short, closing that side: a host that never
	// answers must not hold the session).
	s.mu.Lock()
	s.sessions[ss.id] = ss
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ss.id)
		s.mu.Unlock()
	}()

	r, err := s.cfg.Recorders.Start(ctx, info)
	if err != nil && ctx.Err() != nil {
		end = ss.cancelledBeforeStart(context.Cause(ctx)) // while the recording started
		return
	}
	if err != nil {
		ss.log.Error("recorder refused the session", "err", err)
		writeLine(ss.client, ss.pty, "rr: the session cannot be recorded, so it was not started")
		sendExitStatus(ss.client, 1)
		end.Reason = "recorder failed"
		return
	}
	rec = r
	// The recorder has what it needs of the passphrase; nothing else here
	// keeps it (the session took it from the login: a next one asks again).
	info.Passphrase = auth.Secret{}

	agent, agentReqs, err := s.openAgentChannel(target.Host, wire.SessionOpen{SessionID: ss.id, Person: c.person})
	if err != nil {
		ss.log.Warn("cannot reach host", "err", err)
		writeLine(ss.client, ss.pty, c.refusal(target.Host, errHostOffline))
		sendExitStatus(ss.client, 1)
		end.Reason = "host offline"
		return
	}
	stopWatch := context.AfterFunc(ctx, func() { agent.Close() })
	ok := replay(agent, st, start, target)
	if !stopWatch() || !ok {
		agent.Close()
		if ctx.Err() != nil {
			end = ss.cancelledBeforeStart(context.Cause(ctx))
			return
		}
		writeLine(ss.client, ss.pty, "rr: the host refused to start the session")
		sendExitStatus(ss.client, 1)
		end.Reason = "host refused"
		return
	}
	ss.log.Info("session started", "command", target.Command, "pty", ss.pty)
	s.audit(store.AuditEvent{Actor: c.person, Action: "session.open", Target: target.Host,
		Outcome: "allowed", Source: c.remote, SessionID: ss.id})
	ss.bridge(ctx, reqs, agent, agentReqs, rec, finish)
}

// cancelledBeforeStart tells the person why their session ended before
// it started (a kill, a shutdown; nobody to tell if they left), gives it
// exit status 1, and returns how it ended.
func (ss *session) cancelledBeforeStart(cause error) SessionEnd {
	if !errors.Is(cause, errClientGone) {
		writeLine(ss.client, ss.pty, cause.Error())
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
	if err := rec.Close(end); err != nil {
		ss.log.Error("recording not finalized", "err", err)
		end.Reason += " (recording not finalized)" // the row says so too
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.cfg.Store.FinishSession(ctx, ss.id, store.SessionEnd{
		State: state, Ended: s.cfg.Now(),
		BytesIn: ss.bytesIn.Load(), BytesOut: ss.bytesOut.Load(),
		ExitStatus: end.ExitStatus, EndReason: end.Reason, KilledBy: end.KilledBy,
	})
	if err != nil {
		ss.log.Error("session row not finalized", "err", err)
	}
	if m := s.cfg.Metrics; m != nil {
		m.sessionEnded(string(state), ss.bytesIn.Load(), ss.bytesOut.Load())
	}
	if f, ok := rec.(sessionFinisher); ok {
		f.Finished() // the row is final: its recording may go
	}
	ss.log.Info("session ended", "reason", end.Reason, "bytes_in", ss.bytesIn.Load(), "bytes_out", ss.bytesOut.Load())
}

// bridge carries data and requests between the person's channel and the
// host's until the session ends, then calls finish with how it ended —
// before the person's channel closes, so that when their ssh exits the
// recording and the session row are final.
//
// Goroutines: three pumps (person→host, host stdout→person, host
// stderr→person; the last output pump to finish closes outDone);
// requests both ways are handled here. The host side ending (its channel
// closed) ends the session once its output is delivered; the person
// leaving closes the host side; a cancelled context closes both and tells
// the person its cause.
func (ss *session) bridge(ctx context.Context, clientReqs <-chan *ssh.Request, agent ssh.Channel, agentReqs <-chan *ssh.Request,
	rec SessionRecorder, finish func(SessionEnd)) {
	client := ss.client
	stopLimits := ss.limits(ss.srv.cfg.IdleTimeout, ss.srv.cfg.MaxSessionLength)
	defer stopLimits()
	var wg sync.WaitGroup
	// outDone is closed once both output pumps have delivered everything.
	outDone := make(chan struct{})
	var outLeft atomic.Int32
	outLeft.Store(2)
	outPumpDone := func() {
		if outLeft.Add(-1) == 0 {
			close(outDone)
		}
	}
	pumpErr := func(err error) {
		select {
		case <-ss.finished:
			return // bytes after the end: the closed recording refused them, as it should
		default:
		}
		if errors.Is(err, errRecorder) {
			ss.log.Error("recording failed", "err", err)
			ss.cancel(errRecording)
		}
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := pump(agent, client, rec.Input, &ss.bytesIn, &ss.active); err != nil {
			pumpErr(err)
			return
		}
		agent.CloseWrite() // the person's EOF reaches the host
	}()
	go func() {
		defer wg.Done()
		defer outPumpDone()
		pumpErr(pump(client, agent, rec.Output, &ss.bytesOut, &ss.active))
	}()
	go func() {
		defer wg.Done()
		defer outPumpDone()
		pumpErr(pump(client.Stderr(), agent.Stderr(), rec.Output, &ss.bytesOut, &ss.active))
	}()
	defer wg.Wait()
	defer client.Close()
	defer agent.Close()

	var end SessionEnd
	exited, droppedLogged := false, false
	var giveUp <-chan time.Time // after a cancel: how long the host side may take to close
	// cancelled takes the cancel's cause as the end reason (unless the
	// host had ended it first) and tells the person why.
	cancelled := func() {
		cause := context.Cause(ctx)
		if end.Reason == "" { // the host's exit, if it came first, stays the reason
			end = endOf(cause)
		}
		if !errors.Is(cause, errClientGone) {
			ss.notify(cause.Error())
		}
	}
	for agentReqs != nil {
		select {
		case <-giveUp:
			ss.log.Warn("host side did not close in time")
			agentReqs = nil
			continue
		case req, ok := <-agentReqs:
			if !ok {
				agentReqs = nil
				continue
			}
			// One well-formed exit goes on to the person; the rest is
			// dropped (strings from an agent are bounded and escaped).
			if !exited && exitRequest(req, &end) {
				exited = true
				forward(client, req)
			} else {
				ss.dropAgentRequest(req, &droppedLogged)
			}
		case req, ok := <-clientReqs:
			if !ok {
				// The person closed the channel: end the host side too.
				clientReqs = nil
				if !exited && end.Reason == "" {
					end.Reason = errClientGone.Error()
				}
				agent.Close()
				if giveUp == nil {
					t := time.NewTimer(5 * time.Second)
					defer t.Stop()
					giveUp = t.C
				}
				continue
			}
			switch req.Type {
			case wire.ReqWindowChange:
				var w wire.WindowChange
				if wire.Unmarshal(req.Type, req.Payload, &w) == nil {
					if err := rec.Resize(w.Columns, w.Rows); err != nil {
						pumpErr(fmt.Errorf("%w: %v", errRecorder, err))
					}
				}
				forward(agent, req)
			case wire.ReqSignal, wire.ReqEOW:
				forward(agent, req)
			case wire.ReqX11, wire.ReqAuthAgent:
				// Refused like the rest of forwarding.
				if req.WantReply {
					req.Reply(false, nil)
				}
			default:
				// A second shell/exec/pty-req on a started session.
				if req.WantReply {
					req.Reply(false, nil)
				}
			}
		case <-ctx.Done():
			cancelled()
			// End the host side; the person's channel closes once the
			// session is finalized (or at once if the host side hangs).
			agent.Close()
			if giveUp == nil {
				t := time.NewTimer(5 * time.Second)
				defer t.Stop()
				giveUp = t.C
			}
			ctx = context.Background()
		}
	}
	// The host side has closed. Deliver what it wrote, then close; after a
	// cancel, not for long. A person who has stopped reading keeps the
	// output pumps waiting: a cancel (kill, a timeout, a shutdown) still
	// ends the session then.
	delivered := false
	cut := giveUp != nil
	if !cut {
		select {
		case <-outDone:
			delivered = true
		case <-ctx.Done():
			cancelled()
			cut = true
		}
	}
	if cut {
		select {
		case <-outDone:
			delivered = true
		case <-time.After(time.Second):
		}
	}
	if !exited && end.Reason == "" {
		end.Reason = "agent lost"
		ss.notify(errAgentLost.Error())
	}
	// EOF only when nothing writes to the person any more (x/crypto/ssh's
	// CloseWrite must not race a Write); the close that follows finish
	// ends the channel either way.
	if ss.noticesSent(time.Second) && delivered {
		client.CloseWrite()
	}
	finish(end)
}

// endOf is how a session cancelled with cause ended, for its row and its
// recording.
func endOf(cause error) SessionEnd {
	var e SessionEnd
	e.Reason = strings.TrimPrefix(cause.Error(), "rr: ")
	var k *killError
	if errors.As(cause, &k) {
		e.Reason, e.KilledBy = k.endReason(), k.by
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

// killError is the cause of a session killed by someone.
type killError struct{ by, reason string }

// endReason is how the row and the recording say it ended, in the same
// lower case as the other reasons ("exit 0", "agent lost").
func (k *killError) endReason() string {
	if k.reason == "" {
		return "killed by " + k.by
	}
	return "killed by " + k.by + ": " + k.reason
}

func (k *killError) Error() string {
	msg := "rr: Session closed by " + k.by
	if k.reason != "" {
		msg += ": " + k.reason
	}
	return msg
}

// forward sends req on to ch without asking for an answer, and answers it
// itself when it wants one (yes, unless ch is gone): the bridge's loop
// must never wait on a peer, or it would stop seeing kills and timeouts.
// The requests it forwards (window-change, signal, exit-status…) change
// nothing if refused.
func forward(ch ssh.Channel, req *ssh.Request) {
	_, err := ch.SendRequest(req.Type, false, req.Payload)
	if req.WantReply {
		req.Reply(err == nil, nil)
	}
}

// pump copies src to dst, showing every chunk to tee first: what reaches
// the other side has been recorded. It returns nil at src's EOF.
//
// A quiet session's pumps wait on small buffers (smallPump); a read that
// fills one means bytes are flowing, and the pump takes a big buffer from
// bigPumps until reads come back small again — so an idle session holds
// 3 KiB of pump buffers.
func pump(dst io.Writer, src io.Reader, tee func([]byte) error, n, active *atomic.Int64) error {
	small := make([]byte, smallPump)
	buf := small
	var big *[bigPump]byte
	defer func() {
		if big != nil {
			bigPumps.Put(big)
		}
	}()
	for {
		nr, err := src.Read(buf)
		if nr > 0 {
			active.Store(time.Now().UnixNano())
			if terr := tee(buf[:nr]); terr != nil {
				return fmt.Errorf("%w: %v", errRecorder, terr)
			}
			nw, werr := dst.Write(buf[:nr])
			n.Add(int64(nw))
			if werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case big == nil && nr == len(small):
			big = bigPumps.Get().(*[bigPump]byte)
			buf = big[:]
		case big != nil && nr < smallPump:
			bigPumps.Put(big)
			big, buf = nil, small
		}
	}
}

const (
	smallPump = 1 << 10
	bigPump   = 128 << 10 // several SSH packets: one read takes what has arrived, so fewer window adjustments and recorder events
)

var bigPumps = sync.Pool{New: func() any { return new([bigPump]byte) }}
