package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rr-gateway/rr/store"
)

const eventCols = `id, source, rule, priority, at, host, source_host, summary, raw, dedup_key, received_at,
	status, status_by, status_note, status_at`

func scanEvent(sc interface{ Scan(...any) error }) (store.Event, error) {
	var e store.Event
	var at, received, statusAt int64
	var status string
	err := sc.Scan(&e.ID, &e.Source, &e.Rule, &e.Priority, &at, &e.Host, &e.SourceHost, &e.Summary, &e.Raw, &e.Key,
		&received, &status, &e.StatusBy, &e.StatusNote, &statusAt)
	if err != nil {
		return store.Event{}, err
	}
	e.Time, e.Received, e.StatusTime, e.Status = fromNanos(at), fromNanos(received), fromNanos(statusAt), store.EventStatus(status)
	return e, nil
}

// AddEvent stores e, unless an event with its Key is stored: then it
// returns that one and false. An id already taken is ErrConflict (the
// caller draws another).
func (s *Store) AddEvent(ctx context.Context, e store.Event) (store.Event, bool, error) {
	if e.Status == "" {
		e.Status = store.EventOpen
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO events (`+eventCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(dedup_key) DO NOTHING`,
		e.ID, e.Source, e.Rule, e.Priority, nanos(e.Time), e.Host, e.SourceHost, e.Summary, e.Raw, e.Key,
		nanos(e.Received), string(e.Status), e.StatusBy, e.StatusNote, nanos(e.StatusTime))
	if isConstraint(err) {
		return store.Event{}, false, fmt.Errorf("%w: event %s exists", store.ErrConflict, e.ID)
	}
	if err != nil {
		return store.Event{}, false, fmt.Errorf("store: add event: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return store.Event{}, false, fmt.Errorf("store: add event: %w", err)
	} else if n == 1 {
		return e, true, nil
	}
	old, err := scanEvent(s.db.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events WHERE dedup_key = ?`, e.Key))
	if err != nil {
		return store.Event{}, false, fmt.Errorf("store: duplicate event: %w", err)
	}
	return old, false, nil
}

// Event returns one event.
func (s *Store) Event(ctx context.Context, id string) (store.Event, error) {
	e, err := scanEvent(s.db.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Event{}, fmt.Errorf("%w: event %s", store.ErrNotFound, id)
	}
	if err != nil {
		return store.Event{}, fmt.Errorf("store: event %s: %w", id, err)
	}
	return e, nil
}

// Events lists events, newest first.
func (s *Store) Events(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	var where []string
	var args []any
	if !f.Since.IsZero() {
		where, args = append(where, `at >= ?`), append(args, nanos(f.Since))
	}
	if f.MaxPriority >= 0 {
		where, args = append(where, `priority <= ?`), append(args, f.MaxPriority)
	}
	if f.Host != "" {
		where, args = append(where, `host = ?`), append(args, f.Host)
	}
	if f.Status != "" {
		where, args = append(where, `status = ?`), append(args, string(f.Status))
	}
	if f.Hosts != nil {
		if len(f.Hosts) == 0 {
			return nil, nil
		}
		where = append(where, `host IN (`+strings.TrimSuffix(strings.Repeat("?,", len(f.Hosts)), ",")+`)`)
		for _, h := range f.Hosts {
			args = append(args, h)
		}
	}
	q := `SELECT ` + eventCols + ` FROM events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY at DESC, id LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("store: events: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// SetEventStatus acknowledges or resolves event id on behalf of by.
// A resolved event stays resolved: acknowledging it is ErrConflict.
func (s *Store) SetEventStatus(ctx context.Context, id string, status store.EventStatus, by, note string, at time.Time) error {
	if status != store.EventAcknowledged && status != store.EventResolved {
		return fmt.Errorf("store: event %s: status %q is not set by hand", id, status)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE events SET status = ?, status_by = ?, status_note = ?, status_at = ?
		WHERE id = ? AND (status != 'resolved' OR ? = 'resolved')`, string(status), by, note, nanos(at), id, string(status))
	if err != nil {
		return fmt.Errorf("store: event %s: %w", id, err)
	}
	if err := mustAffect(res, "event "+id); err != nil {
		if _, gerr := s.Event(ctx, id); gerr == nil {
			return fmt.Errorf("%w: event %s is resolved already", store.ErrConflict, id)
		}
		return err
	}
	return nil
}

// ResolveEventByKey resolves the event whose Key is key (a source's
// resolve) and returns it; ErrNotFound if there is none.
func (s *Store) ResolveEventByKey(ctx context.Context, key string, at time.Time, by, note string) (store.Event, error) {
	_, err := s.db.ExecContext(ctx, `UPDATE events SET status = 'resolved', status_by = ?, status_note = ?, status_at = ?
		WHERE dedup_key = ? AND status != 'resolved'`, by, note, nanos(at), key)
	if err != nil {
		return store.Event{}, fmt.Errorf("store: resolve event: %w", err)
	}
	e, err := scanEvent(s.db.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events WHERE dedup_key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Event{}, fmt.Errorf("%w: event with that key", store.ErrNotFound)
	}
	if err != nil {
		return store.Event{}, fmt.Errorf("store: resolve event: %w", err)
	}
	return e, nil
}

// EventResponding marks event id responding by person (a session on it
// started), unless it was acknowledged or resolved.
func (s *Store) EventResponding(ctx context.Context, id, person string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE events SET status = 'responding', status_by = ?, status_note = '', status_at = ?
		WHERE id = ? AND status IN ('open', 'responding')`, person, nanos(at), id)
	if err != nil {
		return fmt.Errorf("store: event %s responding: %w", id, err)
	}
	return nil
}

// EventSessionEnded puts event id back to open when no session on it is
// live any more and nobody acknowledged or resolved it meanwhile.
func (s *Store) EventSessionEnded(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE events SET status = 'open', status_at = ?
		WHERE id = ? AND status = 'responding'
		AND NOT EXISTS (SELECT 1 FROM sessions WHERE event_id = ? AND state = 'live')`, nanos(at), id, id)
	if err != nil {
		return fmt.Errorf("store: event %s: %w", id, err)
	}
	return nil
}

// PruneEvents deletes the events that fired before t and returns how
// many.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM events WHERE at < ?`, nanos(before))
	if err != nil {
		return 0, fmt.Errorf("store: prune events: %w", err)
	}
	return res.RowsAffected()
}

// EventSubscriptions maps each team that chose one to its subscription:
// the least severe priority it is mailed, or "off".
func (s *Store) EventSubscriptions(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT team, min_priority FROM team_event_subscriptions`)
	if err != nil {
		return nil, fmt.Errorf("store: event subscriptions: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var t, p string
		if err := rows.Scan(&t, &p); err != nil {
			return nil, fmt.Errorf("store: event subscriptions: %w", err)
		}
		out[t] = p
	}
	return out, rows.Err()
}

// SetEventSubscription sets team's subscription ("" goes back to the
// default).
func (s *Store) SetEventSubscription(ctx context.Context, team, sub string) error {
	var err error
	if sub == "" {
		_, err = s.db.ExecContext(ctx, `DELETE FROM team_event_subscriptions WHERE team = ?`, team)
	} else {
		_, err = s.db.ExecContext(ctx, `INSERT INTO team_event_subscriptions (team, min_priority) VALUES (?, ?)
			ON CONFLICT(team) DO UPDATE SET min_priority = excluded.min_priority`, team, sub)
	}
	if isConstraint(err) {
		return fmt.Errorf("%w: team %s", store.ErrNotFound, team)
	}
	if err != nil {
		return fmt.Errorf("store: event subscription of %s: %w", team, err)
	}
	return nil
}
