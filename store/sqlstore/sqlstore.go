package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rr-gateway/rr/store"
)

// Dialect is what differs between the backends behind one set of queries.
type Dialect struct {
	// Name names the backend in errors ("sqlite", "postgres").
	Name string
	// Numbered turns the queries' '?' placeholders into $1, $2, … .
	Numbered bool
	// IsConstraint reports whether err is the database refusing a write
	// that breaks a constraint (a duplicate key, a missing parent row).
	IsConstraint func(error) bool
	// ChainLock, when set, is run first in every transaction that appends
	// to the audit chain, so that writers on other connections wait for
	// one another instead of forking the chain (PostgreSQL's advisory
	// lock; SQLite's BEGIN IMMEDIATE serializes writers already).
	ChainLock string
}

// Store is rr's store over database/sql, in one backend's dialect.
type Store struct {
	db    DB
	after func() // what Close closes after db: the driver's pool
}

// New returns the store on db, whose schema the backend migrated. Close
// closes db, then calls after (if not nil).
func New(db *sql.DB, d *Dialect, after func()) *Store {
	return &Store{db: DB{DB: db, d: d}, after: after}
}

// Close closes the database.
func (s *Store) Close() error {
	err := s.db.DB.Close()
	if s.after != nil {
		s.after()
	}
	return err
}

// DB is a *sql.DB that speaks the dialect: queries are written once, with
// '?' placeholders, and constraint errors are recognizable (isConstraint).
type DB struct {
	*sql.DB
	d *Dialect
}

// Tx is a *sql.Tx that speaks the dialect, as DB does.
type Tx struct {
	*sql.Tx
	d *Dialect
}

// ExecContext runs query (with '?' placeholders).
func (db DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := db.DB.ExecContext(ctx, db.d.rebind(query), args...)
	return res, db.d.wrap(err)
}

// QueryContext runs query (with '?' placeholders).
func (db DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.DB.QueryContext(ctx, db.d.rebind(query), args...)
}

// QueryRowContext runs query (with '?' placeholders).
func (db DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.DB.QueryRowContext(ctx, db.d.rebind(query), args...)
}

// ExecContext runs query (with '?' placeholders).
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := tx.Tx.ExecContext(ctx, tx.d.rebind(query), args...)
	return res, tx.d.wrap(err)
}

// QueryContext runs query (with '?' placeholders).
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.Tx.QueryContext(ctx, tx.d.rebind(query), args...)
}

// QueryRowContext runs query (with '?' placeholders).
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.Tx.QueryRowContext(ctx, tx.d.rebind(query), args...)
}

// rebind numbers the placeholders of query for a dialect that wants
// them numbered; '?' inside a quoted literal is left alone.
func (d *Dialect) rebind(query string) string {
	if !d.Numbered || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// constraintError marks a driver's error as a broken constraint.
type constraintError struct{ error }

func (e constraintError) Unwrap() error { return e.error }

func (d *Dialect) wrap(err error) error {
	if err != nil && d.IsConstraint != nil && d.IsConstraint(err) {
		return constraintError{err}
	}
	return err
}

// isConstraint reports whether err is the database refusing a write that
// breaks a constraint (a duplicate key, mostly).
func isConstraint(err error) bool {
	var ce constraintError
	return errors.As(err, &ce)
}

// tx runs f in a transaction, committed when f returns nil.
func (s *Store) tx(ctx context.Context, f func(*Tx) error) error {
	return s.db.tx(ctx, f)
}

func (db DB) tx(ctx context.Context, f func(*Tx) error) error {
	return migrator{c: db.DB, d: db.d}.tx(ctx, f)
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", store.ErrNotFound, what)
	}
	return nil
}

// exists returns ErrNotFound (naming what) unless query finds a row.
func exists(ctx context.Context, tx *Tx, query, what string, args ...any) error {
	var one int
	err := tx.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s", store.ErrNotFound, what)
	}
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}
