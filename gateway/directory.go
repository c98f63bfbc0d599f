package gateway

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/store"
)

// DirectoryStore is the part of the store auth reads through the gateway.
type DirectoryStore interface {
	PersonByName(ctx context.Context, name string) (store.Person, error)
	PersonByKey(ctx context.Context, fingerprint string) (store.Person, error)
	TeamsOf(ctx context.Context, person string) ([]store.Team, error)
	Host(ctx context.Context, name string) (store.Host, error)
	UseTOTPStep(ctx context.Context, person string, step int64) (bool, error)
}

// StoreDirectory adapts the store to auth.Directory.
func StoreDirectory(st DirectoryStore) auth.Directory { return directory{st} }

type directory struct{ st DirectoryStore }

func found(err error) (bool, error) {
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func person(p store.Person) auth.Person {
	return auth.Person{Name: p.Name, Email: p.Email, Role: p.Role, PasswordHash: p.PasswordHash, TOTPSecret: p.TOTPSecret}
}

func (d directory) PersonByName(ctx context.Context, name string) (auth.Person, bool, error) {
	p, err := d.st.PersonByName(ctx, name)
	ok, err := found(err)
	return person(p), ok, err
}

func (d directory) PersonByKey(ctx context.Context, fp string) (auth.Person, bool, error) {
	p, err := d.st.PersonByKey(ctx, fp)
	ok, err := found(err)
	return person(p), ok, err
}

func (d directory) TeamsOf(ctx context.Context, name string) ([]auth.Team, error) {
	ts, err := d.st.TeamsOf(ctx, name)
	out := make([]auth.Team, 0, len(ts))
	for _, t := range ts {
		out = append(out, authTeam(t))
	}
	return out, err
}

func (d directory) Host(ctx context.Context, name string) (auth.Host, bool, error) {
	h, err := d.st.Host(ctx, name)
	ok, err := found(err)
	return authHost(h), ok, err
}

func (d directory) UseTOTPStep(ctx context.Context, person string, step int64) (bool, error) {
	return d.st.UseTOTPStep(ctx, person, step)
}

func authTeam(t store.Team) auth.Team {
	return auth.Team{Name: t.Name, RapidResponse: t.RapidResponse, Hosts: t.Hosts}
}

func authHost(h store.Host) auth.Host {
	return auth.Host{Name: h.Name, Labels: h.Labels, PassphraseVerifier: h.PassphraseVerifier}
}

// AuditStore is where AuthAudit writes.
type AuditStore interface {
	Audit(ctx context.Context, e store.AuditEvent) error
}

// AuthAudit returns an auth.Config.Audit function that records auth's
// decisions in the store as "auth.<action>" events, at once; a gateway's
// own Server.AuthAudit also keeps them while the store is down.
func AuthAudit(st AuditStore, log *slog.Logger) func(auth.Event) {
	return func(e auth.Event) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := st.Audit(ctx, authEvent(e)); err != nil {
			log.Error("audit write failed", "err", err, "action", e.Action)
		}
	}
}

// AuthAudit records one of auth's decisions as an "auth.<action>" event
// the way the gateway's own are: while the store does not answer it
// waits, in order, rather than being lost (see finalizer).
func (s *Server) AuthAudit(e auth.Event) {
	ev := authEvent(e)
	ev.Time = s.cfg.Now()
	s.audit(ev)
}

func authEvent(e auth.Event) store.AuditEvent {
	return store.AuditEvent{Time: time.Now(), Actor: e.Person, Action: "auth." + e.Action,
		Target: e.Target, Outcome: e.Outcome, Detail: e.Reason, Source: e.Source}
}
