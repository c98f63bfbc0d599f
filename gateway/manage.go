package gateway

import (
	"context"
	"errors"
	"io"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/admin"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/wire"
)

// What a person reaches on the gateway itself, without naming a host: the
// rr-admin console (subsystem "rr-admin") and the read-only tree of
// recordings (subsystem "sftp", and "scp -f" for the legacy protocol).
const (
	SubsystemAdmin = "rr-admin"
	SubsystemSFTP  = "sftp"
)

// liveBytes returns a live session's byte counters.
func (s *Server) liveBytes(id string) (in, out int64, ok bool) {
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil {
		return 0, 0, false
	}
	return ss.bytesIn.Load(), ss.bytesOut.Load(), true
}

// errNoLongerAllowed ends a console or refuses a download for someone
// whose role or team changed since they logged in.
var errNoLongerAllowed = errors.New("your role or team has changed since you logged in; log in again")

// caller is who runs the console or a download on this connection, as the
// store has them now, not as they were at login: a demotion, a removal,
// leaving the team or the team losing Rapid Response takes effect at once
// on connections already open. The team stays the one logged in under, if
// they are still in it.
func (c *personConn) caller(ctx context.Context) (admin.Caller, error) {
	who, _, err := c.current(ctx)
	return who, err
}

// current is caller, with the team as it is now (its hosts included).
func (c *personConn) current(ctx context.Context) (admin.Caller, store.Team, error) {
	p, err := c.srv.cfg.Store.PersonByName(ctx, c.person)
	if errors.Is(err, store.ErrNotFound) {
		return admin.Caller{}, store.Team{}, errNoLongerAllowed
	}
	if err != nil {
		return admin.Caller{}, store.Team{}, err
	}
	var team store.Team
	if c.login.Team.Name != "" {
		teams, err := c.srv.cfg.Store.TeamsOf(ctx, c.person)
		if err != nil {
			return admin.Caller{}, store.Team{}, err
		}
		for _, t := range teams {
			if t.Name == c.login.Team.Name && t.RapidResponse {
				team = t
			}
		}
	}
	if p.Role != auth.RoleAdmin && (p.Role != auth.RoleAdvanced || team.Name == "") {
		return admin.Caller{}, store.Team{}, errNoLongerAllowed
	}
	return admin.Caller{Person: c.person, Role: p.Role, Team: team.Name, Source: c.remote, Login: c.login}, team, nil
}

// serveGatewaySubsystem runs a subsystem the gateway serves itself. It
// reports false for names it does not know.
func (c *preStart) serveGatewaySubsystem(ctx context.Context, start *ssh.Request) bool {
	var sub wire.Command
	if err := wire.Unmarshal(start.Type, start.Payload, &sub); err != nil {
		return false
	}
	switch sub.Command {
	case SubsystemAdmin:
		start.Reply(true, nil)
		c.serveAdmin(ctx)
	case SubsystemSFTP:
		d, err := c.downloads(ctx, c.ch)
		if err != nil {
			start.Reply(false, nil)
			return true
		}
		start.Reply(true, nil)
		c.converse(ctx, func() {
			err = d.ServeSFTP(ctx, c.ch)
		})
		if err != nil && !errors.Is(err, io.EOF) {
			c.log.Info("sftp ended", "err", err)
		}
		sendExitStatus(c.ch, 0)
	default:
		return false
	}
	return true
}

// serveAdmin runs the rr-admin console on the channel.
func (c *preStart) serveAdmin(ctx context.Context) {
	c.log.Info("admin console opened")
	c.srv.audit(store.AuditEvent{Actor: c.person, Action: "admin.console", Outcome: "allowed", Source: c.remote,
		Detail: "team " + c.login.Team.Name})
	tty := c.st.pty != nil
	failed := 0
	c.converse(ctx, func() {
		failed = c.srv.console.RunAs(ctx, c.caller, c.ch, c.ch, c.ch.Stderr(), tty)
	})
	status := uint32(0)
	if failed > 0 {
		status = 1
	}
	sendExitStatus(c.ch, status)
	c.log.Info("admin console closed", "failed_commands", failed)
}

// serveSCP runs a legacy "scp -f" (or refused "scp -t") exec.
func (c *preStart) serveSCP(ctx context.Context, command string) {
	d, err := c.downloads(ctx, c.ch)
	if err != nil {
		return
	}
	status := 1
	c.converse(ctx, func() {
		status = d.ServeSCP(ctx, command, c.ch, c.ch.Stderr())
	})
	sendExitStatus(c.ch, uint32(status))
}
