package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

func TestMayReach(t *testing.T) {
	h := Host{Name: "web-01", Labels: []string{"env=prod", "tier=web"}}
	for _, tt := range []struct {
		hosts []string
		want  bool
	}{
		{[]string{"web-01"}, true},
		{[]string{"*"}, true},
		{[]string{"label:env=prod"}, true},
		{[]string{"label:env=dev", "db-01"}, false},
		{[]string{"label:env"}, false},
		{nil, false},
	} {
		if got := MayReach(Team{Hosts: tt.hosts}, h); got != tt.want {
			t.Errorf("MayReach(%v) = %v", tt.hosts, got)
		}
	}
}

func TestMaskEmail(t *testing.T) {
	for in, want := range map[string]string{"alice@example.com": "a***@example.com", "x@y": "x***@y", "nope": "***", "@d": "***"} {
		if got := MaskEmail(in); got != want {
			t.Errorf("MaskEmail(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckSecret(t *testing.T) {
	v, err := HashSecret("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := CheckSecret("correct horse", v); !ok || err != nil {
		t.Fatalf("right secret: %v %v", ok, err)
	}
	if ok, _ := CheckSecret("correct horsE", v); ok {
		t.Fatal("wrong secret accepted")
	}
	if _, err := CheckSecret("x", "plaintext"); !errors.Is(err, ErrBadVerifier) {
		t.Fatalf("plain text verifier: %v", err)
	}
	// bcrypt, for passwords brought from elsewhere ("secret", cost 4).
	const bc = "$2a$04$8Gp1DvmwH6Ta6SvqG1v1wuLm9yDMl7nVtAfrp6A7yXW9nWbbkPr1S"
	if !ValidVerifier(bc) || !ValidVerifier(v) || ValidVerifier("$argon2id$junk") {
		t.Fatal("ValidVerifier")
	}
	// The same bcrypt hash under $2x$ parses for bcrypt.Cost, but
	// CheckSecret cannot use it: not valid.
	x := "$2x$" + bc[4:]
	if _, err := CheckSecret("secret", x); !errors.Is(err, ErrBadVerifier) || ValidVerifier(x) {
		t.Fatalf("$2x$ verifier: valid %v, check %v", ValidVerifier(x), err)
	}
}

func TestLimiterLockoutBacksOff(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(Limits{FailuresBeforeLockout: 3, LockoutBase: time.Minute, LockoutMax: 3 * time.Minute}.withDefaults(),
		func() time.Time { return now })
	for i := 0; i < 2; i++ {
		if l.factorFailure("bob") {
			t.Fatal("locked too early")
		}
	}
	if !l.factorFailure("bob") || !l.factorLocked("bob") || l.factorLocked("alice") {
		t.Fatal("third failure did not lock bob alone")
	}
	now = now.Add(61 * time.Second)
	if l.factorLocked("bob") {
		t.Fatal("first lockout longer than its minute")
	}
	l.factorFailure("bob")
	l.factorFailure("bob")
	l.factorFailure("bob")
	now = now.Add(61 * time.Second)
	if !l.factorLocked("bob") {
		t.Fatal("second lockout did not double")
	}
	now = now.Add(time.Minute)
	for i := 0; i < 3; i++ {
		l.factorFailure("bob")
	}
	now = now.Add(3*time.Minute + time.Second)
	if l.factorLocked("bob") {
		t.Fatal("lockout exceeded its maximum")
	}
	// A success clears the run of failures.
	l.factorFailure("carol")
	l.factorFailure("carol")
	l.factorSuccess("carol")
	if l.factorFailure("carol") {
		t.Fatal("success did not reset the count")
	}
}

// TestLimiterForgets: a run of failures older than LockoutMax is
// forgotten, and the doubling history after a day without failures.
func TestLimiterForgets(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(Limits{FailuresBeforeLockout: 3, LockoutBase: time.Minute, LockoutMax: time.Hour}.withDefaults(),
		func() time.Time { return now })
	l.passwordFailure("bob")
	l.passwordFailure("bob")
	now = now.Add(time.Hour + time.Second)
	if l.passwordFailure("bob") {
		t.Fatal("a run of failures an hour old still counted")
	}
	for range 5 { // five lockouts: the next would last 32 minutes
		for range 3 {
			l.passwordFailure("bob")
		}
		now = now.Add(time.Hour + time.Second)
	}
	now = now.Add(historyTTL)
	for range 3 {
		l.passwordFailure("bob")
	}
	now = now.Add(time.Minute + time.Second)
	if l.passwordLocked("bob") {
		t.Fatal("after a quiet day, a lockout still lasted more than the base")
	}
}

// TestLimiterBooksApart: guessing someone's password locks out password
// logins under that name, never the factors of the person (so a stranger
// cannot lock a responder out of their key login); wrong factors lock the
// person, not the name's password logins.
func TestLimiterBooksApart(t *testing.T) {
	l := newLimiter(Limits{FailuresBeforeLockout: 2}.withDefaults(), time.Now)
	l.passwordFailure("bob")
	l.passwordFailure("bob")
	if !l.passwordLocked("bob") || l.factorLocked("bob") {
		t.Fatal("password guesses: want bob's password logins locked, his factors not")
	}
	l.factorFailure("carol")
	l.factorFailure("carol")
	if !l.factorLocked("carol") || l.passwordLocked("carol") {
		t.Fatal("wrong factors: want carol's factors locked, her password logins not")
	}
}

// TestLimiterBounded: a flood of names does not grow the books without
// end.
func TestLimiterBounded(t *testing.T) {
	now := time.Now()
	l := newLimiter(Limits{}.withDefaults(), func() time.Time { return now })
	for i := range maxBook + 10 {
		l.passwordFailure(fmt.Sprint("name-", i))
	}
	now = now.Add(2 * time.Minute) // the next sweep is due
	l.passwordFailure("one more")
	if n := len(l.c.(*memCounters).locks); n > 1 {
		t.Fatalf("%d names kept after the sweep of a flood, want only the last", n)
	}
}

func TestSourceKey(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"192.0.2.7:50123", "192.0.2.7:50999"},
		{"[2001:db8:1:2:aaaa::1]:22", "[2001:db8:1:2:bbbb::9]:4000"},
		{"[::ffff:192.0.2.7]:1", "192.0.2.7:2"},
	} {
		if sourceKey(tt.a) != sourceKey(tt.b) {
			t.Errorf("%s and %s counted apart: %s, %s", tt.a, tt.b, sourceKey(tt.a), sourceKey(tt.b))
		}
	}
	if sourceKey("192.0.2.7:1") == sourceKey("192.0.2.8:1") || sourceKey("[2001:db8:1:2::1]:1") == sourceKey("[2001:db8:1:3::1]:1") {
		t.Error("different sources counted together")
	}
}

func TestLimiterWindows(t *testing.T) {
	now := time.Now()
	l := newLimiter(Limits{SourceAttempts: 2, SourceWindow: time.Minute, MailsPerPerson: 1, MailWindow: time.Hour}.withDefaults(),
		func() time.Time { return now })
	if got := []bool{attempt(l, "1.2.3.4"), attempt(l, "1.2.3.4"), attempt(l, "1.2.3.4"), attempt(l, "5.6.7.8")}; !slices.Equal(got, []bool{true, true, false, true}) {
		t.Fatalf("source window: attempts allowed %v, want the third refused", got)
	}
	now = now.Add(2 * time.Minute)
	if !attempt(l, "1.2.3.4") {
		t.Fatal("source window did not reset")
	}
	if !l.mail("bob") || l.mail("bob") {
		t.Fatal("mail window")
	}
}

// TestSourcesBounded: a flood of addresses does not grow the source
// counters without end: once their attempts have come back, they go.
func TestSourcesBounded(t *testing.T) {
	now := time.Now()
	l := newLimiter(Limits{SourceAttempts: 2, SourceWindow: time.Minute}.withDefaults(), func() time.Time { return now })
	for i := range maxWindows + 10 {
		attempt(l, fmt.Sprintf("[2001:db8:%x::1]:22", i))
	}
	if got := []bool{attempt(l, "192.0.2.1"), attempt(l, "192.0.2.1"), attempt(l, "192.0.2.1")}; !slices.Equal(got, []bool{true, true, false}) {
		t.Fatalf("a fresh address after a flood: attempts allowed %v, want the third refused", got)
	}
	now = now.Add(time.Minute)
	attempt(l, "192.0.2.2")
	if n := len(l.c.(*memCounters).windows); n > 2 {
		t.Fatalf("%d addresses kept a window after a flood, want the last two", n)
	}
	if !attempt(l, "192.0.2.1") {
		t.Fatal("an address's attempts did not come back after the window")
	}
}

func TestNewCode(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		c, err := newCode()
		if err != nil || len(c) != 6 || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("code %q %v", c, err)
		}
		seen[c] = true
	}
	if len(seen) < 45 {
		t.Fatalf("codes repeat: %d distinct of 50", len(seen))
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret("hunter2")
	if s.String() != "REDACTED" || s.LogValue().String() != "REDACTED" || s.Reveal() != "hunter2" {
		t.Fatal("Secret leaks or loses its value")
	}
}

