package auth

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// TestSecondFactorOncePerConnection: the console's second factor is asked
// once per connection (a code mailed and checked), not at all when the
// login gave it, and after a refused round (three wrong answers) nothing
// more is asked on that connection: the right code is refused too.
func TestSecondFactorOncePerConnection(t *testing.T) {
	s, mails := bobMailed(t)
	ctx := context.Background()
	login := func(host string) *Login {
		t.Helper()
		l, err := s.Interactive(ctx, promptFunc(func(prompt string) string {
			switch {
			case strings.HasPrefix(prompt, "Password"):
				return "pw"
			case strings.HasPrefix(prompt, "Passphrase"):
				return "pp"
			case strings.HasPrefix(prompt, "Code"):
				return regexp.MustCompile(`\d{6}`).FindString((*mails)[len(*mails)-1].Body)
			}
			return ""
		}), nil, "bob", host, "src")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	var asked []string
	right := promptFunc(func(prompt string) string {
		asked = append(asked, prompt)
		return regexp.MustCompile(`\d{6}`).FindString((*mails)[len(*mails)-1].Body)
	})
	wrong := promptFunc(func(prompt string) string { asked = append(asked, prompt); return "000000" })

	l := login("")
	if l.SecondFactorDone() {
		t.Fatal("a login without a host gave the second factor")
	}
	if err := s.SecondFactor(ctx, right, l, "why"); err != nil {
		t.Fatal(err)
	}
	if err := s.SecondFactor(ctx, wrong, l, "why"); err != nil || len(asked) != 1 || asked[0] != "Code sent to b***@x.test: " {
		t.Fatalf("second change: %v, asked %q; want one question in all", err, asked)
	}

	asked = nil
	if err := s.SecondFactor(ctx, wrong, login("h"), "why"); err != nil || len(asked) != 0 {
		t.Fatalf("a login that gave the code: %v, asked %q", err, asked)
	}

	l = login("")
	asked = nil
	var d *Denied
	if err := s.SecondFactor(ctx, wrong, l, "why"); !errors.As(err, &d) || d.Message != "rr: wrong code" || len(asked) != 3 {
		t.Fatalf("three wrong codes: %v, asked %q", err, asked)
	}
	n := len(*mails)
	asked = nil
	if err := s.SecondFactor(ctx, right, l, "why"); !errors.As(err, &d) || !strings.Contains(d.Message, "reconnect") || len(asked) != 0 {
		t.Fatalf("after a refused round: %v, asked %q", err, asked)
	}
	if len(*mails) != n {
		t.Fatal("a code was mailed after the connection's round was refused")
	}
}
