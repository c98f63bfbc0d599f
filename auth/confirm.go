package auth

import (
	"context"
	"errors"
)

// SecondFactor makes sure this connection has given the second factor
// (the emailed code, or the authenticator's for people who enrolled one),
// asking on p if it has not: the rr-admin console asks it before a
// connection's first change, so that an admin's key alone changes
// nothing. A connection that gave it already (an rr+HOST@ login, or a
// session's terminal) is not asked again, and one that gives it here is
// not asked again for a host either.
//
// A refused round (CodeTries wrong answers, or an expired code) ends the
// asking on this connection: every later call is refused without a
// question, until the person reconnects. Wrong answers count towards the
// person's lockout as at login.
func (s *Service) SecondFactor(ctx context.Context, p Prompter, l *Login, instruction string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.secondDone {
		return nil
	}
	if l.secondLost {
		s.audit(Event{Person: l.Person.Name, Action: "code", Outcome: "denied", Reason: "refused earlier on this connection", Source: l.Source})
		return denied("refused earlier on this connection", "rr: too many wrong codes on this connection; reconnect to try again")
	}
	if err := s.notLocked(l); err != nil {
		return err
	}
	err := s.secondFactor(ctx, p, l, instruction)
	var d *Denied
	switch {
	case err == nil:
		l.secondDone = true
	case errors.As(err, &d) && (d.Reason == "wrong code" || d.Reason == "wrong authenticator code" || d.Reason == "code expired"):
		l.secondLost = true
	}
	return err
}

// SecondFactorDone reports whether this connection has given the second
// factor.
func (l *Login) SecondFactorDone() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.secondDone
}

// Mail sends m through the mailer the codes go through: the gateway's
// notices to admins use it.
func (s *Service) Mail(ctx context.Context, m Message) error { return s.cfg.Mailer.Send(ctx, m) }
