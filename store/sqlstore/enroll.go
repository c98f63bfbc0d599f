package sqlstore

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rr-gateway/rr/store"
)

// ReenrollHost is the explicit replacement of host's agent, in one
// transaction: the bound key is cleared (so it no longer authenticates),
// every unused token of the host is spent, and tokenHash becomes its one
// valid token until expires. It returns the key that was bound ("" if
// none).
func (s *Store) ReenrollHost(ctx context.Context, host string, tokenHash []byte, expires, now time.Time) (old string, err error) {
	err = s.tx(ctx, func(tx *Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT agent_key FROM hosts WHERE name = ?`, host).Scan(&old); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: host %s", store.ErrNotFound, host)
			}
			return fmt.Errorf("store: host %s: %w", host, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE hosts SET agent_key = '' WHERE name = ?`, host); err != nil {
			return fmt.Errorf("store: clear agent key of %s: %w", host, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE enroll_tokens SET used_at = ? WHERE host = ? AND used_at = 0`,
			nanos(now), host); err != nil {
			return fmt.Errorf("store: spend tokens of %s: %w", host, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO enroll_tokens (host, token_hash, expires_at) VALUES (?, ?, ?)`,
			host, tokenHash, nanos(expires)); err != nil {
			return fmt.Errorf("store: create token for %s: %w", host, err)
		}
		return nil
	})
	return old, err
}

// CreateEnrollToken stores the hash of a one-time token for host. A host
// whose agent is enrolled (a key is bound) is ErrEnrolled: replacing its
// agent is ReenrollHost, an explicit act.
func (s *Store) CreateEnrollToken(ctx context.Context, host string, tokenHash []byte, expires time.Time) error {
	if _, err := s.Host(ctx, host); err != nil {
		return err
	}
	// One statement: a key bound between a check and the insert cannot slip by.
	res, err := s.db.ExecContext(ctx, `INSERT INTO enroll_tokens (host, token_hash, expires_at)
		SELECT name, ?, ? FROM hosts WHERE name = ? AND agent_key = ''`, tokenHash, nanos(expires), host)
	if err != nil {
		return fmt.Errorf("store: create token for %s: %w", host, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("%w: host %s", store.ErrEnrolled, host)
	}
	return nil
}

// HasEnrollToken reports whether host has an unused, unexpired token.
func (s *Store) HasEnrollToken(ctx context.Context, host string, now time.Time) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM enroll_tokens WHERE host = ? AND used_at = 0 AND expires_at > ?`,
		host, nanos(now)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: tokens of %s: %w", host, err)
	}
	return n > 0, nil
}

// UseEnrollToken spends the unused, unexpired token of host whose hash is
// tokenHash and binds authorizedKey to host, in one transaction. No such
// token: ErrNotFound; a host with a key bound already: ErrEnrolled (a
// token never replaces an enrolled agent, whenever it was made).
func (s *Store) UseEnrollToken(ctx context.Context, host string, tokenHash []byte, authorizedKey string, now time.Time) error {
	return s.tx(ctx, func(tx *Tx) error {
		var bound string
		if err := tx.QueryRowContext(ctx, `SELECT agent_key FROM hosts WHERE name = ?`, host).Scan(&bound); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: host %s", store.ErrNotFound, host)
			}
			return fmt.Errorf("store: host %s: %w", host, err)
		}
		if bound != "" {
			return fmt.Errorf("%w: host %s", store.ErrEnrolled, host)
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, token_hash FROM enroll_tokens WHERE host = ? AND used_at = 0 AND expires_at > ?`,
			host, nanos(now))
		if err != nil {
			return fmt.Errorf("store: tokens of %s: %w", host, err)
		}
		match := int64(-1)
		for rows.Next() {
			var id int64
			var h []byte
			if err := rows.Scan(&id, &h); err != nil {
				rows.Close()
				return err
			}
			// Compare every candidate, constant-time each.
			if subtle.ConstantTimeCompare(h, tokenHash) == 1 {
				match = id
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if match < 0 {
			return fmt.Errorf("%w: enrollment token for %s", store.ErrNotFound, host)
		}
		// used_at = 0 again: another gateway's transaction may have spent
		// it since the read (PostgreSQL reads committed rows, it does not
		// lock them), and then this one must lose.
		res, err := tx.ExecContext(ctx, `UPDATE enroll_tokens SET used_at = ? WHERE id = ? AND used_at = 0`, nanos(now), match)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("%w: enrollment token for %s", store.ErrNotFound, host)
		}
		res, err = tx.ExecContext(ctx, `UPDATE hosts SET agent_key = ? WHERE name = ? AND agent_key = ''`, authorizedKey, host)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("%w: host %s", store.ErrEnrolled, host) // bound meanwhile
		}
		return nil
	})
}
