package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ServiceLogin is the login name of the service: ssh rr@gateway.
const ServiceLogin = "rr"

// Prompter asks one question. instruction, if not empty, is shown first
// (the keyboard-interactive instruction line, or a line on the terminal);
// echo says whether the answer may be shown as it is typed.
type Prompter interface {
	Ask(ctx context.Context, instruction, prompt string, echo bool) (string, error)
}

// IdentityWatcher is a Prompter told when the person's identity is
// proven, before team and factors are asked: the gateway then gives the
// connection longer (a mailed code takes time to fetch).
type IdentityWatcher interface {
	IdentityProven()
}

// KeyboardInteractive makes a Prompter of an SSH keyboard-interactive
// challenge function (ssh.KeyboardInteractiveChallenge has this shape):
// one round a question.
type KeyboardInteractive func(name, instruction string, questions []string, echos []bool) ([]string, error)

// Ask asks prompt in one keyboard-interactive round.
func (k KeyboardInteractive) Ask(_ context.Context, instruction, prompt string, echo bool) (string, error) {
	answers, err := k("", instruction, []string{prompt}, []bool{echo})
	if err != nil {
		return "", err
	}
	if len(answers) != 1 {
		return "", errors.New("auth: wrong number of answers")
	}
	return answers[0], nil
}

// Login is one connection's authentication: who, under which team, and
// which hosts' passphrases and second factor they have given so far.
type Login struct {
	Person Person
	Team   Team
	Source string

	// mu serializes what sessions of one connection do with the factors:
	// one asks at a time.
	mu         sync.Mutex
	hosts      map[string]Secret // host → passphrase given on this connection
	secondDone bool              // emailed or authenticator code accepted
	secondLost bool              // a round of it refused: SecondFactor asks no more
	code       *pendingCode
}

// Passphrase returns the passphrase given for host on this connection.
func (l *Login) Passphrase(host string) (Secret, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.hosts[host]
	return p, ok
}

// Take returns host's passphrase if this connection has given it and the
// second factor, so that nothing more needs asking, and forgets it: one
// passphrase given opens one session, however many start at once, and
// every other session asks anew.
func (l *Login) Take(host string) (Secret, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.take(host)
}

// take is Take with l.mu held.
func (l *Login) take(host string) (Secret, bool) {
	p, ok := l.hosts[host]
	if !ok || !l.secondDone {
		return Secret{}, false
	}
	delete(l.hosts, host)
	return p, true
}

type pendingCode struct {
	code    string
	expires time.Time
	tries   int
}

// MaxAnswer bounds every answer (bytes): longer ones are cut there, so a
// password or passphrase longer than this can never be given.
const MaxAnswer = 256

// KeyPerson returns the person a verified key belongs to, when the login
// name allows it (the service login, or their own name).
func (s *Service) KeyPerson(ctx context.Context, fingerprint, loginName string) (Person, bool, error) {
	p, found, err := s.cfg.Directory.PersonByKey(ctx, fingerprint)
	if err != nil || !found {
		return Person{}, false, err
	}
	if loginName != ServiceLogin && loginName != p.Name {
		return Person{}, false, nil
	}
	return p, true, nil
}

