package gateway

import (
	"fmt"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/internal/termtext"
	"github.com/rr-gateway/rr/wire"
)

// maxAgentString bounds a string an agent sends on a session (an exit
// signal's name, its message) before it reaches the person, the store or
// the recording.
const maxAgentString = 256

// exitRequest checks a request from the host's side of a session. Only a
// well-formed exit-status or exit-signal goes on to the person: it reports
// true, notes the exit in end, and replaces req.Payload with what it
// checked, re-encoded (a signal name of at most maxAgentString bytes of
// [A-Za-z0-9@._+-], a message bounded and escaped, no language tag).
// Anything else is for the caller to drop.
func exitRequest(req *ssh.Request, end *SessionEnd) bool {
	switch req.Type {
	case wire.ReqExitStatus:
		var e wire.ExitStatus
		if wire.Unmarshal(req.Type, req.Payload, &e) != nil {
			return false
		}
		status := int(e.Status)
		end.ExitStatus, end.Reason = &status, fmt.Sprintf("exit %d", status)
		req.Payload = ssh.Marshal(&e)
		return true
	case wire.ReqExitSignal:
		var e wire.ExitSignal
		if wire.Unmarshal(req.Type, req.Payload, &e) != nil || !signalName(e.Signal) {
			return false
		}
		e.Error = termtext.Bound(termtext.Escape(e.Error), maxAgentString)
		e.Lang = ""
		end.Signal, end.Reason = e.Signal, "signal "+e.Signal
		req.Payload = ssh.Marshal(&e)
		return true
	}
	return false
}

// signalName reports whether s can be a signal's name (RFC 4254 §6.10:
// "TERM", or "name@domain" for a local one).
func signalName(s string) bool {
	if s == "" || len(s) > maxAgentString {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '@', c == '.', c == '_', c == '+', c == '-':
		default:
			return false
		}
	}
	return true
}

// dropAgentRequest refuses a request from the host's side that does not
// go on to the person; the first one a session drops is logged.
func (ss *session) dropAgentRequest(req *ssh.Request, logged *bool) {
	if req.WantReply {
		req.Reply(false, nil)
	}
	if !*logged {
		*logged = true
		ss.log.Warn("request from the host's side dropped (further ones are dropped silently)",
			"request", termtext.Bound(termtext.Escape(req.Type), maxAgentString), "payload_bytes", len(req.Payload))
	}
}
