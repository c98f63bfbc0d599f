package gateway

// The web console's seam: a WebSocket, dressed as an SSH session channel
// by package gateway/web, enters the same path as a person's channel
// once it has named its host (openSession: row, recording, bridge, kill,
// watch, audit, idle and maximum length, notices). Only the start
// differs: the web console has asked the host's factors itself (through
// auth.Service.HostFactors on a fresh Login), so the channel starts a
// shell with the passphrase already in hand.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/admin"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/wire"
)

// ClientWebConsole is how a recording's header names a session opened
// from the web console.
const ClientWebConsole = "rr web console"

// WebTerminal is one terminal the web console opens: its person's login
// (a fresh one per session, with the host's factors given), the host or
// the event, the terminal's size, and the channel that stands in for the
// SSH one.
type WebTerminal struct {
	Login      *auth.Login
	Passphrase auth.Secret // the host's, as HostFactors returned it
	Remote     string      // the browser's address
	Host       string
	Event      string // "" unless opened from an event (then Host is its host)
	Term       string
	Cols, Rows uint32
	// Channel carries the terminal's bytes both ways; Requests brings
	// window-change requests, and is closed when the browser is gone.
	Channel  ssh.Channel
	Requests <-chan *ssh.Request
}

// ErrShuttingDown is RunWebSession's answer when the gateway is closing.
var ErrShuttingDown = errors.New("gateway: shutting down")

// RunWebSession runs t as a session until it ends, exactly as a person's
// SSH channel that named t's host would run; what the person must read
// (a refusal, a kill, the end) is written to t.Channel. It closes
// t.Channel.
func (s *Server) RunWebSession(ctx context.Context, t WebTerminal) error {
	defer t.Channel.Close()
	if !s.startSession() {
		return ErrShuttingDown
	}
	s.wg.Add(1)
	defer s.wg.Done()
	defer s.sessionWG.Done()
	person := t.Login.Person.Name
	c := &personConn{srv: s, login: t.Login, person: person, remote: t.Remote, client: ClientWebConsole,
		log: s.log.With("person", person, "team", t.Login.Team.Name, "remote", t.Remote, "client", "web")}
	// The server's end ends it, as it ends every connection's sessions.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(s.ctx, func() { cancel(context.Cause(s.ctx)) })
	defer stop()
	id := newSessionID()
	p := &preStart{personConn: c, ch: t.Channel, reqs: t.Requests, log: c.log.With("session", id),
		st: setup{pty: &wire.PTYRequest{Term: t.Term, Columns: t.Cols, Rows: t.Rows}}}
	defer s.recoverPanic("session", "session", id, "person", person)

	target := Target{Host: t.Host, Event: t.Event}
	var ev *store.Event
	if target.Event != "" {
		e, ok := c.launchEvent(ctx, t.Channel, true, target.Event, p.log)
		if !ok {
			return nil
		}
		ev, target.Host = &e, e.Host
		p.log = p.log.With("event", e.ID)
	}
	p.log = p.log.With("host", target.Host)
	if err := c.mayOpen(ctx, target.Host); err != nil {
		p.log.Info("session refused", "reason", err)
		s.audit(store.AuditEvent{Actor: person, Action: "session.open", Target: target.Host,
			Outcome: "denied", Source: t.Remote, Detail: err.Error()})
		p.end(1, c.refusal(target.Host, err))
		return nil
	}
	ss := &session{srv: s, id: id, host: target.Host, pty: true, client: t.Channel, log: p.log, cancel: cancel,
		finished: make(chan struct{})}
	if ev != nil {
		ss.event, ss.eventRule = ev.ID, ev.Rule
		for _, line := range eventBanner(*ev) {
			writeLine(t.Channel, true, line)
		}
	}
	if live := p.openSession(ctx, ss, &ssh.Request{Type: wire.ReqShell}, target, t.Passphrase); live != nil {
		live.run(ctx)
	}
	return nil
}

// WebHost is a host as the web console lists it.
type WebHost struct {
	Name   string `json:"name"`
	Online bool   `json:"online"`
}

