package auth

import (
	"context"
	"errors"
	"strings"
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
		if l.failure("bob") {
			t.Fatal("locked too early")
		}
	}
	if !l.failure("bob") || !l.locked("bob") || l.locked("alice") {
		t.Fatal("third failure did not lock bob alone")
	}
	now = now.Add(61 * time.Second)
	if l.locked("bob") {
		t.Fatal("first lockout longer than its minute")
	}
	l.failure("bob")
	l.failure("bob")
	l.failure("bob")
	now = now.Add(61 * time.Second)
	if !l.locked("bob") {
		t.Fatal("second lockout did not double")
	}
	now = now.Add(10 * time.Minute)
	for i := 0; i < 3; i++ {
		l.failure("bob")
	}
	now = now.Add(3*time.Minute + time.Second)
	if l.locked("bob") {
		t.Fatal("lockout exceeded its maximum")
	}
	// A success clears the run of failures.
	l.failure("carol")
	l.failure("carol")
	l.success("carol")
	if l.failure("carol") {
		t.Fatal("success did not reset the count")
	}
}

func TestLimiterWindows(t *testing.T) {
	now := time.Now()
	l := newLimiter(Limits{SourceAttempts: 2, SourceWindow: time.Minute, MailsPerPerson: 1, MailWindow: time.Hour}.withDefaults(),
		func() time.Time { return now })
	if !l.attempt("1.2.3.4") || !l.attempt("1.2.3.4") || l.attempt("1.2.3.4") || !l.attempt("5.6.7.8") {
		t.Fatal("source window")
	}
	now = now.Add(2 * time.Minute)
	if !l.attempt("1.2.3.4") {
		t.Fatal("source window did not reset")
	}
	if !l.mail("bob") || l.mail("bob") {
		t.Fatal("mail window")
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
	var asked []string
	p := promptFunc(func(prompt string) string {
		asked = append(asked, prompt)
		switch {
		case strings.HasPrefix(prompt, "Username"):
			return "bob"
		case strings.HasPrefix(prompt, "Password"):
			return "pw"
		case strings.HasPrefix(prompt, "Passphrase"):
			return "pp"
		case strings.HasPrefix(prompt, "Code"):
			return strings.TrimPrefix(sent[len(sent)-1].Subject, "rr login code: ")
		}
		return ""
	})
	l, err := s.Interactive(context.Background(), p, nil, ServiceLogin, "h", "src")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Username: ", "Password: ", "Passphrase for h: ", "Code sent to b***@x.test: "}
	if strings.Join(asked, "|") != strings.Join(want, "|") {
		t.Fatalf("asked %q, want %q", asked, want)
	}
	if pp, ok := l.Ready("h"); !ok || pp.Reveal() != "pp" {
		t.Fatal("passphrase not kept for the recorder")
	}
	l.Forget("h")
	if _, ok := l.Ready("h"); ok {
		t.Fatal("Forget kept the passphrase")
	}
}

type fakeDir struct {
	people map[string]Person
	teams  map[string][]Team
	hosts  map[string]Host
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
	key, err := NewTOTPKey("rr", "bob")
	if err != nil {
		t.Fatal(err)
	}
	dir := &fakeDir{
		people: map[string]Person{"bob": {Name: "bob", Email: "bob@x.test", Role: RoleAdvanced, PasswordHash: mustHash(t, "pw"), TOTPSecret: key.Secret()}},
		teams:  map[string][]Team{"bob": {{Name: "t_RR", RapidResponse: true, Hosts: []string{"*"}}}},
		hosts:  map[string]Host{"h": {Name: "h", PassphraseVerifier: mustHash(t, "pp")}},
	}
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
				c, _ := totp.GenerateCode(key.Secret(), time.Now())
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
	if err := s.MayOpen(context.Background(), l, "h"); !errors.Is(err, ErrNoSuchHost) {
		t.Fatalf("MayOpen = %v, want ErrNoSuchHost", err)
	}
	if _, err := s.Interactive(context.Background(), answers("bob"), nil, ServiceLogin, "", "src"); err == nil {
		t.Fatal("an advanced user in no team logged in")
	}
}
