package auth

import (
	"context"
	"testing"
)

// TestFreshAsksAgain: a Fresh login keeps who and the team but none of
// the factors: the web console's next session asks the passphrase and
// the code again, as a new SSH connection would.
func TestFreshAsksAgain(t *testing.T) {
	s, mails := bobMailed(t)
	ctx := context.Background()
	var asked []string
	p := bobAnswers(mails, &asked)
	l, err := s.Interactive(ctx, p, nil, "bob", "h", "src")
	if err != nil {
		t.Fatal(err)
	}
	f := l.Fresh()
	if f.Person.Name != "bob" || f.Team.Name != l.Team.Name || f.Source != "src" || f.SecondFactorDone() {
		t.Fatalf("fresh login %+v", f)
	}
	if _, ok := f.Take("h"); ok {
		t.Fatal("a fresh login kept the host's passphrase")
	}
	asked = nil
	if pp, err := s.HostFactors(ctx, p, f, "h"); err != nil || pp.Reveal() != "pp" || len(asked) != 2 {
		t.Fatalf("fresh login's factors: %v, asked %q", err, asked)
	}
}
