package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SessionState is where a session is in its life.
type SessionState string

// The states of a session (docs/architecture.md#the-store).
const (
	StateLive        SessionState = "live"
	StateClosed      SessionState = "closed"
	StateKilled      SessionState = "killed"
	StateInterrupted SessionState = "interrupted"
)

// Session is one person's session on one host.
type Session struct {
	ID         string
	Person     string
	Team       string
	Host       string
	Command    string // "" for a shell
	PTY        bool
	Source     string // client address
	State      SessionState
	Started    time.Time
	Ended      time.Time // zero while live
	BytesIn    int64     // person → host
	BytesOut   int64     // host → person
	ExitStatus *int      // nil if none (signal, killed, lost)
	EndReason  string
	KilledBy   string
	// Recording is where the recording is (a spool path for now);
	// RecordingSize and RecordingSHA256 are set when it is finalized.
	Recording       string
	RecordingSize   int64
	RecordingSHA256 string
}

// SessionEnd is what FinishSession records.
type SessionEnd struct {
	State             SessionState
	Ended             time.Time
	BytesIn, BytesOut int64
	ExitStatus        *int
	EndReason         string
	KilledBy          string
}

// CreateSession records a new live session.
func (s *SQLite) CreateSession(ctx context.Context, sess Session) error {
	if sess.State != StateLive {
		return fmt.Errorf("store: new session %s must be live, not %q", sess.ID, sess.State)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions
		(id, person, team, host, command, pty, source, state, started_at, recording)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sess.ID, sess.Person, sess.Team, sess.Host, sess.Command, sess.PTY, sess.Source, string(sess.State),
		nanos(sess.Started), sess.Recording)
	if isConstraint(err) {
		return fmt.Errorf("%w: session %s exists", ErrConflict, sess.ID)
	}
	if err != nil {
		return fmt.Errorf("store: create session %s: %w", sess.ID, err)
	}
	return nil
}

// FinishSession ends a live session. Only the first call for a session
// succeeds; later ones get ErrNotFound, so exactly one exit path wins.
func (s *SQLite) FinishSession(ctx context.Context, id string, end SessionEnd) error {
	if end.State == StateLive || end.State == "" {
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
	bytes_in, bytes_out, exit_status, end_reason, killed_by, recording, recording_size, recording_sha256`

func scanSession(sc interface{ Scan(...any) error }) (Session, error) {
	var x Session
	var state string
	var started, ended int64
	var exit sql.NullInt64
	err := sc.Scan(&x.ID, &x.Person, &x.Team, &x.Host, &x.Command, &x.PTY, &x.Source, &state, &started, &ended,
		&x.BytesIn, &x.BytesOut, &exit, &x.EndReason, &x.KilledBy, &x.Recording, &x.RecordingSize, &x.RecordingSHA256)
	if err != nil {
		return Session{}, err
	}
	x.State, x.Started, x.Ended = SessionState(state), fromNanos(started), fromNanos(ended)
	if exit.Valid {
		v := int(exit.Int64)
		x.ExitStatus = &v
	}
	return x, nil
}

// SetSessionRecording records where a session's recording is, and its
// size and SHA-256 once finalized.
func (s *SQLite) SetSessionRecording(ctx context.Context, id, location string, size int64, sha256hex string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE sessions SET recording = ?, recording_size = ?, recording_sha256 = ? WHERE id = ?`,
		location, size, sha256hex, id)
	if err != nil {
		return fmt.Errorf("store: recording of %s: %w", id, err)
	}
	return mustAffect(res, "session "+id)
}

