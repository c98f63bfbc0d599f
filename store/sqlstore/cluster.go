package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rr-gateway/rr/store"
)

// Several gateways on one store (docs/architecture.md#several-gateways):
// leases, their expiry, kill requests and host presence. Each method is
// one statement or one transaction, with the same guarantees on SQLite
// and PostgreSQL (one peer wins an expiry; a request is taken once), as
// store/storetest's Cluster tests check on both.

var _ store.Cluster = (*Store)(nil)

// RenewLease records that l.Gateway is alive until l.Expires, and that it
// still holds the tunnels its presence rows name (seen at l.Renewed).
func (s *Store) RenewLease(ctx context.Context, l store.Lease) error {
	err := s.tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO gateway_leases (name, advertise, renewed_at, expires_at)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET advertise = excluded.advertise,
				renewed_at = excluded.renewed_at, expires_at = excluded.expires_at`,
			l.Gateway, l.Advertise, nanos(l.Renewed), nanos(l.Expires))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE host_presence SET last_seen = ? WHERE gateway = ?`, nanos(l.Renewed), l.Gateway)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: renew lease of %s: %w", l.Gateway, err)
	}
	return nil
}

// Leases lists every gateway's lease, expired or not, by name.
func (s *Store) Leases(ctx context.Context) ([]store.Lease, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, advertise, renewed_at, expires_at FROM gateway_leases ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: leases: %w", err)
	}
	defer rows.Close()
	var out []store.Lease
	for rows.Next() {
		var l store.Lease
		var renewed, expires int64
		if err := rows.Scan(&l.Gateway, &l.Advertise, &renewed, &expires); err != nil {
			return nil, fmt.Errorf("store: leases: %w", err)
		}
		l.Renewed, l.Expires = fromNanos(renewed), fromNanos(expires)
		out = append(out, l)
	}
	return out, rows.Err()
}

// Lease returns one gateway's lease; ErrNotFound if it has none (it never
// ran on this store, or a peer found it expired and took over).
func (s *Store) Lease(ctx context.Context, gateway string) (store.Lease, error) {
	l := store.Lease{Gateway: gateway}
	var renewed, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT advertise, renewed_at, expires_at FROM gateway_leases WHERE name = ?`,
		gateway).Scan(&l.Advertise, &renewed, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Lease{}, fmt.Errorf("%w: lease of gateway %s", store.ErrNotFound, gateway)
	}
	if err != nil {
		return store.Lease{}, fmt.Errorf("store: lease of %s: %w", gateway, err)
	}
	l.Renewed, l.Expires = fromNanos(renewed), fromNanos(expires)
	return l, nil
}

// ExpireGateways takes over from every gateway but self whose lease
// expired before now, in one transaction, so that of several peers
// looking at once exactly one does it: their live sessions become
// interrupted (the recording is in that gateway's spool), their presence
// rows and pending kill requests go, and their lease row goes (a gateway
// that comes back writes a new one).
//
// The claim is the lease row's DELETE … RETURNING, and the sessions are
// those the UPDATE … RETURNING changed: under PostgreSQL's READ
// COMMITTED a peer that looked at the same time waits for the row lock,
// then finds the lease gone (or renewed) and the rows no longer live,
// where a SELECT first would have seen them too. SQLite's writers are one
// at a time (BEGIN IMMEDIATE) anyway.
func (s *Store) ExpireGateways(ctx context.Context, self string, now time.Time) ([]store.Expired, error) {
	var out []store.Expired
	err := s.tx(ctx, func(tx *Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `DELETE FROM gateway_leases WHERE expires_at < ? AND name <> ? RETURNING name`,
			nanos(now), self)
		if err != nil {
			return err
		}
		names, err := scanIDs(rows)
		if err != nil {
			return err
		}
		slices.Sort(names)
		for _, g := range names {
			reason := fmt.Sprintf("%s: its lease expired; the recording is in %s's spool until it restarts", store.EndReasonGatewayLost, g)
			ids, err := interrupt(ctx, tx, now, reason, g)
			if err != nil {
				return err
			}
			for _, q := range []string{`DELETE FROM host_presence WHERE gateway = ?`, `DELETE FROM kill_requests WHERE gateway = ?`} {
				if _, err := tx.ExecContext(ctx, q, g); err != nil {
					return err
				}
			}
			out = append(out, store.Expired{Gateway: g, Sessions: ids})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: expire gateways: %w", err)
	}
	return out, nil
}

// RequestKill asks r.Gateway to kill live session r.SessionID. A second
// request for the same session replaces the first.
func (s *Store) RequestKill(ctx context.Context, r store.KillRequest) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO kill_requests (session_id, gateway, by_person, reason, requested_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (session_id) DO UPDATE SET gateway = excluded.gateway, by_person = excluded.by_person,
			reason = excluded.reason, requested_at = excluded.requested_at`,
		r.SessionID, r.Gateway, r.By, r.Reason, nanos(r.Requested))
	if err != nil {
		return fmt.Errorf("store: kill request for %s: %w", r.SessionID, err)
	}
	return nil
}

