package gateway

import (
	"errors"
	"strings"

	"github.com/rr-gateway/rr/events"
	"github.com/rr-gateway/rr/store"
)

// ServiceLogin is the login name people use when they do not log in under
// their own name: ssh rr@gateway.
const ServiceLogin = "rr"

var errBadHostName = errors.New("bad host name")

// Login is a parsed SSH login name: "rr", "rr+web-01", "alice",
// "alice+web-01" or "rr+event:e-7f3a9c".
type Login struct {
	Name  string // "rr" or the person's own name
	Host  string // "" unless the login name carried one
	Event string // the event id of "NAME+event:ID" (Host is then "")
}

// eventPrefix starts a target that names a security event rather than a
// host: ssh rr@gw event:e-7f3a9c.
const eventPrefix = "event:"

// ParseLogin splits an SSH user name of the form NAME[+HOST] or
// NAME+event:ID. Both parts must be valid names (store.ValidName); the
// host part may not be empty.
func ParseLogin(user string) (Login, error) {
	name, host, hasHost := strings.Cut(user, "+")
	if !store.ValidName(name) {
		return Login{}, errors.New("bad login name")
	}
	if id, ok := strings.CutPrefix(host, eventPrefix); hasHost && ok {
		if !events.ValidID(id) {
			return Login{}, errBadEventID
		}
		return Login{Name: name, Event: id}, nil
	}
	if hasHost && !store.ValidName(host) {
		return Login{}, errBadHostName
	}
	return Login{Name: name, Host: host}, nil
}

var errBadEventID = errors.New("bad event id")

// Target is what an exec request asks for.
type Target struct {
	Host    string // "" when the command did not name one
	Event   string // the event id when the command named event:ID (Host is then its host, once known)
	Command string // "" for an interactive shell
}

// ParseCommand splits an exec request's command. When the login name named
// no host, the first word is the host (or event:ID) and the rest, after an optional "--",
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
	event := ""
	if id, ok := strings.CutPrefix(host, eventPrefix); ok {
		if !events.ValidID(id) {
			return Target{}, errBadEventID
		}
		host, event = "", id
	} else if !store.ValidName(host) {
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
	return Target{Host: host, Event: event, Command: rest}, nil
}