// MoveSessionRecording records that a session's recording now lives at
// location (its size and SHA-256 are unchanged by the move).
func (s *SQLite) MoveSessionRecording(ctx context.Context, id, location string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE sessions SET recording = ? WHERE id = ?`, location, id)
	if err != nil {
		return fmt.Errorf("store: move recording of %s: %w", id, err)
	}
	return mustAffect(res, "session "+id)
}

// Session returns one session.
func (s *SQLite) Session(ctx context.Context, id string) (Session, error) {
	x, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("%w: session %s", ErrNotFound, id)
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: session %s: %w", id, err)
	}
	return x, nil
}

// SessionFilter narrows Sessions. Limit 0 means 100.
type SessionFilter struct {
	LiveOnly     bool
	Host, Person string
	Team         string // exact, when not empty
	Since        time.Time
	Limit        int
}

// Sessions lists sessions: live ones first, then newest first.
func (s *SQLite) Sessions(ctx context.Context, f SessionFilter) ([]Session, error) {
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
	var out []Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("store: sessions: %w", err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// InterruptLiveSessions marks every live session interrupted: sessions a
// crashed gateway left open. It returns their ids.
func (s *SQLite) InterruptLiveSessions(ctx context.Context, now time.Time) ([]string, error) {
	var ids []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM sessions WHERE state = 'live' ORDER BY started_at`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE sessions SET state = 'interrupted', ended_at = ?,
			end_reason = 'gateway stopped unexpectedly' WHERE state = 'live'`, nanos(now))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: interrupt live sessions: %w", err)
	}
	return ids, nil
}

// AuditEvent is one decision or event, allowed or denied.
type AuditEvent struct {
	Time      time.Time
	Actor     string
	Action    string
	Target    string
	Outcome   string
	Detail    string
	Source    string
	SessionID string
}

// Audit appends an event.
func (s *SQLite) Audit(ctx context.Context, e AuditEvent) error {
	return insertAudit(ctx, s.db, e)
}

// insertAudit appends e through db (the database, or a transaction the
// event belongs to).
func insertAudit(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, e AuditEvent) error {
	if e.Action == "" {
		return errors.New("store: audit event without an action")
	}
	_, err := db.ExecContext(ctx, `INSERT INTO audit (at, actor, action, target, outcome, detail, source, session_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		nanos(e.Time), e.Actor, e.Action, e.Target, e.Outcome, e.Detail, e.Source, e.SessionID)
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

// AuditFilter narrows AuditEvents. Zero fields match everything.
type AuditFilter struct {
	Since, Until time.Time // at or after Since; before Until
	Actor        string    // exact
	// Action matches exactly or, when it ends with "." or "*", as a
	// prefix: "session." and "auth.*" match "session.kill" and "auth.code".
	Action    string
	Target    string // exact
	SessionID string // exact
	Limit     int    // 0 means 1000
}

// AuditEvents returns the newest events f matches (at most f.Limit,
// default 1000), oldest first.
func (s *SQLite) AuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	var where []string
	var args []any
	if !f.Since.IsZero() {
		where, args = append(where, `at >= ?`), append(args, nanos(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, `at < ?`), append(args, nanos(f.Until))
	}
	for _, c := range []struct{ col, v string }{{"actor", f.Actor}, {"target", f.Target}, {"session_id", f.SessionID}} {
		if c.v != "" {
			where, args = append(where, c.col+` = ?`), append(args, c.v)
		}
	}
	if prefix, ok := strings.CutSuffix(f.Action, "*"); ok {
		where, args = append(where, `substr(action, 1, ?) = ?`), append(args, len(prefix), prefix)
	} else if strings.HasSuffix(f.Action, ".") {
		where, args = append(where, `substr(action, 1, ?) = ?`), append(args, len(f.Action), f.Action)
	} else if f.Action != "" {
		where, args = append(where, `action = ?`), append(args, f.Action)
	}
	q := `SELECT at, actor, action, target, outcome, detail, source, session_id FROM audit`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY at DESC, id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: audit events: %w", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var at int64
		if err := rows.Scan(&at, &e.Actor, &e.Action, &e.Target, &e.Outcome, &e.Detail, &e.Source, &e.SessionID); err != nil {
			return nil, err
		}
		e.Time = fromNanos(at)
		out = append(out, e)
	}
	slices.Reverse(out)
	return out, rows.Err()
}
