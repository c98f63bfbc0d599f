package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// target is where a person's Go SSH client connects: the gateway (login
// pN+h0: key, then the host's passphrase and the mailed code during
// keyboard-interactive) or the one-hop endpoint (key only).
type target struct {
	name    string
	addr    string
	hostKey ssh.PublicKey
	gateway bool
	proc    *child // the process whose CPU counts as "the endpoint's"
	// OpenSSH's sshd (see keystrokeTargets): the login name, the command
	// a shell runs ("" for the login shell) and the jump host's address
	// ("" for none).
	login, command, jump string
}

func (t target) dial(person int) (*ssh.Client, error) {
	user := personName(person)
	switch {
	case t.gateway:
		user += "+" + sessionHost
	case t.login != "":
		user = t.login
	}
	return t.dialUser(person, user)
}

// dialUser logs person in under login name user (their own name alone:
// the key, no host, no factors asked at login).
func (t target) dialUser(person int, user string) (*ssh.Client, error) {
	email := personEmail(person)
	if t.gateway {
		for drained := false; !drained; { // codes of an earlier, failed login
			select {
			case <-mailFor(email):
			default:
				drained = true
			}
		}
	}
	answers := ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
		out := make([]string, len(questions))
		for i, q := range questions {
			switch {
			case strings.HasPrefix(q, "Passphrase for"):
				out[i] = passphrase
			case strings.HasPrefix(q, "Code sent to"):
				select {
				case out[i] = <-mailFor(email):
				case <-time.After(30 * time.Second):
					return nil, errors.New("no code mailed to " + email)
				}
			default:
				return nil, fmt.Errorf("unexpected prompt %q", q)
			}
		}
		return out, nil
	})
	nc, err := t.dialTCP(person, user)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	cc, chans, reqs, err := ssh.NewClientConn(nc, t.addr, &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(personKey(person)), answers},
		HostKeyCallback: ssh.FixedHostKey(t.hostKey),
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: login as %s: %w", t.name, user, err)
	}
	nc.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// dialTCP connects to t's address: straight, or as ssh -J does, through
// a direct-tcpip channel of a login to the jump host (which goes when
// the connection does).
func (t target) dialTCP(person int, user string) (net.Conn, error) {
	if t.jump == "" {
		return net.DialTimeout("tcp", t.addr, 10*time.Second)
	}
	hop := t
	hop.name, hop.addr, hop.jump = t.name+" (jump host)", t.jump, ""
	jc, err := hop.dialUser(person, user)
	if err != nil {
		return nil, err
	}
	nc, err := jc.Dial("tcp", t.addr)
	if err != nil {
		jc.Close()
		return nil, fmt.Errorf("%s: through the jump host: %w", t.name, err)
	}
	return jumpConn{nc, jc}, nil
}

// jumpConn is a connection through a jump host; closing it logs out of
// the jump host too.
type jumpConn struct {
	net.Conn
	jump *ssh.Client
}

func (c jumpConn) Close() error {
	err := c.Conn.Close()
	c.jump.Close()
	return err
}

// shell is an interactive PTY shell and a reader of its output.
type shell struct {
	c   *ssh.Client
	s   *ssh.Session
	in  io.WriteCloser
	out chan []byte
}

// openShell asks for a PTY and a shell on c (command, or the login
// shell when it is "") and waits for the shell's first byte.
func openShell(c *ssh.Client, command string) (*shell, error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	in, _ := s.StdinPipe()
	stdout, _ := s.StdoutPipe()
	if err := s.RequestPty("xterm", 40, 120, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		s.Close()
		return nil, err
	}
	start := s.Shell
	if command != "" {
		start = func() error { return s.Start(command) }
	}
	if err := start(); err != nil {
		s.Close()
		return nil, err
	}
	sh := &shell{c: c, s: s, in: in, out: make(chan []byte, 64)}
	go func() {
		defer close(sh.out)
		for {
			b := make([]byte, 4096)
			n, err := stdout.Read(b)
			if n > 0 {
				sh.out <- b[:n]
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case b, ok := <-sh.out:
		if !ok || len(b) == 0 {
			return nil, errors.New("shell ended before its first byte")
		}
	case <-time.After(60 * time.Second):
		return nil, errors.New("no shell output in 60 s")
	}
	return sh, nil
}

// quiet reads output until none has come for d.
func (sh *shell) quiet(d time.Duration) {
	for {
		select {
		case _, ok := <-sh.out:
			if !ok {
				return
			}
		case <-time.After(d):
			return
		}
	}
}

// roundTrip writes p and waits for n bytes of output.
func (sh *shell) roundTrip(p []byte, n int) (time.Duration, error) {
	t0 := time.Now()
	if _, err := sh.in.Write(p); err != nil {
		return 0, err
	}
	for got := 0; got < n; {
		select {
		case b, ok := <-sh.out:
			if !ok {
				return 0, errors.New("shell ended")
			}
			got += len(b)
		case <-time.After(10 * time.Second):
			return 0, errors.New("no echo in 10 s")
		}
	}
	return time.Since(t0), nil
}

func (sh *shell) close() {
	sh.s.Close()
	sh.c.Close()
}