func FuzzPickTeam(f *testing.F) {
	teams := []Team{{Name: "a_RR"}, {Name: "b_RR"}, {Name: "c_RR"}}
	for _, s := range []string{"1", "3", "0", "4", "b_RR", " 2 ", "", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, answer string) {
		got, ok := pickTeam(teams, answer)
		if !ok {
			return
		}
		for _, tm := range teams {
			if tm.Name == got.Name {
				return
			}
		}
		t.Fatalf("pickTeam(%q) chose %q, not a choice", answer, got.Name)
	})
}

func TestInteractiveOrderAndDenials(t *testing.T) {
	s, mails := bobMailed(t)
	var asked []string
	p := bobAnswers(mails, &asked)
	l, err := s.Interactive(context.Background(), p, nil, ServiceLogin, "h", "src")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Username: ", "Password: ", "Passphrase for h: ", "Code sent to b***@x.test: "}
	if strings.Join(asked, "|") != strings.Join(want, "|") {
		t.Fatalf("asked %q, want %q", asked, want)
	}
	if pp, ok := l.Take("h"); !ok || pp.Reveal() != "pp" {
		t.Fatal("passphrase not kept for the recorder")
	}
	if _, ok := l.Take("h"); ok {
		t.Fatal("one passphrase given was taken twice")
	}
}

