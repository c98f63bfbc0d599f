package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "github.com/mattn/go-sqlite3" // the SQLite driver
	"github.com/rr-gateway/rr/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is rr's store on one SQLite file.
type Store = sqlstore.Store

var dialect = &sqlstore.Dialect{Name: "sqlite", IsConstraint: isConstraint}

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
	s := sqlstore.New(db, dialect, nil)
	// Two processes creating one database at once can find it locked
	// while the other turns on WAL, past the busy timeout's reach: try
	// again for a while.
	for attempt := 0; ; attempt++ {
		err = sqlstore.Migrate(context.Background(), db, dialect, migrations, "migrations")
		if err == nil || !isBusy(err) || attempt == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err == nil {
		err = s.ChainOld(context.Background())
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return s, nil
}
