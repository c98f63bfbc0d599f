package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rr-gateway/rr/store"
)

// Audit appends an event to the hash chain.
func (s *Store) Audit(ctx context.Context, e store.AuditEvent) error {
	_, err := s.AppendAudit(ctx, e)
	return err
}

// AppendAudit appends an event to the hash chain and returns it as
// stored: with its Seq, Prev and Hash.
//
// The chain stays one line however many writers append (two processes on
// one file, or later several gateways on one PostgreSQL): reading the head
// and inserting the next event happen in one write transaction, and seq is
// the primary key, so a writer that raced past another's read fails rather
// than fork the chain. SQLite's BEGIN IMMEDIATE (the DSN's _txlock) takes
// the write lock before the read; on PostgreSQL the dialect's ChainLock
// (a transaction-scoped advisory lock) does.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	err := s.tx(ctx, func(tx *Tx) error {
		var err error
		e, err = appendAudit(ctx, tx, e)
		return err
	})
	return e, err
}

// insertAudit appends e within tx (a transaction the event belongs to).
func insertAudit(ctx context.Context, tx *Tx, e store.AuditEvent) error {
	_, err := appendAudit(ctx, tx, e)
	return err
}

func appendAudit(ctx context.Context, tx *Tx, e store.AuditEvent) (store.AuditEvent, error) {
	if e.Action == "" {
		return e, errors.New("store: audit event without an action")
	}
	if tx.d.ChainLock != "" {
		if _, err := tx.ExecContext(ctx, tx.d.ChainLock); err != nil {
			return e, fmt.Errorf("store: audit: chain lock: %w", err)
		}
	}
	var last int64
	var prev string
	err := tx.QueryRowContext(ctx, `SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1`).Scan(&last, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("store: audit: chain head: %w", err)
	}
	// The store keeps nanoseconds, UTC: hash what will be read back.
	e.Time = fromNanos(nanos(e.Time))
	e.Seq, e.Prev = last+1, prev
	e.Hash = store.ChainHash(prev, e)
	_, err = tx.ExecContext(ctx, `INSERT INTO audit (id, at, actor, action, target, outcome, detail, source, session_id, prev, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, nanos(e.Time), e.Actor, e.Action, e.Target, e.Outcome, e.Detail, e.Source, e.SessionID, e.Prev, e.Hash)
	if err != nil {
		return e, fmt.Errorf("store: audit: %w", err)
	}
	return e, nil
}

// ChainOld chains the events written before the chain existed (hash
// empty), in id order, renumbering none: their seq is their id.
func (s *Store) ChainOld(ctx context.Context) error {
	return s.tx(ctx, func(tx *Tx) error {
		var first int64
		err := tx.QueryRowContext(ctx, `SELECT COALESCE(MIN(id), 0) FROM audit WHERE hash = ''`).Scan(&first)
		if err != nil || first == 0 {
			return err
		}
		var prev string
		err = tx.QueryRowContext(ctx, `SELECT hash FROM audit WHERE id < ? ORDER BY id DESC LIMIT 1`, first).Scan(&prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+auditCols+` FROM audit WHERE id >= ? ORDER BY id`, first)
		if err != nil {
			return err
		}
		var evs []store.AuditEvent
		for rows.Next() {
			e, err := scanAudit(rows)
			if err != nil {
				rows.Close()
				return err
			}
			evs = append(evs, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, e := range evs {
			e.Prev = prev
			e.Hash = store.ChainHash(prev, e)
			if _, err := tx.ExecContext(ctx, `UPDATE audit SET prev = ?, hash = ? WHERE id = ?`, e.Prev, e.Hash, e.Seq); err != nil {
				return err
			}
			prev = e.Hash
		}
		return nil
	})
}

const auditCols = `id, at, actor, action, target, outcome, detail, source, session_id, prev, hash`

func scanAudit(sc interface{ Scan(...any) error }) (store.AuditEvent, error) {
	var e store.AuditEvent
	var at int64
	err := sc.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Target, &e.Outcome, &e.Detail, &e.Source, &e.SessionID, &e.Prev, &e.Hash)
	e.Time = fromNanos(at)
	return e, err
}

// AuditChain calls fn with every event from seq from on, in chain order,
// until fn returns an error (which it returns). It reads a page at a
// time and calls fn between reads, so a walk of a long trail never holds
// the store's one connection for long: appends go on meanwhile.
func (s *Store) AuditChain(ctx context.Context, from int64, fn func(store.AuditEvent) error) error {
	const page = 5000
	for {
		evs, err := s.auditPage(ctx, from, page)
		if err != nil {
			return fmt.Errorf("store: audit chain: %w", err)
		}
		for _, e := range evs {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(evs) < page {
			return nil
		}
		from = evs[len(evs)-1].Seq + 1
	}
}

func (s *Store) auditPage(ctx context.Context, from int64, n int) ([]store.AuditEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditCols+` FROM audit WHERE id >= ? ORDER BY id LIMIT ?`, from, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	evs := make([]store.AuditEvent, 0, n)
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		evs = append(evs, e)
	}
	return evs, rows.Err()
}

// AuditHead returns the chain's last event (ErrNotFound when there is
// none).
func (s *Store) AuditHead(ctx context.Context) (store.AuditEvent, error) {
	e, err := scanAudit(s.db.QueryRowContext(ctx, `SELECT `+auditCols+` FROM audit ORDER BY id DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("%w: audit events", store.ErrNotFound)
	}
	return e, err
}