type fakeDir struct {
	people map[string]Person
	teams  map[string][]Team
	hosts  map[string]Host

	mu        sync.Mutex
	totpSteps map[string]int64 // last authenticator step used, by person
}

func (d *fakeDir) UseTOTPStep(_ context.Context, person string, step int64) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.people[person]; !ok || step <= d.totpSteps[person] {
		return false, nil
	}
	if d.totpSteps == nil {
		d.totpSteps = map[string]int64{}
	}
	d.totpSteps[person] = step
	return true, nil
}

func (d *fakeDir) PersonByName(_ context.Context, n string) (Person, bool, error) {
	p, ok := d.people[n]
	return p, ok, nil
}
func (d *fakeDir) PersonByKey(context.Context, string) (Person, bool, error) {
	return Person{}, false, nil
}
func (d *fakeDir) TeamsOf(_ context.Context, n string) ([]Team, error) { return d.teams[n], nil }
func (d *fakeDir) Host(_ context.Context, n string) (Host, bool, error) {
	h, ok := d.hosts[n]
	return h, ok, nil
}

type mailFunc func(Message) error

func (f mailFunc) Send(_ context.Context, m Message) error { return f(m) }

type promptFunc func(string) string

func (f promptFunc) Ask(_ context.Context, _, prompt string, _ bool) (string, error) {
	return f(prompt), nil
}

func mustHash(t *testing.T, s string) string {
	v, err := HashSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAuthenticatorCodeReplacesMail(t *testing.T) {
	dir, secret := bobDir(t)
	mailed := 0
	s, err := New(Config{Directory: dir, Mailer: mailFunc(func(Message) error { mailed++; return nil })})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		code string
		ok   bool
	}{{"", true}, {"000000", false}} {
		var asked []string
		p := promptFunc(func(prompt string) string {
			asked = append(asked, prompt)
			switch {
			case strings.HasPrefix(prompt, "Password"):
				return "pw"
			case strings.HasPrefix(prompt, "Passphrase"):
				return "pp"
			case strings.HasPrefix(prompt, "Authenticator code"):
				if tc.code != "" {
					return tc.code
				}
				c, _ := totp.GenerateCode(secret, time.Now())
				return c
			}
			return ""
		})
		_, err := s.Interactive(context.Background(), p, nil, "bob", "h", "src")
		if (err == nil) != tc.ok {
			t.Fatalf("code %q: %v (asked %q)", tc.code, err, asked)
		}
	}
	if mailed != 0 {
		t.Fatal("a code was mailed to someone with an authenticator")
	}
}

