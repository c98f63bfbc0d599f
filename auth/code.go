package auth

// The second factor: a code mailed for each login, or an authenticator
// app's code for people who enrolled one (each accepted once).

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// secondFactor checks an authenticator code for people who enrolled one,
// else mails a fresh code and checks it: single use, CodeTTL, CodeTries.
func (s *Service) secondFactor(ctx context.Context, p Prompter, l *Login, instruction string) error {
	who := l.Person.Name
	if l.Person.TOTPSecret != "" {
		for try := 0; try < s.cfg.CodeTries; try++ {
			if err := s.notLocked(l); err != nil {
				return err
			}
			answer, err := p.Ask(ctx, instruction, "Authenticator code: ", false)
			if err != nil {
				return err
			}
			instruction = ""
			step, ok := totpStep(strings.TrimSpace(limitLen(answer)), l.Person.TOTPSecret, s.cfg.Now())
			if !ok {
				s.failFactor(who, l.Source, "code", "", "wrong authenticator code")
				continue
			}
			// Single use: a code whose step is not later than the last
			// one accepted from this person (a replay) is refused.
			fresh, err := s.cfg.Directory.UseTOTPStep(ctx, who, step)
			if err != nil {
				return fmt.Errorf("auth: authenticator step of %s: %w", who, err)
			}
			if fresh {
				s.limiter.factorSuccess(who)
				s.audit(Event{Person: who, Action: "code", Outcome: "allowed", Reason: "authenticator", Source: l.Source})
				return nil
			}
			s.failFactor(who, l.Source, "code", "", "authenticator code used already")
			instruction = "That code was used already; wait for the next one."
		}
		return denied("wrong authenticator code", "rr: wrong code")
	}
	if l.Person.Email == "" {
		s.audit(Event{Person: who, Action: "code.send", Outcome: "failed", Reason: "no email address on file", Source: l.Source})
		return denied("no email address", "rr: no email address is on file for you; ask an admin")
	}
	if !s.limiter.mail(who) {
		s.audit(Event{Person: who, Action: "code.send", Outcome: "denied", Reason: "mail rate limit", Source: l.Source})
		return denied("mail rate limit", mailLimitMessage(s.cfg.Limits, s.limiter.mailWait(who), s.cfg.Now()))
	}
	code, err := newCode()
	if err != nil {
		return err
	}
	sendCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = s.cfg.Mailer.Send(sendCtx, Message{To: l.Person.Email, Subject: "rr login code",
		Body: fmt.Sprintf("Your rr code is %s. It is valid for %s, for the login you started from %s.\n"+
			"If that was not you, tell your security team.\n", code, s.cfg.CodeTTL, l.Source)})
	cancel()
	if err != nil {
		s.log.Error("code not sent", "person", who, "err", err)
		s.audit(Event{Person: who, Action: "code.send", Outcome: "failed", Reason: err.Error(), Source: l.Source})
		return denied("mail failed", "rr: the code could not be sent (the mail server did not take it); try again later")
	}
	s.audit(Event{Person: who, Action: "code.send", Outcome: "allowed", Target: MaskEmail(l.Person.Email), Source: l.Source})
	l.code = &pendingCode{code: code, expires: s.cfg.Now().Add(s.cfg.CodeTTL)}
	defer func() { l.code = nil }() // single use, whatever happens
	prompt := "Code sent to " + MaskEmail(l.Person.Email) + ": "
	for l.code.tries < s.cfg.CodeTries {
		answer, err := p.Ask(ctx, instruction, prompt, false)
		if err != nil {
			return err
		}
		instruction = ""
		l.code.tries++
		if s.cfg.Now().After(l.code.expires) {
			s.failFactor(who, l.Source, "code", "", "code expired")
			return denied("code expired", "rr: the code expired; log in again for a new one")
		}
		if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(limitLen(answer))), []byte(l.code.code)) == 1 {
			s.limiter.factorSuccess(who)
			s.audit(Event{Person: who, Action: "code", Outcome: "allowed", Reason: "emailed code", Source: l.Source})
			return nil
		}
		s.failFactor(who, l.Source, "code", "", "wrong code")
		if err := s.notLocked(l); err != nil {
			return err
		}
	}
	return denied("wrong code", "rr: wrong code")
}

// totpPeriod and totpSkew: authenticator codes change every 30 s, and
// the one before and the one after the current are accepted too (clocks
// drift).
const (
	totpPeriod = 30
	totpSkew   = 1
)

// totpStep returns the time step (Unix time / totpPeriod) whose code is
// answer, within totpSkew steps of now; the latest if several match. Every
// candidate is compared, in constant time.
func totpStep(answer, secret string, now time.Time) (step int64, ok bool) {
	opts := totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	current := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		code, err := totp.GenerateCodeCustom(secret, time.Unix((current+d)*totpPeriod, 0), opts)
		if err == nil && subtle.ConstantTimeCompare([]byte(answer), []byte(code)) == 1 {
			step, ok = current+d, true
		}
	}
	return step, ok
}

// newCode makes a 6-digit one-time code with pquerna/otp (HOTP over a
// fresh random secret: every code stands alone).
func newCode() (string, error) {
	var secret [20]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", err
	}
	return hotp.GenerateCodeCustom(base32.StdEncoding.EncodeToString(secret[:]), 0,
		hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

// NewTOTPKey makes an authenticator-app secret for person: give the
// person key.URL() (an otpauth:// URL, as a QR code or typed in) and keep
// key.Secret() in the file people[].totp_secret_file names.
func NewTOTPKey(issuer, person string) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: person, Period: 30,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

// ValidTOTPSecret reports whether s is a TOTP secret an authenticator can
// use: base32 (any case, padding optional) of 80 bits or more.
func ValidTOTPSecret(s string) bool {
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(s, "=")))
	return err == nil && len(b) >= 10
}