// AddCheckpoint keeps a signed checkpoint. One per seq: a second for the
// same seq is ignored when it names the same head, refused otherwise.
func (s *Store) AddCheckpoint(ctx context.Context, c store.Checkpoint) error {
	// Insert, then look: a SELECT first would let two gateways signing
	// the same head at once (PostgreSQL's READ COMMITTED) both go on to
	// insert, and the second fail on the key. DO NOTHING waits for the
	// other's insert instead; then the row there says whether it is ours.
	return s.tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, head, at, signature) VALUES (?, ?, ?, ?)
			ON CONFLICT (seq) DO NOTHING`, c.Seq, c.Head, nanos(c.At), c.Signature)
		if err != nil {
			return fmt.Errorf("store: checkpoint %d: %w", c.Seq, err)
		}
		var head string
		if err := tx.QueryRowContext(ctx, `SELECT head FROM audit_checkpoints WHERE seq = ?`, c.Seq).Scan(&head); err != nil {
			return fmt.Errorf("store: checkpoint %d: %w", c.Seq, err)
		}
		if head != c.Head {
			return fmt.Errorf("store: checkpoint %d: already signed with another head", c.Seq)
		}
		return nil
	})
}

// Checkpoints returns the signed checkpoints, oldest first.
func (s *Store) Checkpoints(ctx context.Context) ([]store.Checkpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, head, at, signature FROM audit_checkpoints ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("store: checkpoints: %w", err)
	}
	defer rows.Close()
	var out []store.Checkpoint
	for rows.Next() {
		var c store.Checkpoint
		var at int64
		if err := rows.Scan(&c.Seq, &c.Head, &at, &c.Signature); err != nil {
			return nil, fmt.Errorf("store: checkpoints: %w", err)
		}
		c.At = fromNanos(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// SetManifest keeps session id's signed manifest (the file as published).
func (s *Store) SetManifest(ctx context.Context, id string, body []byte, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO manifests (session_id, body, created_at) VALUES (?, ?, ?)
		ON CONFLICT (session_id) DO UPDATE SET body = excluded.body, created_at = excluded.created_at`, id, body, nanos(at))
	if err != nil {
		return fmt.Errorf("store: manifest %s: %w", id, err)
	}
	return nil
}

// Manifest returns session id's signed manifest (ErrNotFound when it has
// none).
func (s *Store) Manifest(ctx context.Context, id string) ([]byte, error) {
	var body []byte
	err := s.db.QueryRowContext(ctx, `SELECT body FROM manifests WHERE session_id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: manifest of session %s", store.ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: manifest %s: %w", id, err)
	}
	return body, nil
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
	q := `SELECT ` + auditCols + ` FROM audit`
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
		e, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	slices.Reverse(out)
	return out, rows.Err()
}
