package gateway

// A person's session channel before it reaches a host: what the client
// asks for first (pty, environment), and the host's factors asked on its
// terminal.

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/internal/termtext"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/wire"
)

// maxEnvValue bounds an accepted environment value (LANG, TZ, LC_*).
const maxEnvValue = 256

// setup is what a client asked for before naming the host.
type setup struct {
	pty *wire.PTYRequest
	env []wire.Env
}

// preStart is a person's session channel before it reaches a host: the
// channel, its requests, what they set up and the session's log. The
// menu, the factors asked on the terminal, the console, downloads and the
// start of the session itself are its methods, so that what the channel
// needs travels with it instead of from hand to hand.
type preStart struct {
	*personConn
	ch   ssh.Channel
	reqs <-chan *ssh.Request
	st   setup
	log  *slog.Logger
}

// end tells the person line (as a terminal wants it, when there is one)
// and ends the channel's command with status.
func (c *preStart) end(status uint32, line string) {
	writeLine(c.ch, c.st.pty != nil, line)
	sendExitStatus(c.ch, status)
}

// handle applies one pre-start request. It returns true when req starts
// the session (shell, exec, subsystem); the caller replies to it.
func (st *setup) handle(c *personConn, req *ssh.Request) bool {
	ok := false
	switch req.Type {
	case wire.ReqShell, wire.ReqExec, wire.ReqSubsystem:
		return true
	case wire.ReqPTY:
		var p wire.PTYRequest
		if wire.Unmarshal(req.Type, req.Payload, &p) == nil && st.pty == nil {
			st.pty, ok = &p, true
		}
	case wire.ReqEnv:
		var e wire.Env
		if wire.Unmarshal(req.Type, req.Payload, &e) == nil && len(st.env) < 64 && len(e.Value) <= maxEnvValue && wire.AcceptEnv(e.Name) {
			st.env, ok = append(st.env, e), true
		}
	case wire.ReqWindowChange:
		var w wire.WindowChange
		if wire.Unmarshal(req.Type, req.Payload, &w) == nil && st.pty != nil {
			st.pty.Columns, st.pty.Rows, st.pty.Width, st.pty.Height = w.Columns, w.Rows, w.Width, w.Height
		}
	case wire.ReqX11, wire.ReqAuthAgent:
		c.refuse(req.Type)
	}
	if req.WantReply {
		req.Reply(ok, nil)
	}
	return false
}

// refuse logs and audits a refused forwarding request.
func (c *personConn) refuse(what string) {
	c.log.Warn("forwarding refused", "request", what)
	c.srv.audit(store.AuditEvent{Actor: c.person, Action: "forward", Target: what, Outcome: "denied",
		Source: c.remote, Detail: "forwarding is disabled"})
}

// hostFactors makes sure this connection has given host's passphrase and
// the second factor, asking on the session's terminal (echo off) what the
// keyboard-interactive login did not. Without a terminal they cannot be
// asked, and the person is told how to do it.
func (c *preStart) hostFactors(ctx context.Context, host string) (auth.Secret, bool) {
	if pp, ok := c.login.Take(host); ok { // one entry, one session
		return pp, true
	}
	pty := c.st.pty != nil
	if !pty {
		c.end(1, noTerminalMessage(host, c.loginHost))
		return auth.Secret{}, false
	}
	var pp auth.Secret
	var err error
	ctx, cancel := context.WithTimeoutCause(ctx, c.srv.cfg.PromptGraceTime, errors.New("prompt timed out"))
	defer cancel()
	talked := c.converse(ctx, func() {
		pp, err = c.srv.cfg.Auth.HostFactors(ctx, terminalPrompter{c.ch}, c.login, host)
	})
	if !talked {
		return auth.Secret{}, false
	}
	if err != nil {
		var d *auth.Denied
		msg := "rr: permission denied"
		if errors.As(err, &d) && d.Message != "" {
			msg = d.Message
		} else if errors.Is(err, errAbandoned) {
			msg = "rr: cancelled"
		} else if !errors.As(err, &d) {
			c.log.Info("factors not given", "err", err)
		}
		c.end(1, msg)
		return auth.Secret{}, false
	}
	return pp, true
}

// terminalPrompter asks auth's questions on the session's terminal.
type terminalPrompter struct{ ch ssh.Channel }

var errAbandoned = errors.New("the person left the prompt")

func (t terminalPrompter) Ask(_ context.Context, instruction, prompt string, echo bool) (string, error) {
	// On stderr, as sudo's prompt goes to the terminal: with the output
	// redirected (ssh -t … > file), the prompt still shows, and is not in
	// the file.
	w := t.ch.Stderr()
	if instruction != "" {
		io.WriteString(w, termtext.Escape(instruction)+"\r\n")
	}
	io.WriteString(w, termtext.Escape(prompt))
	line, ok := readLine(t.ch, 256, echo)
	io.WriteString(w, "\r\n")
	if !ok {
		return "", errAbandoned
	}
	return line, nil
}
