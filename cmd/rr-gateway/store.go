package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/store/postgres"
	"github.com/rr-gateway/rr/store/sqlite"
	"github.com/rr-gateway/rr/store/sqlstore"
)

// dsnEnv is the environment variable that may carry the PostgreSQL DSN
// instead of store.dsn_file; the gateway unsets it once read.
const dsnEnv = "RR_STORE_DSN"

// fileStore is which database the gateway keeps its state in: SQLite's
// file (database:) for one gateway, or one PostgreSQL that several
// gateways share.
type fileStore struct {
	Driver         string        `yaml:"driver"`   // sqlite (default) or postgres
	DSNFile        string        `yaml:"dsn_file"` // postgres: the file holding the DSN
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

func (s fileStore) check() error {
	switch s.Driver {
	case "", "sqlite", "postgres":
	default:
		return fmt.Errorf("store.driver: %q: want sqlite or postgres", s.Driver)
	}
	if s.ConnectTimeout < 0 {
		return errors.New("store.connect_timeout: negative")
	}
	if s.Driver != "postgres" && s.DSNFile != "" {
		return errors.New("store.dsn_file: only for driver: postgres (SQLite's file is database:)")
	}
	return nil
}

// dsn is the PostgreSQL DSN: store.dsn_file's first line, else $RR_STORE_DSN
// (then unset, so that nothing this process starts inherits it).
func (s fileStore) dsn() (string, error) {
	if s.DSNFile != "" {
		b, err := os.ReadFile(s.DSNFile)
		if err != nil {
			return "", fmt.Errorf("store.dsn_file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if line = strings.TrimSpace(line); line == "" {
			return "", fmt.Errorf("store.dsn_file: %s is empty", s.DSNFile)
		}
		return line, nil
	}
	if v := strings.TrimSpace(os.Getenv(dsnEnv)); v != "" {
		os.Unsetenv(dsnEnv)
		return v, nil
	}
	return "", fmt.Errorf("store: driver postgres needs store.dsn_file or $%s", dsnEnv)
}

// openStore opens the configured store: SQLite's file, or PostgreSQL (a
// server that cannot be reached is the one line the gateway exits with).
// The second value is what the gateway runs on: the same store, with
// PostgreSQL's Listen and Notify (a gateway.Notifier: a kill asked on a
// peer wakes the gateway holding the session at once, rather than at its
// next poll).
func (c *fileConfig) openStore(ctx context.Context, log *slog.Logger) (*sqlstore.Store, gateway.Store, error) {
	if c.Store.Driver != "postgres" {
		st, err := sqlite.Open(c.Database)
		return st, st, err
	}
	dsn, err := c.Store.dsn()
	if err != nil {
		return nil, nil, err
	}
	if w := postgres.InsecureDSN(dsn); w != "" {
		log.Warn(w)
	}
	timeout := c.Store.ConnectTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	st, err := postgres.Open(ctx, dsn, timeout)
	if err != nil {
		return nil, nil, err
	}
	return st.Store, st, nil
}
