package auth

// Fresh is a new Login for the same person, team and source with no
// host's passphrase and no second factor given: the web console asks them
// for each session, as a new SSH connection would. Whether the person
// and team still qualify is the caller's to check when the session opens
// (as it is for a long-lived SSH connection).
func (l *Login) Fresh() *Login {
	return &Login{Person: l.Person, Team: l.Team, Source: l.Source, hosts: map[string]Secret{}}
}