// WebHosts lists the hosts login's team reaches (as it is now), online or
// not.
func (s *Server) WebHosts(ctx context.Context, login *auth.Login) ([]WebHost, error) {
	c := &personConn{srv: s, login: login, person: login.Person.Name}
	_, team, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	hosts, err := s.cfg.Store.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	list := []WebHost{}
	for _, h := range hosts {
		if auth.MayReach(authTeam(team), auth.Host{Name: h.Name, Labels: h.Labels}) {
			list = append(list, WebHost{Name: h.Name, Online: s.Online(h.Name)})
		}
	}
	return list, nil
}

// WebCaller is login's person as the console sees them now (role and
// team as they are now), for the console's commands run from the web.
func (s *Server) WebCaller(ctx context.Context, login *auth.Login, remote string) (admin.Caller, error) {
	c := &personConn{srv: s, login: login, person: login.Person.Name, remote: remote}
	return c.caller(ctx)
}

// Console is the rr-admin console, whose commands (sessions, kill,
// events…) the web console runs with the same rules and audit.
func (s *Server) Console() *admin.Console { return s.console }

// ErrNoRecording is WebRecording's answer for a session who may not see,
// that does not exist or that is not closed and sealed: they read alike.
var ErrNoRecording = errors.New("no such downloadable recording")

// WebRecording streams the recording of session id to w, as the scp path
// does: only a closed session's sealed file, only to who may see it, and
// checked against the row's size and SHA-256 as it goes; a file that
// fails the check ends the response before its last byte. start is
// called with the row before the first byte.
func (s *Server) WebRecording(ctx context.Context, who admin.Caller, id string, start func(store.Session), w io.Writer) error {
	x, err := s.cfg.Store.Session(ctx, id)
	audit := store.AuditEvent{Actor: who.Person, Action: "recording.download", Target: id, SessionID: id,
		Source: who.Source, Outcome: "denied"}
	if err != nil || !admin.MaySee(who, x) || !admin.Downloadable(x) {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		audit.Detail = "web: not found, not visible or not closed"
		s.audit(audit)
		return ErrNoRecording
	}
	rc, err := s.openRecording(ctx, id, 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	start(x)
	n, err := copyChecked(w, rc, x.RecordingSize, x.RecordingSHA256)
	audit.Outcome, audit.Detail = "allowed", fmt.Sprintf("web: %d bytes", n)
	if err != nil {
		audit.Outcome, audit.Detail = "failed", "web: "+err.Error()
	}
	s.audit(audit)
	return err
}

// copyChecked copies src to dst, holding back its last chunk until the
// whole has matched size and the hex SHA-256 sum: a copy that fails never
// reaches its end.
func copyChecked(dst io.Writer, src io.Reader, size int64, sum string) (int64, error) {
	h := sha256.New()
	cur, next := make([]byte, 32<<10), make([]byte, 32<<10)
	var held []byte
	var n int64
	for {
		nr, err := io.ReadFull(src, cur)
		if nr > 0 {
			if held != nil {
				if _, werr := dst.Write(held); werr != nil {
					return n, werr
				}
			}
			h.Write(cur[:nr])
			n += int64(nr)
			held = cur[:nr]
			cur, next = next, cur
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return n, err
		}
	}
	if n != size || hex.EncodeToString(h.Sum(nil)) != sum {
		return n, fmt.Errorf("recording failed its integrity check (%d bytes, want %d)", n, size)
	}
	if held != nil {
		if _, err := dst.Write(held); err != nil {
			return n, err
		}
	}
	return n, nil
}

// WebWatch runs the console's watch of live session id for login's
// person (as they are now) on t: the same checks, passphrase, notices
// and audit as `watch ID` in the rr-admin console.
func (s *Server) WebWatch(ctx context.Context, login *auth.Login, remote, id string, t admin.WatchTerminal) error {
	who, err := s.WebCaller(ctx, login, remote)
	if err != nil {
		return err
	}
	return s.watch(ctx, who, id, t)
}
