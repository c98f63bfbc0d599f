package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rr-gateway/rr/store"
)

// SetHostPassphrase stores host's passphrase verifier (never the
// passphrase).
func (s *Store) SetHostPassphrase(ctx context.Context, host, verifier string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE hosts SET passphrase_verifier = ? WHERE name = ?`, verifier, host)
	if err != nil {
		return fmt.Errorf("store: passphrase of %s: %w", host, err)
	}
	return mustAffect(res, "host "+host)
}

// SetHostLabels replaces host's labels ("K=V" each).
func (s *Store) SetHostLabels(ctx context.Context, host string, labels []string) error {
	l := append([]string(nil), labels...)
	sort.Strings(l)
	res, err := s.db.ExecContext(ctx, `UPDATE hosts SET labels = ? WHERE name = ?`, strings.Join(l, ","), host)
	if err != nil {
		return fmt.Errorf("store: labels of %s: %w", host, err)
	}
	return mustAffect(res, "host "+host)
}

// UpsertHost creates host if it does not exist; it never clears its key.
func (s *Store) UpsertHost(ctx context.Context, name string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO hosts (name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING`,
		name, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("store: upsert host %s: %w", name, err)
	}
	return nil
}

// CreateHost adds a new host with labels ("K=V" each); one by that name
// already is ErrConflict.
func (s *Store) CreateHost(ctx context.Context, name string, labels []string) error {
	l := append([]string(nil), labels...)
	sort.Strings(l)
	_, err := s.db.ExecContext(ctx, `INSERT INTO hosts (name, created_at, labels) VALUES (?, ?, ?)`,
		name, time.Now().UnixNano(), strings.Join(l, ","))
	if isConstraint(err) {
		return fmt.Errorf("%w: host %s exists", store.ErrConflict, name)
	}
	if err != nil {
		return fmt.Errorf("store: create host %s: %w", name, err)
	}
	return nil
}

// DeleteHost removes a host and its enrollment tokens. Its sessions stay.
func (s *Store) DeleteHost(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM hosts WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("store: delete host %s: %w", name, err)
	}
	return mustAffect(res, "host "+name)
}

// SetAgentKey binds an agent key to host.
func (s *Store) SetAgentKey(ctx context.Context, host, authorizedKey string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE hosts SET agent_key = ? WHERE name = ?`, authorizedKey, host)
	if err != nil {
		return fmt.Errorf("store: set agent key of %s: %w", host, err)
	}
	return mustAffect(res, "host "+host)
}

const hostCols = `name, agent_key, created_at, last_seen, labels, passphrase_verifier`

func scanHost(sc interface{ Scan(...any) error }) (store.Host, error) {
	var h store.Host
	var created, seen int64
	var labels string
	if err := sc.Scan(&h.Name, &h.AgentKey, &created, &seen, &labels, &h.PassphraseVerifier); err != nil {
		return store.Host{}, err
	}
	h.CreatedAt, h.LastSeen = fromNanos(created), fromNanos(seen)
	if labels != "" {
		h.Labels = strings.Split(labels, ",")
	}
	return h, nil
}

// Host returns one host.
func (s *Store) Host(ctx context.Context, name string) (store.Host, error) {
	h, err := scanHost(s.db.QueryRowContext(ctx, `SELECT `+hostCols+` FROM hosts WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Host{}, fmt.Errorf("%w: host %s", store.ErrNotFound, name)
	}
	if err != nil {
		return store.Host{}, fmt.Errorf("store: host %s: %w", name, err)
	}
	return h, nil
}

// Hosts returns every host, ordered by name.
func (s *Store) Hosts(ctx context.Context) ([]store.Host, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+hostCols+` FROM hosts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: hosts: %w", err)
	}
	defer rows.Close()
	var out []store.Host
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, fmt.Errorf("store: hosts: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// TouchHost records that host's agent was seen at t.
func (s *Store) TouchHost(ctx context.Context, name string, t time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE hosts SET last_seen = ? WHERE name = ?`, nanos(t), name)
	if err != nil {
		return fmt.Errorf("store: touch host %s: %w", name, err)
	}
	return mustAffect(res, "host "+name)
}
