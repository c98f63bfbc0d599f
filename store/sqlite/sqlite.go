package sqlite

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the SQLite driver
	"github.com/rr-gateway/rr/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is rr's store on one SQLite file.
type Store struct {
	db *sql.DB
}

// Open opens (creating if needed) the database at path and applies any
// migrations it lacks. A database newer than this code is refused.
func Open(path string) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create folder: %w", err)
		}
	}
	// The database holds password hashes, TOTP secrets and the audit
	// trail: its owner's only, whatever the folder's mode (SQLite gives
	// the -wal and -shm files the database's mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		err = f.Chmod(fi.Mode().Perm() &^ 0o077)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("store: %s is readable by others and cannot be made private: %w", path, err)
		}
	}
	f.Close()
	// The path goes into a URI: escaped, so that '?' or '#' in it name
	// the file rather than start options.
	dsn := (&url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath()}).String() +
		"?_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on&_txlock=immediate&_synchronous=NORMAL"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and a single connection
	// makes every statement see the previous one's writes without BUSY
	// games. Reads are fast enough for a gateway's rates.
	db.SetMaxOpenConns(1)
	s := &Store{db: db}
	// Two processes creating one database at once can find it locked
	// while the other turns on WAL, past the busy timeout's reach: try
	// again for a while.
	for attempt := 0; ; attempt++ {
		err = s.migrate(context.Background())
		if err == nil || !isBusy(err) || attempt == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
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
		b, err := migrations.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies, each in its own transaction, the migrations newer than
// the database's schema_version.
func (s *Store) migrate(ctx context.Context) error {
	// In a write transaction (BEGIN IMMEDIATE waits for the lock): another
	// process may be creating the database too.
	if err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`)
		return err
	}); err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	ms, err := loadMigrations()
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
		err := s.tx(ctx, func(tx *sql.Tx) error {
			// Another process may have applied it since current was read
			// (two opening a new database at once): look again, inside the
			// write lock.
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

// SchemaVersion returns the database's schema version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}

func (s *Store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
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

// UpsertHost creates host if it does not exist; it never clears its key.
func (s *Store) UpsertHost(ctx context.Context, name string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO hosts (name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING`,
		name, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("store: upsert host %s: %w", name, err)
	}
	return nil
}

// CreateHost adds a new host with labels ("K=V" each); one by that name
// already is ErrConflict.
func (s *Store) CreateHost(ctx context.Context, name string, labels []string) error {
	l := append([]string(nil), labels...)
	sort.Strings(l)
	_, err := s.db.ExecContext(ctx, `INSERT INTO hosts (name, created_at, labels) VALUES (?, ?, ?)`,
		name, time.Now().UnixNano(), strings.Join(l, ","))
	if isConstraint(err) {
		return fmt.Errorf("%w: host %s exists", store.ErrConflict, name)
	}
	if err != nil {
		return fmt.Errorf("store: create host %s: %w", name, err)
	}
	return nil
}

// DeleteHost removes a host and its enrollment tokens. Its sessions stay.
func (s *Store) DeleteHost(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM hosts WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("store: delete host %s: %w", name, err)
	}
	return mustAffect(res, "host "+name)
}

// SetAgentKey binds an agent key to host.
func (s *Store) SetAgentKey(ctx context.Context, host, authorizedKey string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE hosts SET agent_key = ? WHERE name = ?`, authorizedKey, host)
	if err != nil {
		return fmt.Errorf("store: set agent key of %s: %w", host, err)
	}
	return mustAffect(res, "host "+host)
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

const hostCols = `name, agent_key, created_at, last_seen, labels, passphrase_verifier`

func scanHost(sc interface{ Scan(...any) error }) (store.Host, error) {
	var h store.Host
	var created, seen int64
	var labels string
	if err := sc.Scan(&h.Name, &h.AgentKey, &created, &seen, &labels, &h.PassphraseVerifier); err != nil {
		return store.Host{}, err
	}
	h.CreatedAt, h.LastSeen = fromNanos(created), fromNanos(seen)
	if labels != "" {
		h.Labels = strings.Split(labels, ",")
	}
	return h, nil
}

// Host returns one host.
func (s *Store) Host(ctx context.Context, name string) (store.Host, error) {
	h, err := scanHost(s.db.QueryRowContext(ctx, `SELECT `+hostCols+` FROM hosts WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Host{}, fmt.Errorf("%w: host %s", store.ErrNotFound, name)
	}
	if err != nil {
		return store.Host{}, fmt.Errorf("store: host %s: %w", name, err)
	}
	return h, nil
}

// Hosts returns every host, ordered by name.
func (s *Store) Hosts(ctx context.Context) ([]store.Host, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+hostCols+` FROM hosts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: hosts: %w", err)
	}
	defer rows.Close()
	var out []store.Host
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, fmt.Errorf("store: hosts: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// TouchHost records that host's agent was seen at t.
func (s *Store) TouchHost(ctx context.Context, name string, t time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE hosts SET last_seen = ? WHERE name = ?`, nanos(t), name)
	if err != nil {
		return fmt.Errorf("store: touch host %s: %w", name, err)
	}
	return mustAffect(res, "host "+name)
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
	return s.tx(ctx, func(tx *sql.Tx) error {
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
		if _, err := tx.ExecContext(ctx, `UPDATE enroll_tokens SET used_at = ? WHERE id = ?`, nanos(now), match); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE hosts SET agent_key = ? WHERE name = ? AND agent_key = ''`, authorizedKey, host)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("%w: host %s", store.ErrEnrolled, host) // bound meanwhile
		}
		return nil
	})
}
