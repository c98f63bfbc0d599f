package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The abuse limits' counters (auth.Counters): every method is one
// statement but UpdateLock, which is one transaction. Off the byte path:
// they run while someone logs in.

// HitWindow counts one event of name in book's fixed window of length d
// (one begins with the first event after the last one ended) and returns
// how many events the window holds, this one included.
func (s *Store) HitWindow(ctx context.Context, book, name string, d time.Duration, now time.Time) (int, error) {
	at, cut := nanos(now), nanos(now)-int64(d)
	var n int
	err := s.db.QueryRowContext(ctx, `INSERT INTO limits (book, name, n, window_start, expires) VALUES (?, ?, 1, ?, ?)
		ON CONFLICT (book, name) DO UPDATE SET
			n = CASE WHEN limits.window_start <= ? THEN 1 ELSE limits.n + 1 END,
			window_start = CASE WHEN limits.window_start <= ? THEN excluded.window_start ELSE limits.window_start END,
			expires = CASE WHEN limits.window_start <= ? THEN excluded.expires ELSE limits.expires END
		RETURNING n`, book, name, at, at+int64(d), cut, cut, cut).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: limits %s: %w", book, err)
	}
	return n, nil
}

// Window returns how many events name's window in book holds and when it
// began (0 and the zero time when it has ended), counting nothing.
func (s *Store) Window(ctx context.Context, book, name string, d time.Duration, now time.Time) (int, time.Time, error) {
	var n int
	var start int64
	err := s.db.QueryRowContext(ctx, `SELECT n, window_start FROM limits WHERE book = ? AND name = ? AND window_start > ?`,
		book, name, nanos(now)-int64(d)).Scan(&n, &start)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("store: limits %s: %w", book, err)
	}
	return n, fromNanos(start), nil
}

// UpdateLock calls f with name's lock state in book (zeros when it has
// none) and keeps what f returns, in one transaction: the row is locked
// first (an upsert), so another gateway's update of it waits, then read,
// then written. The row expires keep after its last failure, or when its
// lockout ends if that is later.
func (s *Store) UpdateLock(ctx context.Context, book, name string, now time.Time, keep time.Duration,
	f func(failures, lockouts int, last, until time.Time) (int, int, time.Time, time.Time)) error {
	err := s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO limits (book, name, expires) VALUES (?, ?, ?)
			ON CONFLICT (book, name) DO UPDATE SET expires = limits.expires`, book, name, nanos(now)); err != nil {
			return err
		}
		var failures, lockouts int
		var last, until int64
		if err := tx.QueryRowContext(ctx, `SELECT n, lockouts, last_failure, locked_until FROM limits WHERE book = ? AND name = ?`,
			book, name).Scan(&failures, &lockouts, &last, &until); err != nil {
			return err
		}
		failures, lockouts, lastT, untilT := f(failures, lockouts, fromNanos(last), fromNanos(until))
		expires := max(nanos(lastT)+int64(keep), nanos(untilT))
		_, err := tx.ExecContext(ctx, `UPDATE limits SET n = ?, lockouts = ?, last_failure = ?, locked_until = ?, expires = ?
			WHERE book = ? AND name = ?`, failures, lockouts, nanos(lastT), nanos(untilT), expires, book, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: limits %s: %w", book, err)
	}
	return nil
}

// ResetFailures ends name's run of failures in book (not its lockout
// history).
func (s *Store) ResetFailures(ctx context.Context, book, name string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE limits SET n = 0 WHERE book = ? AND name = ? AND n > 0`, book, name); err != nil {
		return fmt.Errorf("store: limits %s: %w", book, err)
	}
	return nil
}

// LockedUntil returns when name's lockout in book ends (zero: none).
func (s *Store) LockedUntil(ctx context.Context, book, name string) (time.Time, error) {
	var until int64
	err := s.db.QueryRowContext(ctx, `SELECT locked_until FROM limits WHERE book = ? AND name = ?`, book, name).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: limits %s: %w", book, err)
	}
	return fromNanos(until), nil
}

// SweepLimits deletes the counters that stopped mattering before now.
func (s *Store) SweepLimits(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM limits WHERE expires < ?`, nanos(now)); err != nil {
		return fmt.Errorf("store: sweep limits: %w", err)
	}
	return nil
}
