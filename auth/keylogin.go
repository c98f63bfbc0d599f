package auth

import (
	"context"
	"errors"
)

// ErrQuestions is KeyLogin's answer for a login that must ask something
// before it is complete: a Team: prompt, or the factors of the host named
// in the login name. Interactive, with the key's person as known, asks.
var ErrQuestions = errors.New("auth: the login has questions to ask")

// KeyLogin completes, without asking anything, the login of p, whose key
// a client has just proven it holds, when nothing needs asking at login
// time: no host in the login name, and one Rapid Response team (or none,
// for an admin). What a connection does next asks what it needs: a
// session its host's passphrase and the code (on its terminal), a console
// change the second factor; a download needs no more.
//
// Otherwise it returns ErrQuestions, having counted and audited nothing,
// so that Interactive does the whole login once, asking.
func (s *Service) KeyLogin(ctx context.Context, p Person, loginName, loginHost, source string) (*Login, error) {
	if loginHost != "" {
		return nil, ErrQuestions
	}
	teams, err := s.cfg.Directory.TeamsOf(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, t := range teams {
		if t.RapidResponse {
			n++
		}
	}
	if n > 1 {
		return nil, ErrQuestions
	}
	// With one team or none, Interactive asks nothing; if the teams
	// changed meanwhile and it would ask, noQuestions fails the login.
	return s.Interactive(ctx, noQuestions{}, &p, loginName, "", source)
}

// noQuestions is the Prompter of a login that asks nothing.
type noQuestions struct{}

func (noQuestions) Ask(context.Context, string, string, bool) (string, error) {
	return "", ErrQuestions
}
