package sqlite

import (
	"context"
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
	err = s.tx(ctx, func(tx *sql.Tx) error {
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