// Interactive runs the keyboard-interactive part of a login: identity
// (username and password, unless known says whose key it was), team, and,
// when the login name named the host, that host's passphrase and the
// second factor.
func (s *Service) Interactive(ctx context.Context, p Prompter, known *Person, loginName, loginHost, source string) (*Login, error) {
	if ok, err := s.limiter.attempt(source); err != nil {
		// Every check after this one needs the store too: say why at once.
		s.audit(Event{Person: loginName, Action: "login", Outcome: "failed", Reason: "store unreachable", Source: source})
		return nil, denied("store unreachable", StoreDownMessage)
	} else if !ok {
		s.audit(Event{Person: loginName, Action: "login", Outcome: "denied", Reason: "rate limit of source", Source: source})
		return nil, denied("source rate limited", "rr: too many attempts from your address; try again later")
	}
	var person Person
	if known != nil {
		person = *known
		if err := s.lockedOut(person.Name, source, "login"); err != nil {
			return nil, err
		}
		s.audit(Event{Person: person.Name, Action: "login", Outcome: "allowed", Reason: "publickey", Source: source})
	} else {
		var err error
		if person, err = s.password(ctx, p, loginName, source); err != nil {
			return nil, err
		}
		if err := s.lockedOut(person.Name, source, "login"); err != nil {
			return nil, err
		}
	}
	if person.Role != RoleAdvanced && person.Role != RoleAdmin {
		s.audit(Event{Person: person.Name, Action: "login", Outcome: "denied", Reason: "role " + person.Role, Source: source})
		return nil, denied("role "+person.Role, "rr: your role ("+person.Role+") may not open sessions; an admin can make you an advanced user")
	}
	if w, ok := p.(IdentityWatcher); ok {
		w.IdentityProven()
	}
	l := &Login{Person: person, Source: source, hosts: map[string]Secret{}}
	instruction, err := s.chooseTeam(ctx, p, l)
	if err != nil {
		return nil, err
	}
	if loginHost != "" {
		if err := s.hostFactors(ctx, p, l, loginHost, instruction); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// password asks for the username (under the service login) and password.
// Unknown people, people without a password and wrong passwords take the
// same time and get the same answer.
func (s *Service) password(ctx context.Context, p Prompter, loginName, source string) (Person, error) {
	name := loginName
	if name == ServiceLogin {
		var err error
		if name, err = p.Ask(ctx, "", "Username: ", true); err != nil {
			return Person{}, err
		}
		name = strings.TrimSpace(name)
	}
	pw, err := p.Ask(ctx, "", "Password: ", false)
	if err != nil {
		return Person{}, err
	}
	found := false
	var person Person
	if plausibleName(name) {
		if person, found, err = s.cfg.Directory.PersonByName(ctx, name); err != nil {
			return Person{}, err
		}
	}
	// The name is recorded only if it is someone's: a password typed
	// into the Username prompt must not land in the audit trail.
	who := name // as audited and counted
	if !found {
		who = unknownName(name)
	}
	// A name locked out is refused before any hash is checked: its
	// guesses cost no memory and no CPU. Unknown names lock out the same
	// way, so this tells no one apart.
	if s.limiter.passwordLocked(who) {
		s.audit(Event{Person: who, Action: "login", Outcome: "denied", Reason: "locked out", Source: source})
		return Person{}, denied("locked out", "")
	}
	verifier := s.dummy
	if found && person.PasswordHash != "" {
		verifier = person.PasswordHash
	}
	ok, took, verr := s.checkSecret(ctx, limitLen(pw), verifier, false)
	switch {
	case verr != nil && ctx.Err() != nil:
		return Person{}, ctx.Err()
	case errors.Is(verr, ErrHashBusy):
		// No guess was checked: audited, not counted against the name.
		s.audit(Event{Person: who, Action: "login", Outcome: "denied", Reason: "hash memory budget busy", Source: source})
		return Person{}, denied("hash memory budget busy", "")
	case verifier == s.dummy:
		s.dummyTook.Store(int64(took))
	default:
		if err := sleepCtx(ctx, time.Duration(s.dummyTook.Load())-took); err != nil {
			return Person{}, err
		}
	}
	// Failures counted while this check ran may have locked the name out.
	locked := s.limiter.passwordLocked(who)
	if !found || person.PasswordHash == "" || !ok || verr != nil || locked {
		reason := "wrong password"
		switch {
		case locked:
			reason = "locked out"
		case !found:
			reason = "unknown person"
		case person.PasswordHash == "":
			reason = "no password set"
		case verr != nil:
			reason = "bad password verifier: " + verr.Error()
		}
		if locked {
			s.audit(Event{Person: who, Action: "login", Outcome: "denied", Reason: reason, Source: source})
		} else {
			s.failPassword(who, source, reason)
		}
		return Person{}, denied(reason, "")
	}
	s.limiter.passwordSuccess(who)
	s.audit(Event{Person: name, Action: "login", Outcome: "allowed", Reason: "password", Source: source})
	return person, nil
}

// maxName bounds a name worth looking up (the store's names are shorter).
const maxName = 64

// plausibleName reports whether name could be someone's: short, and
// without spaces or control characters.
func plausibleName(name string) bool {
	if name == "" || len(name) > maxName {
		return false
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// unknownName is how a name that is no one's appears in the audit trail
// and is counted: a short digest, so that repeated guesses at one name can
// be told apart without keeping what was typed (possibly a password).
func unknownName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "unknown:" + hex.EncodeToString(sum[:6])
}

// sleepCtx waits d (nothing if d <= 0) or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func limitLen(s string) string {
	if len(s) > MaxAnswer {
		return s[:MaxAnswer]
	}
	return s
}

// chooseTeam picks the Rapid Response team the person acts under and
// returns the instruction line that names it.
func (s *Service) chooseTeam(ctx context.Context, p Prompter, l *Login) (string, error) {
	teams, err := s.cfg.Directory.TeamsOf(ctx, l.Person.Name)
	if err != nil {
		return "", err
	}
	var rr []Team
	for _, t := range teams {
		if t.RapidResponse {
			rr = append(rr, t)
		}
	}
	switch {
	case len(rr) == 0 && l.Person.Role == RoleAdmin:
		// Admins manage the gateway (console, recordings) without a team;
		// with no team they reach no host.
		s.audit(Event{Person: l.Person.Name, Action: "team", Outcome: "allowed", Reason: "admin in no Rapid Response team", Source: l.Source})
		return "", nil
	case len(rr) == 0:
		s.audit(Event{Person: l.Person.Name, Action: "team", Outcome: "denied", Reason: "in no Rapid Response team", Source: l.Source})
		return "", denied("in no Rapid Response team", "rr: you are in no team with Rapid Response enabled; ask an admin to add you to one")
	case len(rr) == 1:
		l.Team = rr[0]
	default:
		var b strings.Builder
		b.WriteString("Teams:")
		for i, t := range rr {
			fmt.Fprintf(&b, " %d) %s", i+1, t.Name)
		}
		answer, err := p.Ask(ctx, b.String(), "Team: ", true)
		if err != nil {
			return "", err
		}
		t, ok := pickTeam(rr, answer)
		if !ok {
			s.failFactor(l.Person.Name, l.Source, "team", "", "not one of the choices")
			return "", denied("bad team choice", "rr: not one of your Rapid Response teams")
		}
		l.Team = t
	}
	s.audit(Event{Person: l.Person.Name, Action: "team", Target: l.Team.Name, Outcome: "allowed", Source: l.Source})
	return "Team: " + l.Team.Name, nil
}

// pickTeam matches an answer to the Team prompt: a number from the list
// or a team's name.
func pickTeam(teams []Team, answer string) (Team, bool) {
	answer = strings.TrimSpace(answer)
	if n, err := strconv.Atoi(answer); err == nil && n >= 1 && n <= len(teams) {
		return teams[n-1], true
	}
	for _, t := range teams {
		if t.Name == answer {
			return t, true
		}
	}
	return Team{}, false
}

// HostFactors asks, on p, for what opening host still needs on this
// connection: its passphrase, then — once per connection — the second
// factor. It returns the passphrase, which keys the session's recording,
// and takes it from l (see Login.Take).
func (s *Service) HostFactors(ctx context.Context, p Prompter, l *Login, host string) (Secret, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pp, ok := l.take(host); ok {
		return pp, nil
	}
	if err := s.hostFactors(ctx, p, l, host, "Team: "+l.Team.Name); err != nil {
		return Secret{}, err
	}
	pp, _ := l.take(host)
	return pp, nil
}

// ErrNoSuchHost is the reason for a host that does not exist or that the
// person's team does not reach; the two are not told apart.
var ErrNoSuchHost = errors.New("no such host for this team")

// MayOpen checks, without asking anything, whether team t reaches host.
func (s *Service) MayOpen(ctx context.Context, t Team, host string) error {
	h, found, err := s.cfg.Directory.Host(ctx, host)
	if err != nil {
		return err
	}
	if !found || !MayReach(t, h) {
		return ErrNoSuchHost
	}
	return nil
}

// hostFactors asks for host's passphrase unless this connection gave it,
// then the second factor unless given: the passphrase is kept (and the host
// ready) only once both have passed. A person locked out (too many wrong
// factors, on any connection) is asked nothing.
func (s *Service) hostFactors(ctx context.Context, p Prompter, l *Login, host, instruction string) error {
	if err := s.notLocked(l); err != nil {
		return err
	}
	if err := s.mailLimited(l); err != nil {
		return err // before the passphrase is asked, not after
	}
	given, ok := l.hosts[host]
	if !ok {
		pp, err := s.askPassphrase(ctx, p, l, host, instruction, func(h Host) bool { return MayReach(l.Team, h) })
		if err != nil {
			return err
		}
		given = pp
	}
	if !l.secondDone {
		if err := s.secondFactor(ctx, p, l, instruction); err != nil {
			return err
		}
		l.secondDone = true
	}
	l.hosts[host] = given
	return nil
}

// askPassphrase asks host's passphrase on p, PassphraseTries times at
// most, and returns what was checked. reaches says whether the person may
// reach the host at all: one they may not (or one that does not exist)
// is asked all the same, checked against a dummy verifier, and refused
// like a missing one.
func (s *Service) askPassphrase(ctx context.Context, p Prompter, l *Login, host, instruction string, reaches func(Host) bool) (Secret, error) {
	h, found, err := s.cfg.Directory.Host(ctx, host)
	if err != nil {
		return Secret{}, err
	}
	reachable := found && reaches(h) && h.PassphraseVerifier != ""
	verifier := s.dummy
	if reachable {
		verifier = h.PassphraseVerifier
	}
	var pp string
	ok := false
	for try := 0; try < s.cfg.PassphraseTries && !ok; try++ {
		if try > 0 {
			instruction = "Wrong passphrase; try again."
		}
		if err := s.notLocked(l); err != nil {
			return Secret{}, err
		}
		if pp, err = p.Ask(ctx, instruction, "Passphrase for "+host+": ", false); err != nil {
			return Secret{}, err
		}
		instruction = ""
		match, _, err := s.checkSecret(ctx, limitLen(pp), verifier, true)
		if err != nil && ctx.Err() != nil {
			return Secret{}, ctx.Err()
		}
		ok = match && reachable
		if errors.Is(err, ErrHashBusy) {
			// Nothing was checked: a wrong try, not counted.
			s.audit(Event{Person: l.Person.Name, Action: "passphrase", Target: host, Outcome: "denied",
				Reason: "hash memory budget busy", Source: l.Source})
			continue
		}
		if !ok {
			reason := "wrong passphrase"
			switch {
			case !found || !reaches(h):
				reason = "no such host for this team"
			case h.PassphraseVerifier == "":
				reason = "host has no passphrase set"
			}
			s.failFactor(l.Person.Name, l.Source, "passphrase", host, reason)
		}
	}
	if !ok {
		if !found || !reaches(h) {
			return Secret{}, denied(ErrNoSuchHost.Error(), fmt.Sprintf("rr: no host %q that you may reach", host))
		}
		return Secret{}, denied("wrong passphrase", "rr: wrong passphrase for "+host)
	}
	s.audit(Event{Person: l.Person.Name, Action: "passphrase", Target: host, Outcome: "allowed", Source: l.Source})
	return NewSecret(limitLen(pp)), nil // what was checked
}

// WatchPassphrase asks, on p, the passphrase of host, whose live session
// the person wants to watch: what reading its recording needs. The caller
// has decided that they may see the session (their team's, or they are an
// admin), so the host need not be one their team reaches; no second
// factor is asked, since watching gives no shell. Nothing is kept: every
// watch asks again. Wrong answers count towards the lockout as at login.
func (s *Service) WatchPassphrase(ctx context.Context, p Prompter, l *Login, host string) error {
	l.mu.Lock() // one question at a time on a connection
	defer l.mu.Unlock()
	if err := s.notLocked(l); err != nil {
		return err
	}
	_, err := s.askPassphrase(ctx, p, l, host, "Watching a session on "+host+" needs its passphrase.", func(Host) bool { return true })
	return err
}

// notLocked refuses l's person if locked out for wrong factors.
func (s *Service) notLocked(l *Login) error { return s.lockedOut(l.Person.Name, l.Source, "factors") }

// lockedOut refuses, and audits under action, a person locked out for
// wrong factors; nil if they are not.
func (s *Service) lockedOut(person, source, action string) error {
	if !s.limiter.factorLocked(person) {
		return nil
	}
	s.audit(Event{Person: person, Action: action, Outcome: "denied", Reason: "locked out", Source: source})
	return denied("locked out", "rr: too many failed attempts; try again later")
}
