package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/admin"
	"github.com/rr-gateway/rr/store"
)

// What stands between an admin's key and a change (docs/security.md#after-login): the
// console asks the connection's second factor before its first change
// (consoleSecondFactor), and every change is mailed to the admins
// (notifyAdmins).

// consoleSecondFactor is the console's Config.SecondFactor: the
// connection's Login asks it once (auth.Service.SecondFactor). Its error
// is what the person is told.
func (s *Server) consoleSecondFactor(ctx context.Context, who admin.Caller, p auth.Prompter) error {
	if who.Login == nil {
		return errors.New("this connection cannot give the second factor")
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.cfg.LoginGraceTime, errors.New("the code was not given in time"))
	defer cancel()
	err := s.cfg.Auth.SecondFactor(ctx, p, who.Login, admin.SecondFactorInstruction)
	var d *auth.Denied
	switch {
	case err == nil:
		return nil
	case errors.As(err, &d) && d.Message != "":
		return errors.New(strings.TrimPrefix(d.Message, "rr: "))
	case errors.As(err, &d):
		return errors.New("permission denied")
	case ctx.Err() != nil:
		return context.Cause(ctx)
	}
	return err // the console's own prompt errors ("no answer: the input ended")
}

// Notices of changes wait in a bounded queue and go out one at a time, so
// that a slow mail server never holds the console or the change; one that
// cannot be sent or queued is logged and audited, never dropped silently.
const (
	noticeQueue   = 64               // changes waiting to be mailed
	noticeTimeout = 15 * time.Second // one mail
	noticeDrain   = 5 * time.Second  // what the shutdown gives the queue's rest
)

// notices is the queue of changes to mail, owned by Server.mu.
type notices struct {
	queue   chan admin.Change // nil until the first change
	stopped bool              // the mailer ended: nothing more is queued
}

// notifyAdmins is the console's Config.Notify: it queues the change for
// mailNotices, starting it at the first change.
func (s *Server) notifyAdmins(_ context.Context, ch admin.Change) {
	s.mu.Lock()
	n := &s.notices
	lost := ""
	switch {
	case n.stopped || (n.queue == nil && s.closing):
		lost = "the gateway is shutting down"
	case n.queue == nil:
		n.queue = make(chan admin.Change, noticeQueue)
		s.wg.Add(1)
		go s.mailNotices(n.queue)
	}
	if lost == "" {
		select {
		case n.queue <- ch:
		default:
			lost = fmt.Sprintf("%d notices wait already", noticeQueue)
		}
	}
	s.mu.Unlock()
	if lost != "" {
		s.noticeFailed(ch, "not mailed: "+lost)
	}
}

// mailNotices mails the queued changes until the server closes, then what
// is queued still, within noticeDrain.
func (s *Server) mailNotices(q chan admin.Change) {
	defer s.wg.Done()
	for {
		select {
		case ch := <-q:
			s.mailNotice(s.ctx, ch)
			continue
		case <-s.ctx.Done():
		}
		s.mu.Lock()
		s.notices.stopped = true
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), noticeDrain)
		defer cancel()
		for {
			select {
			case ch := <-q:
				s.mailNotice(ctx, ch)
			default:
				return
			}
		}
	}
}

// mailNotice mails one change to every admin with an address.
func (s *Server) mailNotice(ctx context.Context, ch admin.Change) {
	people, err := s.cfg.Store.People(ctx)
	if err != nil {
		s.noticeFailed(ch, "not mailed: the admins could not be read: "+err.Error())
		return
	}
	what := strings.TrimPrefix(ch.Action, "admin.")
	what = strings.ReplaceAll(what, ".", " ") + " " + ch.Target
	msg := auth.Message{
		Subject: fmt.Sprintf("rr: %s ran %s on %s", ch.Actor, what, s.cfg.Name),
		Body: fmt.Sprintf("An admin change on the rr gateway %s:\n\n"+
			"  who:   %s\n  what:  %s\n  how:   %s\n  when:  %s\n  from:  %s\n\n"+
			"If it was not expected, their key may be in other hands: the console's\n"+
			"audit --actor %s shows what else they did.\n",
			s.cfg.Name, ch.Actor, what, orDash(ch.Detail), ch.Time.UTC().Format(time.RFC3339), ch.Source, ch.Actor),
	}
	var sent int
	var failed []string
	for _, p := range people {
		if p.Role != auth.RoleAdmin || p.Email == "" {
			continue
		}
		m := msg
		m.To = p.Email
		mctx, cancel := context.WithTimeout(ctx, noticeTimeout)
		err := s.cfg.Auth.Mail(mctx, m)
		cancel()
		if err != nil {
			failed = append(failed, p.Name+": "+err.Error())
			continue
		}
		sent++
	}
	if len(failed) > 0 {
		s.noticeFailed(ch, fmt.Sprintf("mailed %d admins; not mailed to %s", sent, strings.Join(failed, "; ")))
		return
	}
	s.audit(store.AuditEvent{Actor: ch.Actor, Action: "admin.notify", Target: ch.Target, Outcome: "allowed",
		Detail: fmt.Sprintf("%s: mailed %d admins", ch.Action, sent), Source: ch.Source})
	s.log.Info("admins told of a change", "person", ch.Actor, "action", ch.Action, "target", ch.Target, "mailed", sent)
}

// noticeFailed logs and audits a notice that did not reach every admin.
func (s *Server) noticeFailed(ch admin.Change, why string) {
	s.log.Error("admins not told of a change", "person", ch.Actor, "action", ch.Action, "target", ch.Target, "why", why)
	s.audit(store.AuditEvent{Actor: ch.Actor, Action: "admin.notify", Target: ch.Target, Outcome: "failed",
		Detail: ch.Action + ": " + why, Source: ch.Source})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
