package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Conn is a database connection, or a pool of them, that migrations run
// on: a *sql.DB, or the *sql.Conn that holds a backend's migration lock.
type Conn interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the *.sql files of fsys's folder dir, each named
// NNNN_what.sql, in version order.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", e.Name())
		}
		b, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate applies, each in its own transaction, the migrations of fsys's
// folder dir newer than the database's schema_version. A database newer
// than every migration is refused: it belongs to a newer rr.
//
// Each migration looks at the version again inside its transaction, so
// two processes migrating at once apply each migration once where the
// transaction takes the write lock (SQLite's BEGIN IMMEDIATE); PostgreSQL
// holds an advisory lock around the whole call.
func Migrate(ctx context.Context, c Conn, d *Dialect, fsys fs.FS, dir string) error {
	db := migrator{c: c, d: d}
	if err := db.tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`)
		return err
	}); err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	var current int
	if err := c.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	ms, err := loadMigrations(fsys, dir)
	if err != nil {
		return err
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	if current > latest {
		return fmt.Errorf("database schema version %d is newer than this program knows (%d): upgrade rr", current, latest)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		err := db.tx(ctx, func(tx *Tx) error {
			var now int
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&now); err != nil {
				return err
			}
			if m.version <= now {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`,
				m.version, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

type migrator struct {
	c Conn
	d *Dialect
}

func (m migrator) tx(ctx context.Context, f func(*Tx) error) error {
	t, err := m.c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(&Tx{Tx: t, d: m.d}); err != nil {
		t.Rollback()
		return err
	}
	return t.Commit()
}

// SchemaVersion returns the database's schema version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}
