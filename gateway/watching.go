package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/admin"
	"github.com/rr-gateway/rr/internal/termtext"
	"github.com/rr-gateway/rr/store"
)

// watchPrefix starts the one-step form of watching: ssh -t rr@gw watch:ID.
const watchPrefix = "watch:"

// What a watch's end is, for the audit trail.
const (
	watchStopped = "stopped by the watcher"
	watchDropped = "too slow, dropped"
)

// watch lets who follow live session id on t, read-only, once they have
// given the passphrase of its host, until they stop (q, Ctrl-C, their
// input ends), they are too slow, the session ends or ctx ends. Who may:
// whoever may see (and so kill) the session; one they may not see reads
// like one that does not exist. The error is the line they read.
func (s *Server) watch(ctx context.Context, who admin.Caller, id string, t admin.WatchTerminal) error {
	attempt := store.AuditEvent{Actor: who.Person, Action: "session.watch", Target: id, SessionID: id,
		Outcome: "denied", Source: who.Source}
	row, err := s.cfg.Store.Session(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !admin.MaySee(who, row)) {
		attempt.Detail = "no such session for this person"
		s.audit(attempt)
		return fmt.Errorf("no session %q", id)
	}
	if err != nil {
		s.log.Error("watch: session not read", "session", id, "err", err)
		return errors.New("internal error; the gateway log has the details")
	}
	if row.State != store.StateLive {
		attempt.Detail = "not live"
		s.audit(attempt)
		return fmt.Errorf("session %s is not live (state %s): its recording has it all", id, row.State)
	}
	ss := s.liveSession(id)
	if ss == nil {
		attempt.Detail = "not live on this gateway"
		s.audit(attempt)
		return fmt.Errorf("session %s is not live on this gateway", id)
	}
	if who.Login == nil {
		return errors.New("permission denied")
	}
	if err := s.cfg.Auth.WatchPassphrase(ctx, t.Ask, who.Login, row.Host); err != nil {
		var d *auth.Denied
		attempt.Detail = "passphrase not given"
		if errors.As(err, &d) {
			attempt.Detail = d.Reason
		}
		s.audit(attempt)
		if errors.As(err, &d) && d.Message != "" {
			return errors.New(strings.TrimPrefix(d.Message, "rr: "))
		}
		return errors.New("permission denied")
	}
	w, err := ss.watch.attach(who.Person, ss.pty)
	if err != nil {
		attempt.Outcome, attempt.Detail = "failed", err.Error()
		s.audit(attempt)
		return fmt.Errorf("session %s: %w", id, err)
	}
	attempt.Outcome, attempt.Detail = "allowed", "host "+row.Host+", person "+row.Person
	s.audit(attempt)
	ss.log.Info("watch started", "watcher", who.Person)
	ss.notify("rr: " + who.Person + " is watching this session")
	lineTo(t.Out, t.TTY, fmt.Sprintf("rr: watching session %s (%s on %s), read-only; q or Ctrl-C stops",
		id, row.Person, row.Host))

	how, told := follow(ctx, &ss.watch, w, t)
	if ss.watch.detach(w) {
		ss.notify("rr: " + who.Person + " stopped watching this session")
	}
	if ss.pty && t.TTY {
		io.WriteString(t.Out, "\x1bc") // leave the watcher a clean terminal
	}
	if told != "" {
		lineTo(t.Out, t.TTY, told)
	}
	ss.log.Info("watch ended", "watcher", who.Person, "how", how)
	s.audit(store.AuditEvent{Actor: who.Person, Action: "session.watch.end", Target: id, SessionID: id,
		Outcome: "allowed", Source: who.Source, Detail: how})
	return nil
}

// follow writes what the hub has for w to t until the watcher stops, is
// dropped, the session ends or ctx ends. It returns how it ended (for the
// audit trail) and the line the watcher is told.
func follow(ctx context.Context, h *watchHub, w *watcher, t admin.WatchTerminal) (how, told string) {
	var spare []byte
	keys := t.Keys()
	for {
		select {
		case <-ctx.Done():
			return "the watcher's connection ended", ""
		case typed, ok := <-keys:
			if !ok {
				return watchStopped, ""
			}
			if stopKey(typed) {
				return watchStopped, "rr: stopped watching"
			}
		case <-w.wake:
			data, dropped, ended := h.take(w, spare)
			if len(data) > 0 {
				if _, err := t.Out.Write(data); err != nil {
					return "the watcher's connection ended", ""
				}
			}
			spare = data
			switch {
			case ended != "":
				return "session ended: " + ended, "rr: the session ended: " + ended
			case dropped:
				return watchDropped, "rr: too slow, stopped following"
			}
		}
	}
}

// stopKey reports whether keys hold q, Q, Ctrl-C or Ctrl-D.
func stopKey(keys []byte) bool {
	return strings.ContainsAny(string(keys), "qQ\x03\x04")
}

// watchEnd is how a session's end reads to its watchers.
func watchEnd(e SessionEnd) string {
	switch {
	case e.KilledBy != "":
		return e.Reason // "killed by bob: reason"
	case e.ExitStatus != nil:
		return fmt.Sprintf("exit %d", *e.ExitStatus)
	}
	return e.Reason
}

// liveSession is session id when it is live on this gateway.
func (s *Server) liveSession(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

// watchers lists who watches live session id here.
func (s *Server) watchers(id string) []string {
	if ss := s.liveSession(id); ss != nil {
		return ss.watch.names()
	}
	return nil
}

// serveWatch runs ssh -t rr@gw watch:ID: one watch on the channel's
// terminal, the passphrase asked there.
func (c *preStart) serveWatch(ctx context.Context, id string) {
	if c.st.pty == nil {
		c.end(1, "rr: watching asks the host's passphrase on a terminal: ssh -t rr@GATEWAY "+watchPrefix+id)
		return
	}
	who, err := c.caller(ctx)
	if err != nil {
		c.end(1, "rr: "+err.Error())
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	keys := func() <-chan []byte { return readKeys(ctx, c.ch) }
	c.converse(ctx, func() {
		err = c.srv.watch(ctx, who, id, admin.WatchTerminal{Out: c.ch, Keys: keys, Ask: terminalPrompter{c.ch}, TTY: true})
	})
	if err != nil {
		c.end(1, "rr: "+termtext.Escape(err.Error()))
		return
	}
	sendExitStatus(c.ch, 0)
}

// readKeys reads what the watcher types into the channel it returns,
// closed when their input ends. Its goroutine ends with r (the session
// channel, closed when the session ends) or once ctx is done.
func readKeys(ctx context.Context, r io.Reader) <-chan []byte {
	keys := make(chan []byte)
	go func() {
		defer close(keys)
		buf := make([]byte, 64)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				select {
				case keys <- bytes.Clone(buf[:n]):
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return keys
}