// TakeKillRequests returns and removes the kill requests for gateway's
// sessions, oldest first: each is taken once. One DELETE … RETURNING, so
// that a request made meanwhile is either returned or left for the next
// take, never deleted unseen.
func (s *Store) TakeKillRequests(ctx context.Context, gateway string) ([]store.KillRequest, error) {
	rows, err := s.db.QueryContext(ctx, `DELETE FROM kill_requests WHERE gateway = ?
		RETURNING session_id, gateway, by_person, reason, requested_at`, gateway)
	if err != nil {
		return nil, fmt.Errorf("store: take kill requests of %s: %w", gateway, err)
	}
	defer rows.Close()
	var out []store.KillRequest
	for rows.Next() {
		var r store.KillRequest
		var at int64
		if err := rows.Scan(&r.SessionID, &r.Gateway, &r.By, &r.Reason, &at); err != nil {
			return nil, fmt.Errorf("store: take kill requests of %s: %w", gateway, err)
		}
		r.Requested = fromNanos(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: take kill requests of %s: %w", gateway, err)
	}
	slices.SortFunc(out, func(a, b store.KillRequest) int {
		return cmp.Or(a.Requested.Compare(b.Requested), cmp.Compare(a.SessionID, b.SessionID))
	})
	return out, nil
}

// SetPresence records that gateway holds a tunnel of host's agent from
// now (an existing row keeps its since).
func (s *Store) SetPresence(ctx context.Context, host, gateway string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO host_presence (host, gateway, since, last_seen) VALUES (?, ?, ?, ?)
		ON CONFLICT (host, gateway) DO UPDATE SET last_seen = excluded.last_seen`,
		host, gateway, nanos(now), nanos(now))
	if err != nil {
		return fmt.Errorf("store: presence of %s on %s: %w", host, gateway, err)
	}
	return nil
}

// DropPresence records that gateway no longer holds a tunnel of host;
// host "" drops all of gateway's (it starts, or stops).
func (s *Store) DropPresence(ctx context.Context, host, gateway string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM host_presence WHERE gateway = ? AND (? = '' OR host = ?)`,
		gateway, host, host)
	if err != nil {
		return fmt.Errorf("store: drop presence of %q on %s: %w", host, gateway, err)
	}
	return nil
}

// Presence lists which gateways hold a tunnel of which host, by host then
// gateway: only gateways whose lease has not expired at now.
func (s *Store) Presence(ctx context.Context, now time.Time) ([]store.Presence, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT p.host, p.gateway, p.since, p.last_seen
		FROM host_presence p JOIN gateway_leases l ON l.name = p.gateway
		WHERE l.expires_at >= ? ORDER BY p.host, p.gateway`, nanos(now))
	if err != nil {
		return nil, fmt.Errorf("store: presence: %w", err)
	}
	defer rows.Close()
	var out []store.Presence
	for rows.Next() {
		var p store.Presence
		var since, seen int64
		if err := rows.Scan(&p.Host, &p.Gateway, &since, &seen); err != nil {
			return nil, fmt.Errorf("store: presence: %w", err)
		}
		p.Since, p.LastSeen = fromNanos(since), fromNanos(seen)
		out = append(out, p)
	}
	return out, rows.Err()
}
