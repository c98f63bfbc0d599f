package gateway

import "fmt"

// noTerminalMessage tells a person why a session without a terminal
// cannot open host, and what to do. loginHost is the host named in the
// connection's login: its passphrase was asked at login and used by the
// connection's first session (each session needs it anew), which is what
// a second session over an OpenSSH ControlMaster connection meets.
func noTerminalMessage(host, loginHost string) string {
	if loginHost == host {
		return fmt.Sprintf("rr: the passphrase for %s given at login was used by this connection's first session, "+
			"and each session needs it anew: add -t to be asked on the terminal, "+
			"or open a new connection (with ssh's connection sharing: ssh -S none …)", host)
	}
	return fmt.Sprintf("rr: the passphrase for %s cannot be asked without a terminal: "+
		"add -t (ssh -t rr@GATEWAY %s …), or name the host in the login (ssh rr+%s@GATEWAY …)", host, host, host)
}
