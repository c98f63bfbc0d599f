package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rr-gateway/rr/store"
)

// CreateSession records a new live session.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	if sess.State != store.StateLive {
		return fmt.Errorf("store: new session %s must be live, not %q", sess.ID, sess.State)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions
		(id, person, team, host, command, pty, source, state, started_at, recording, event_id, event_rule,
		gateway, gateway_advertise)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sess.ID, sess.Person, sess.Team, sess.Host, sess.Command, sess.PTY, sess.Source, string(sess.State),
		nanos(sess.Started), sess.Recording, sess.EventID, sess.EventRule, sess.Gateway, sess.GatewayAdvertise)
	if isConstraint(err) {
		return fmt.Errorf("%w: session %s exists", store.ErrConflict, sess.ID)
	}
	if err != nil {
		return fmt.Errorf("store: create session %s: %w", sess.ID, err)
	}
	return nil
}

// FinishSession ends a live session. Only the first call for a session
// succeeds; later ones get ErrNotFound, so exactly one exit path wins.
func (s *Store) FinishSession(ctx context.Context, id string, end store.SessionEnd) error {
	if end.State == store.StateLive || end.State == "" {
		return fmt.Errorf("store: finish session %s: bad state %q", id, end.State)
	}
	var exit sql.NullInt64
	if end.ExitStatus != nil {
		exit = sql.NullInt64{Int64: int64(*end.ExitStatus), Valid: true}
	}
	res, err := s.db.ExecContext(ctx, `UPDATE sessions SET state = ?, ended_at = ?, bytes_in = ?, bytes_out = ?,
		exit_status = ?, end_reason = ?, killed_by = ? WHERE id = ? AND state = 'live'`,
		string(end.State), nanos(end.Ended), end.BytesIn, end.BytesOut, exit, end.EndReason, end.KilledBy, id)
	if err != nil {
		return fmt.Errorf("store: finish session %s: %w", id, err)
	}
	return mustAffect(res, "live session "+id)
}

const sessionCols = `id, person, team, host, command, pty, source, state, started_at, ended_at,
	bytes_in, bytes_out, exit_status, end_reason, killed_by, recording, recording_size, recording_sha256,
	event_id, event_rule, gateway, gateway_advertise`

func scanSession(sc interface{ Scan(...any) error }) (store.Session, error) {
	var x store.Session
	var state string
	var started, ended int64
	var exit sql.NullInt64
	err := sc.Scan(&x.ID, &x.Person, &x.Team, &x.Host, &x.Command, &x.PTY, &x.Source, &state, &started, &ended,
		&x.BytesIn, &x.BytesOut, &exit, &x.EndReason, &x.KilledBy, &x.Recording, &x.RecordingSize, &x.RecordingSHA256,
		&x.EventID, &x.EventRule, &x.Gateway, &x.GatewayAdvertise)
	if err != nil {
		return store.Session{}, err
	}
	x.State, x.Started, x.Ended = store.SessionState(state), fromNanos(started), fromNanos(ended)
	if exit.Valid {
		v := int(exit.Int64)
		x.ExitStatus = &v
	}
	return x, nil
}

// SetSessionRecording records where a session's recording is, and its
// size and SHA-256 once finalized.
func (s *Store) SetSessionRecording(ctx context.Context, id, location string, size int64, sha256hex string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE sessions SET recording = ?, recording_size = ?, recording_sha256 = ? WHERE id = ?`,
		location, size, sha256hex, id)
	if err != nil {
		return fmt.Errorf("store: recording of %s: %w", id, err)
	}
	return mustAffect(res, "session "+id)
}

// MoveSessionRecording records that a session's recording now lives at
// location (its size and SHA-256 are unchanged by the move).
func (s *Store) MoveSessionRecording(ctx context.Context, id, location string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE sessions SET recording = ? WHERE id = ?`, location, id)
	if err != nil {
		return fmt.Errorf("store: move recording of %s: %w", id, err)
	}
	return mustAffect(res, "session "+id)
}

// Session returns one session.
func (s *Store) Session(ctx context.Context, id string) (store.Session, error) {
	x, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("%w: session %s", store.ErrNotFound, id)
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("store: session %s: %w", id, err)
	}
	return x, nil
}

// Sessions lists sessions: live ones first, then newest first.
func (s *Store) Sessions(ctx context.Context, f store.SessionFilter) ([]store.Session, error) {
	var where []string
	var args []any
	if f.LiveOnly {
		where = append(where, `state = 'live'`)
	}
	if f.Host != "" {
		where, args = append(where, `host = ?`), append(args, f.Host)
	}
	if f.Person != "" {
		where, args = append(where, `person = ?`), append(args, f.Person)
	}
	if f.Team != "" {
		where, args = append(where, `team = ?`), append(args, f.Team)
	}
	if f.EventID != "" {
		where, args = append(where, `event_id = ?`), append(args, f.EventID)
	}
	if !f.Since.IsZero() {
		where, args = append(where, `started_at >= ?`), append(args, nanos(f.Since))
	}
	q := `SELECT ` + sessionCols + ` FROM sessions`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY (state = 'live') DESC, started_at DESC, id LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: sessions: %w", err)
	}
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("store: sessions: %w", err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// InterruptLiveSessions marks interrupted the sessions gateway left
// live (it crashed): its own rows only, and those of no gateway (rows from
// before several gateways shared a store), never a peer's. It returns
// their ids.
func (s *Store) InterruptLiveSessions(ctx context.Context, gateway string, now time.Time) ([]string, error) {
	var ids []string
	err := s.tx(ctx, func(tx *Tx) error {
		var err error
		ids, err = interrupt(ctx, tx, now, "gateway stopped unexpectedly", gateway, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: interrupt live sessions of %s: %w", gateway, err)
	}
	return ids, nil
}

// interrupt marks interrupted, with reason, the live sessions the
// gateways hold and returns their ids, oldest first: exactly the rows it
// changed (UPDATE … RETURNING), so that two gateways never both report
// one.
func interrupt(ctx context.Context, tx *Tx, now time.Time, reason string, gateways ...string) ([]string, error) {
	q := `UPDATE sessions SET state = 'interrupted', ended_at = ?, end_reason = ?
		WHERE state = 'live' AND gateway IN (?` + strings.Repeat(`, ?`, len(gateways)-1) + `)`
	args := []any{nanos(now), reason}
	for _, g := range gateways {
		args = append(args, g)
	}
	rows, err := tx.QueryContext(ctx, q+` RETURNING id, started_at`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type row struct {
		id      string
		started int64
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.started); err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(rs, func(a, b row) int { return cmp.Or(cmp.Compare(a.started, b.started), cmp.Compare(a.id, b.id)) })
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.id
	}
	return ids, nil
}

// scanIDs reads a column of ids and closes rows.
func scanIDs(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