func TestAdminWithoutTeamReachesNoHost(t *testing.T) {
	dir := &fakeDir{
		people: map[string]Person{
			"ann": {Name: "ann", Email: "ann@x.test", Role: RoleAdmin, PasswordHash: mustHash(t, "pw")},
			"bob": {Name: "bob", Email: "bob@x.test", Role: RoleAdvanced, PasswordHash: mustHash(t, "pw")},
		},
		hosts: map[string]Host{"h": {Name: "h", PassphraseVerifier: mustHash(t, "pp")}},
	}
	s, err := New(Config{Directory: dir, Mailer: mailFunc(func(Message) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	answers := func(user string) Prompter {
		return promptFunc(func(prompt string) string {
			if strings.HasPrefix(prompt, "Username") {
				return user
			}
			return "pw"
		})
	}
	l, err := s.Interactive(context.Background(), answers("ann"), nil, ServiceLogin, "", "src")
	if err != nil {
		t.Fatalf("admin in no team: %v", err)
	}
	if l.Team.Name != "" {
		t.Fatalf("team %q, want none", l.Team.Name)
	}
	if err := s.MayOpen(context.Background(), l.Team, "h"); !errors.Is(err, ErrNoSuchHost) {
		t.Fatalf("MayOpen = %v, want ErrNoSuchHost", err)
	}
	if _, err := s.Interactive(context.Background(), answers("bob"), nil, ServiceLogin, "", "src"); err == nil {
		t.Fatal("an advanced user in no team logged in")
	}
}

// bobDir is a directory with bob (password "pw", an authenticator whose
// secret it returns) and host h (passphrase "pp").
func bobDir(t *testing.T) (*fakeDir, string) {
	t.Helper()
	key, err := NewTOTPKey("rr", "bob")
	if err != nil {
		t.Fatal(err)
	}
	return &fakeDir{
		people: map[string]Person{"bob": {Name: "bob", Email: "bob@x.test", Role: RoleAdvanced, PasswordHash: mustHash(t, "pw"), TOTPSecret: key.Secret()}},
		teams:  map[string][]Team{"bob": {{Name: "t_RR", RapidResponse: true, Hosts: []string{"*"}}}},
		hosts:  map[string]Host{"h": {Name: "h", PassphraseVerifier: mustHash(t, "pp")}},
	}, key.Secret()
}

// bobWithAuthenticator is a Service over bobDir that records its audit
// events.
func bobWithAuthenticator(t *testing.T) (*Service, *[]Event, string) {
	t.Helper()
	dir, secret := bobDir(t)
	var events []Event
	s, err := New(Config{Directory: dir, Mailer: mailFunc(func(Message) error { return nil }),
		Audit: func(e Event) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	return s, &events, secret
}

// TestFactorGuessingIsBounded: on one connection, session after session,
// wrong authenticator codes lock the person out after
// FailuresBeforeLockout of them: nothing more is asked, and the right
// passphrase and code are refused until the lockout ends. A right
// passphrase between wrong codes does not reset the count.
func TestFactorGuessingIsBounded(t *testing.T) {
	s, _, secret := bobWithAuthenticator(t)
	ctx := context.Background()
	l, err := s.Interactive(ctx, promptFunc(func(string) string { return "pw" }), nil, "bob", "", "192.0.2.1:1000")
	if err != nil {
		t.Fatal(err)
	}
	codes := 0
	wrong := promptFunc(func(prompt string) string {
		if strings.HasPrefix(prompt, "Authenticator code") {
			codes++
			return "000000"
		}
		return "pp"
	})
	for range 20 {
		if _, err := s.HostFactors(ctx, wrong, l, "h"); err == nil {
			t.Fatal("a wrong code passed")
		}
		if _, ok := l.Passphrase("h"); ok {
			t.Fatal("the passphrase was kept though the code was wrong")
		}
	}
	if max := DefaultLimits.FailuresBeforeLockout; codes != max {
		t.Errorf("%d codes asked over 20 sessions, want %d (then locked out)", codes, max)
	}
	right := promptFunc(func(prompt string) string {
		if strings.HasPrefix(prompt, "Authenticator code") {
			c, _ := totp.GenerateCode(secret, time.Now())
			return c
		}
		return "pp"
	})
	_, err = s.HostFactors(ctx, right, l, "h")
	var d *Denied
	if !errors.As(err, &d) || d.Reason != "locked out" {
		t.Fatalf("right factors while locked out: %v, want locked out", err)
	}
	// A new connection, by password, is refused as well.
	if _, err := s.Interactive(ctx, promptFunc(func(string) string { return "pw" }), nil, "bob", "h", "192.0.2.1:1001"); !errors.As(err, &d) || d.Reason != "locked out" {
		t.Fatalf("a new login while locked out: %v", err)
	}
}

// TestUnknownNamesAreNotRecorded: what was typed as a username that is
// no one's (maybe a password) reaches neither the audit trail nor the
// counters, only a digest of it.
func TestUnknownNamesAreNotRecorded(t *testing.T) {
	s, events, _ := bobWithAuthenticator(t)
	typed := "correct horse battery staple"
	p := promptFunc(func(prompt string) string {
		if strings.HasPrefix(prompt, "Username") {
			return typed
		}
		return "pw"
	})
	if _, err := s.Interactive(context.Background(), p, nil, ServiceLogin, "", "192.0.2.1:1000"); err == nil {
		t.Fatal("an unknown name logged in")
	}
	for _, e := range *events {
		if strings.Contains(fmt.Sprintf("%+v", e), "horse") {
			t.Fatalf("the typed name is in the audit: %+v", e)
		}
	}
	if len(*events) == 0 || !strings.HasPrefix((*events)[0].Person, "unknown:") {
		t.Fatalf("events %+v, want the refusal under unknown:DIGEST", *events)
	}
	for k := range s.limiter.c.(*memCounters).locks {
		if strings.Contains(k.name, "horse") {
			t.Fatal("the typed name is a key of the lockout book")
		}
	}
}

// TestCodeIsNotInTheSubject: subjects show in notifications and relay
// logs; the code is only in the body.
func TestCodeIsNotInTheSubject(t *testing.T) {
	var sent []Message
	dir := &fakeDir{
		people: map[string]Person{"bob": {Name: "bob", Email: "bob@x.test", Role: RoleAdvanced, PasswordHash: mustHash(t, "pw")}},
		teams:  map[string][]Team{"bob": {{Name: "t_RR", RapidResponse: true, Hosts: []string{"*"}}}},
		hosts:  map[string]Host{"h": {Name: "h", PassphraseVerifier: mustHash(t, "pp")}},
	}
	s, err := New(Config{Directory: dir, Mailer: mailFunc(func(m Message) error { sent = append(sent, m); return nil })})
	if err != nil {
		t.Fatal(err)
	}
	p := promptFunc(func(prompt string) string {
		if strings.HasPrefix(prompt, "Code") {
			return regexp.MustCompile(`\d{6}`).FindString(sent[len(sent)-1].Body)
		}
		if strings.HasPrefix(prompt, "Passphrase") {
			return "pp"
		}
		return "pw"
	})
	if _, err := s.Interactive(context.Background(), p, nil, "bob", "h", "src"); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || regexp.MustCompile(`\d`).MatchString(sent[0].Subject) {
		t.Fatalf("mails %+v, want one with no digit in its subject", sent)
	}
}

// TestPasswordChecksTakeTheSameTime: a person whose hash is cheaper than
// the one unknown names are checked against (bcrypt) is answered no
// sooner than an unknown name.
func TestPasswordChecksTakeTheSameTime(t *testing.T) {
	const cheap = "$2a$04$8Gp1DvmwH6Ta6SvqG1v1wuLm9yDMl7nVtAfrp6A7yXW9nWbbkPr1S"
	dir := &fakeDir{people: map[string]Person{"bob": {Name: "bob", Role: RoleAdvanced, PasswordHash: cheap}}}
	s, err := New(Config{Directory: dir, Mailer: mailFunc(func(Message) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	const took = 300 * time.Millisecond // as if the unknown name's check had taken that
	s.dummyTook.Store(int64(took))
	start := time.Now()
	s.Interactive(context.Background(), promptFunc(func(string) string { return "wrong" }), nil, "bob", "", "src")
	if d := time.Since(start); d < took {
		t.Fatalf("bob's bcrypt check answered after %v, before the %v an unknown name takes", d, took)
	}
}

// TestLimitsHoldThroughLogins: the per-address limit refuses the 31st
// login a minute from one address (any port), and the mail limit the 6th
// code in 15 minutes for one person, through Interactive itself.
func TestLimitsHoldThroughLogins(t *testing.T) {
	s, mails := bobMailed(t)
	ctx := context.Background()
	var d *Denied
	quit := promptFunc(func(string) string { return "" }) // wrong answers, quickly
	for i := range DefaultLimits.SourceAttempts {
		s.Interactive(ctx, quit, &Person{Name: "bob", Role: RoleAdvanced}, "bob", "", fmt.Sprintf("192.0.2.9:%d", 1000+i))
	}
	if _, err := s.Interactive(ctx, quit, &Person{Name: "bob", Role: RoleAdvanced}, "bob", "", "192.0.2.9:5000"); !errors.As(err, &d) || d.Reason != "source rate limited" {
		t.Fatalf("login %d from one address: %v, want the source limit", DefaultLimits.SourceAttempts+1, err)
	}
	right := promptFunc(func(prompt string) string {
		if strings.HasPrefix(prompt, "Passphrase") {
			return "pp"
		}
		return regexp.MustCompile(`\d{6}`).FindString((*mails)[len(*mails)-1].Body)
	})
	for i := range DefaultLimits.MailsPerPerson + 1 {
		_, err := s.Interactive(ctx, right, &Person{Name: "bob", Role: RoleAdvanced, Email: "bob@x.test"}, "bob", "h", fmt.Sprintf("198.51.100.%d:1", i))
		if i < DefaultLimits.MailsPerPerson && err != nil {
			t.Fatalf("login %d: %v", i+1, err)
		}
		if i == DefaultLimits.MailsPerPerson && (!errors.As(err, &d) || d.Reason != "mail rate limit") {
			t.Fatalf("code %d: %v, want the mail limit", i+1, err)
		}
	}
	if len(*mails) != DefaultLimits.MailsPerPerson {
		t.Fatalf("%d codes mailed, want %d", len(*mails), DefaultLimits.MailsPerPerson)
	}
}

// bobMailed is a Service over a directory with bob (password "pw", mailed
// codes) and host h (passphrase "pp"), and the mails it sends.
// bobAnswers answers as bob does (bobMailed's person and host h, the
// code from the newest mail), noting each prompt in asked.
func bobAnswers(mails *[]Message, asked *[]string) Prompter {
	return promptFunc(func(prompt string) string {
		*asked = append(*asked, prompt)
		switch {
		case strings.HasPrefix(prompt, "Username"):
			return "bob"
		case strings.HasPrefix(prompt, "Password"):
			return "pw"
		case strings.HasPrefix(prompt, "Passphrase"):
			return "pp"
		case strings.HasPrefix(prompt, "Code"):
			return regexp.MustCompile(`\d{6}`).FindString((*mails)[len(*mails)-1].Body)
		}
		return ""
	})
}

func bobMailed(t *testing.T) (*Service, *[]Message) {
	t.Helper()
	dir := &fakeDir{
		people: map[string]Person{"bob": {Name: "bob", Email: "bob@x.test", Role: RoleAdvanced, PasswordHash: mustHash(t, "pw")}},
		teams:  map[string][]Team{"bob": {{Name: "t_RR", RapidResponse: true, Hosts: []string{"*"}}}},
		hosts:  map[string]Host{"h": {Name: "h", PassphraseVerifier: mustHash(t, "pp")}},
	}
	var sent []Message
	s, err := New(Config{Directory: dir, Mailer: mailFunc(func(m Message) error { sent = append(sent, m); return nil })})
	if err != nil {
		t.Fatal(err)
	}
	return s, &sent
}
