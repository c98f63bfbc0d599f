package gateway

import (
	"context"
	"errors"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/internal/prelogin"
)

// keyPersonKey is the Permissions.ExtraData key of the person a key
// belongs to, from PublicKeyCallback to verifiedKey.
type keyPersonKey struct{}

// verifiedKey runs once a client has proven it holds a registered key.
// When nothing must be asked at login (no host in the login name, one
// team), the login is complete with the key alone: clients that cannot go
// on to keyboard-interactive after a partial success (BatchMode, sftp -b,
// paramiko, rclone) reach the console, the downloads, and sessions whose
// host factors are asked on their terminal. Otherwise keyboard-interactive
// asks the rest, as before.
//
// nc is the connection the callback serves (nil: none), whose deadline
// keyboard-interactive moves once identity is proven.
func (s *Server) verifiedKey(nc *prelogin.Conn) func(ssh.ConnMetadata, ssh.PublicKey, *ssh.Permissions, string) (*ssh.Permissions, error) {
	return func(meta ssh.ConnMetadata, _ ssh.PublicKey, perms *ssh.Permissions, _ string) (*ssh.Permissions, error) {
		return s.keyLogin(meta, perms, nc)
	}
}

// keyLogin completes a login with the key alone, or hands over to
// keyboard-interactive (see verifiedKey).
func (s *Server) keyLogin(meta ssh.ConnMetadata, perms *ssh.Permissions, nc *prelogin.Conn) (*ssh.Permissions, error) {
	p, ok := perms.ExtraData[keyPersonKey{}].(auth.Person)
	if !ok {
		return nil, errDenied
	}
	login, err := ParseLogin(meta.User())
	if err != nil {
		return nil, errDenied
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.LoginGraceTime)
	defer cancel()
	l, err := s.cfg.Auth.KeyLogin(ctx, p, login.Name, login.Host, meta.RemoteAddr().String())
	if errors.Is(err, auth.ErrQuestions) {
		return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
			KeyboardInteractiveCallback: s.interactive(&p, nc),
		}}
	}
	if err != nil {
		return nil, endLogin(meta, s.loginDenied(meta, err))
	}
	return loginPermissions(l, login.Host), nil
}

// endLogin ends a login refused after its key was proven (role, team,
// lockout, rate limit): a password would be refused the same, so no
// method is left to try (ssh reads "Permission denied ()" after the reason)
// rather than a Username: prompt that cannot help. The reason goes out as
// a banner first.
func endLogin(meta ssh.ConnMetadata, err error) error {
	pc, ok := meta.(ssh.ServerPreAuthConn)
	if !ok {
		return err // the reason at least, in the failure's banner
	}
	var b *ssh.BannerError
	if errors.As(err, &b) && b.Message != "" {
		if pc.SendAuthBanner(b.Message) != nil {
			return err
		}
	}
	return &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{}}
}

// loginDenied is what the client is told of a refused login: the reason
// in a banner when the person may read it, else a plain denial.
func (s *Server) loginDenied(meta ssh.ConnMetadata, err error) error {
	var d *auth.Denied
	if errors.As(err, &d) && d.Message != "" {
		return &ssh.BannerError{Err: errDenied, Message: d.Message + "\n"}
	}
	if !errors.As(err, &d) {
		s.log.Info("login abandoned or failed", "err", err, "remote", meta.RemoteAddr().String())
	}
	return errDenied
}

// loginPermissions carries a completed login to the connection's handler.
// The Login rides on the connection's Permissions: if the handshake fails
// after this, it goes with the connection (a map beside it would keep a
// passphrase forever).
func loginPermissions(l *auth.Login, loginHost string) *ssh.Permissions {
	return &ssh.Permissions{Extensions: map[string]string{
		extPerson:    l.Person.Name,
		extLoginHost: loginHost,
	}, ExtraData: map[any]any{loginKey{}: l}}
}

// endInstructions ends the instruction of every keyboard-interactive round
// with a line break: clients that print it as sent (Dropbear) glue it to
// the next prompt otherwise ("Team: ops_RRPassphrase for web-01:").
// OpenSSH ends the line itself, so it would show a blank line: it gets the
// instruction as it is.
func endInstructions(meta ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) ssh.KeyboardInteractiveChallenge {
	if strings.HasPrefix(string(meta.ClientVersion()), "SSH-2.0-OpenSSH") {
		return client
	}
	return func(name, instruction string, questions []string, echos []bool) ([]string, error) {
		if instruction != "" && !strings.HasSuffix(instruction, "\n") {
			instruction += "\n"
		}
		return client(name, instruction, questions, echos)
	}
}
