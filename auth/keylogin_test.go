package auth

import (
	"context"
	"errors"
	"testing"
)

// KeyLogin completes a login only when nothing is to be asked, and when it
// leaves the login to Interactive it has audited and counted nothing: the
// login is audited once, by whichever completes it.
func TestKeyLoginAsksNothing(t *testing.T) {
	s, events, _ := bobWithAuthenticator(t)
	dir := s.cfg.Directory.(*fakeDir)
	bob := dir.people["bob"]
	ctx := context.Background()

	l, err := s.KeyLogin(ctx, bob, ServiceLogin, "", "src")
	if err != nil || l.Team.Name != "t_RR" {
		t.Fatalf("one team, no host: %+v %v", l, err)
	}
	if len(*events) != 2 || (*events)[0].Action != "login" || (*events)[0].Reason != "publickey" || (*events)[1].Action != "team" {
		t.Fatalf("audited %+v, want the key login and the team", *events)
	}
	if _, ok := l.Passphrase("h"); ok {
		t.Fatal("a key-alone login holds a passphrase")
	}

	*events = nil
	if _, err := s.KeyLogin(ctx, bob, ServiceLogin, "h", "src"); !errors.Is(err, ErrQuestions) {
		t.Fatalf("host in the login: %v, want ErrQuestions", err)
	}
	dir.teams["bob"] = append(dir.teams["bob"], Team{Name: "u_RR", RapidResponse: true})
	if _, err := s.KeyLogin(ctx, bob, ServiceLogin, "", "src"); !errors.Is(err, ErrQuestions) {
		t.Fatalf("two teams: %v, want ErrQuestions", err)
	}
	if len(*events) != 0 {
		t.Fatalf("handing over audited %+v", *events)
	}

	// A refusal is a refusal, with its reason.
	dir.teams["bob"] = dir.teams["bob"][:1]
	bob.Role = "standard"
	var d *Denied
	if _, err := s.KeyLogin(ctx, bob, ServiceLogin, "", "src"); !errors.As(err, &d) || d.Message == "" {
		t.Fatalf("standard role: %v", err)
	}
}
