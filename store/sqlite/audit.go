package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rr-gateway/rr/store"
)

// Audit appends an event.
func (s *Store) Audit(ctx context.Context, e store.AuditEvent) error {
	return insertAudit(ctx, s.db, e)
}

// insertAudit appends e through db (the database, or a transaction the
// event belongs to).
func insertAudit(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, e store.AuditEvent) error {
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

// AuditEvents returns the newest events f matches (at most f.Limit,
// default 1000), oldest first.
func (s *Store) AuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
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
	var out []store.AuditEvent
	for rows.Next() {
		var e store.AuditEvent
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
