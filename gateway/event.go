package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/events"
	"github.com/rr-gateway/rr/store"
)

// eventHost is the host of event id for an rr+event:ID login, or a name
// no host has (the login then fails as for an unknown host).
func (s *Server) eventHost(ctx context.Context, id string) string {
	e, err := s.cfg.Store.Event(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("event lookup failed", "event", id, "err", err)
	}
	if err != nil || e.Host == "" {
		return eventPrefix + id
	}
	return e.Host
}

// launchEvent finds the event a session names. An unknown event, or one
// whose host matched no rr host, is refused here; the host's own rules
// (who may reach it, its factors) follow as for the host.
func (c *personConn) launchEvent(ctx context.Context, ch ssh.Channel, pty bool, id string, log *slog.Logger) (store.Event, bool) {
	e, err := c.srv.cfg.Store.Event(ctx, id)
	var msg string
	switch {
	case errors.Is(err, store.ErrNotFound):
		msg = fmt.Sprintf("rr: no event %q; the rr-admin console lists them (events)", id)
	case err != nil:
		log.Error("event lookup failed", "event", id, "err", err)
		msg = "rr: internal error; the session was not started"
	case e.Host == "":
		msg = fmt.Sprintf("rr: event %s fired on a host rr does not know (%q); it cannot be responded to from here", id, e.SourceHost)
	default:
		return e, true
	}
	log.Info("session refused", "event", id, "reason", msg)
	c.srv.audit(store.AuditEvent{Actor: c.person, Action: "session.open", Target: eventPrefix + id,
		Outcome: "denied", Source: c.remote, Detail: msg})
	writeLine(ch, pty, msg)
	sendExitStatus(ch, 1)
	return store.Event{}, false
}

// eventBanner is what a person reads before a session opened from e
// starts.
func eventBanner(e store.Event) []string {
	return []string{
		"rr: security event " + e.ID,
		"  rule:      " + e.Rule,
		"  priority:  " + events.Priority(e.Priority).String(),
		"  time:      " + e.Time.UTC().Format(time.RFC3339),
		"  host:      " + e.Host,
		"  summary:   " + e.Summary,
	}
}
