package wire

import (
	"fmt"

	"golang.org/x/crypto/ssh"
)

// ChannelSession is the channel type the gateway opens to an agent, one per
// person's session.
const ChannelSession = "rr-session@rr"

// Channel request names (RFC 4254 §6 and OpenSSH's extensions).
const (
	ReqPTY          = "pty-req"
	ReqEnv          = "env"
	ReqShell        = "shell"
	ReqExec         = "exec"
	ReqSubsystem    = "subsystem"
	ReqWindowChange = "window-change"
	ReqSignal       = "signal"
	ReqExitStatus   = "exit-status"
	ReqExitSignal   = "exit-signal"
	ReqEOW          = "eow@openssh.com"
	ReqX11          = "x11-req"
	ReqAuthAgent    = "auth-agent-req@openssh.com"
	ReqKeepalive    = "keepalive@openssh.com"
)

// SessionOpen is the extra data of a ChannelSession open request: who the
// session is for, so the agent can log it.
type SessionOpen struct {
	SessionID string
	Person    string
	Team      string
}

// PTYRequest is the payload of "pty-req".
type PTYRequest struct {
	Term    string
	Columns uint32
	Rows    uint32
	Width   uint32
	Height  uint32
	Modes   string
}

// WindowChange is the payload of "window-change".
type WindowChange struct {
	Columns uint32
	Rows    uint32
	Width   uint32
	Height  uint32
}

// Env is the payload of "env".
type Env struct {
	Name  string
	Value string
}

// Command is the payload of "exec" (the command) and "subsystem" (its name).
type Command struct {
	Command string
}

// Signal is the payload of "signal": a signal name without "SIG" ("INT").
type Signal struct {
	Name string
}

// ExitStatus is the payload of "exit-status".
type ExitStatus struct {
	Status uint32
}

// ExitSignal is the payload of "exit-signal".
type ExitSignal struct {
	Signal     string
	CoreDumped bool
	Error      string
	Lang       string
}

// Unmarshal decodes a request payload into v, naming the request in the
// error.
func Unmarshal(req string, payload []byte, v any) error {
	if err := ssh.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("wire: bad %s payload: %w", req, err)
	}
	return nil
}

// AcceptEnv is the allow-list of "env" requests, like sshd's AcceptEnv
// LANG LC_* (and TZ). The gateway answers with it before the host is
// known; the agent applies it again.
func AcceptEnv(name string) bool {
	return name == "LANG" || name == "TZ" || (len(name) > 3 && name[:3] == "LC_")
}
