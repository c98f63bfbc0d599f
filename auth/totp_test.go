package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestAuthenticatorCodeIsSingleUse: an authenticator code that opened one
// login is refused at the next within the same 30 s window (a replay),
// and so is the previous window's, still within the skew; the next
// window's code is accepted.
func TestAuthenticatorCodeIsSingleUse(t *testing.T) {
	dir, secret := bobDir(t)
	now := time.Unix(1_800_000_000-1_800_000_000%30+5, 0) // 5 s into a window
	var events []Event
	s, err := New(Config{Directory: dir, Mailer: mailFunc(func(Message) error { return nil }), CodeTries: 1,
		Now: func() time.Time { return now }, Audit: func(e Event) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	login := func(code string) (asked int, err error) {
		p := promptFunc(func(prompt string) string {
			switch {
			case strings.HasPrefix(prompt, "Authenticator code"):
				asked++
				return code
			case strings.HasPrefix(prompt, "Passphrase"):
				return "pp"
			}
			return "pw"
		})
		_, err = s.Interactive(ctx, p, &Person{Name: "bob", Role: RoleAdvanced, TOTPSecret: secret}, "bob", "h", "192.0.2.1:1")
		return asked, err
	}
	code := func(at time.Time) string {
		c, err := totp.GenerateCode(secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := login(code(now)); err != nil {
		t.Fatalf("a fresh code: %v", err)
	}
	now = now.Add(20 * time.Second) // same window
	asked, err := login(code(now))
	var d *Denied
	if !errors.As(err, &d) || d.Message != "rr: wrong code" || asked != 1 {
		t.Fatalf("the same code again in its window: %v (asked %d times), want refused", err, asked)
	}
	replays := 0
	for _, e := range events {
		if e.Action == "code" && e.Reason == "authenticator code used already" {
			replays++
		}
	}
	if replays != 1 {
		t.Fatalf("%d replays audited, want 1", replays)
	}
	now = now.Add(10 * time.Second) // the next window: the old code is one step back, within the skew
	if _, err := login(code(now.Add(-30 * time.Second))); err == nil {
		t.Fatal("the previous window's code, used already, was accepted")
	}
	if _, err := login(code(now)); err != nil {
		t.Fatalf("the next window's code: %v", err)
	}
}

// TestTOTPStep: the step a code belongs to, within one step of now, and
// nothing for a code outside or a bad secret.
func TestTOTPStep(t *testing.T) {
	key, err := NewTOTPKey("rr", "bob")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_010, 0)
	cur := now.Unix() / 30
	for d := int64(-3); d <= 3; d++ {
		c, _ := totp.GenerateCode(key.Secret(), time.Unix((cur+d)*30, 0))
		step, ok := totpStep(c, key.Secret(), now)
		inSkew := d >= -1 && d <= 1
		if ok != inSkew || (ok && step != cur+d) {
			// Codes outside the skew may collide with one inside (1 in 10^6).
			t.Errorf("code of step now%+d: step %d (now %d), ok %v", d, step, cur, ok)
		}
	}
	if _, ok := totpStep("000000", "not base32!", now); ok {
		t.Fatal("a bad secret matched")
	}
}
