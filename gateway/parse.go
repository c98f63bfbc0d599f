package gateway

import (
	"errors"
	"strings"

	"github.com/rr-gateway/rr/store"
)

// ServiceLogin is the login name people use when they do not log in under
// their own name: ssh rr@gateway.
const ServiceLogin = "rr"

var errBadHostName = errors.New("bad host name")

// Login is a parsed SSH login name: "rr", "rr+web-01", "alice" or
// "alice+web-01".
type Login struct {
	Name string // "rr" or the person's own name
	Host string // "" unless the login name carried one
}

// ParseLogin splits an SSH user name of the form NAME[+HOST]. Both parts
// must be valid names (store.ValidName); the host part may not be empty.
func ParseLogin(user string) (Login, error) {
	name, host, hasHost := strings.Cut(user, "+")
	if !store.ValidName(name) {
		return Login{}, errors.New("bad login name")
	}
	if hasHost && !store.ValidName(host) {
		return Login{}, errBadHostName
	}
	return Login{Name: name, Host: host}, nil
}

// Target is what an exec request asks for.
type Target struct {
	Host    string // "" when the command did not name one
	Command string // "" for an interactive shell
}

// ParseCommand splits an exec request's command. When the login name named
// no host, the first word is the host and the rest, after an optional "--",
// is the command run there (ssh rr@gw web-01 -- uptime). When the login name
// named the host, the whole command runs there. The command text after the
// host is passed on byte for byte: the host's shell parses it, as with sshd.
func ParseCommand(loginHost, command string) (Target, error) {
	if loginHost != "" {
		return Target{Host: loginHost, Command: command}, nil
	}
	rest := strings.TrimLeft(command, " \t")
	host := rest
	if i := strings.IndexAny(rest, " \t"); i >= 0 {
		host, rest = rest[:i], rest[i:]
	} else {
		rest = ""
	}
	if !store.ValidName(host) {
		return Target{}, errBadHostName
	}
	rest = strings.TrimLeft(rest, " \t")
	if rest == "--" {
		rest = ""
	} else if after, ok := strings.CutPrefix(rest, "-- "); ok {
		rest = after
	} else if after, ok := strings.CutPrefix(rest, "--\t"); ok {
		rest = after
	}
	return Target{Host: host, Command: rest}, nil
}
