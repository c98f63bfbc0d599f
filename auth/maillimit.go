package auth

import (
	"fmt"
	"time"
)

// mailLimited refuses, before anything is asked, a person who will need a
// mailed code and may not be sent one now, and says when they may try
// again. nil if a code may be mailed, or none is needed.
func (s *Service) mailLimited(l *Login) error {
	if l.secondDone || l.Person.TOTPSecret != "" || l.Person.Email == "" {
		return nil
	}
	wait := s.limiter.mailWait(l.Person.Name)
	if wait == 0 {
		return nil
	}
	s.audit(Event{Person: l.Person.Name, Action: "code.send", Outcome: "denied", Reason: "mail rate limit", Source: l.Source})
	return denied("mail rate limit", mailLimitMessage(s.cfg.Limits, wait, s.cfg.Now()))
}

// mailLimitMessage tells a person over the mail limit when they may try
// again.
func mailLimitMessage(lim Limits, wait time.Duration, now time.Time) string {
	return fmt.Sprintf("rr: %d login codes were mailed to you within %s, the most allowed; try again in %s (at %s UTC)",
		lim.MailsPerPerson, lim.MailWindow, wait.Round(time.Second), now.Add(wait).UTC().Format("15:04:05"))
}
