package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/rr-gateway/rr/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock keys: any constant, the same in every gateway. They only
// need to differ from one another and from other programs' on the same
// database.
const (
	migrateLock = 0x72720001
	chainLock   = 0x72720002
)

var dialect = &sqlstore.Dialect{
	Name:         "postgres",
	Numbered:     true,
	IsConstraint: isConstraint,
	ChainLock:    fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", chainLock),
}

// Store is rr's store on PostgreSQL: store/sqlstore's methods, and
// Listen and Notify.
type Store struct {
	*sqlstore.Store
	pool *pgxpool.Pool
}

// ErrUnreachable is Open's answer when the server cannot be reached (or
// refuses the login): the one line a gateway that cannot start prints.
var ErrUnreachable = errors.New("store: cannot reach the PostgreSQL server")

// Open connects to the database dsn names (a URL or key=value string, as
// libpq takes), waits at most connectTimeout for the first connection,
// and applies the migrations the database lacks. A database newer than
// this code is refused. Errors never include dsn.
func Open(ctx context.Context, dsn string, connectTimeout time.Duration) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's parse errors redact the password but quote the rest;
		// say only that it does not parse.
		return nil, errors.New("store: the PostgreSQL DSN does not parse (a URL postgres://user@host/db or key=value pairs)")
	}
	if connectTimeout > 0 && cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, max(connectTimeout, time.Second))
	err = pool.Ping(pctx)
	cancel()
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("%w at %s: %s", ErrUnreachable, where(cfg), reason(err))
	}
	if err := migrate(ctx, cfg); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres %s: %w", where(cfg), err)
	}
	db := stdlib.OpenDBFromPool(pool)
	return &Store{Store: sqlstore.New(db, dialect, pool.Close), pool: pool}, nil
}

// migrate applies the migrations under a session advisory lock, so that
// gateways starting at once on an empty database migrate it once: the
// others wait, then find nothing left to do. It runs on a connection of
// its own, closed at the end, so the lock cannot outlive it in the pool.
func migrate(ctx context.Context, cfg *pgxpool.Config) error {
	db := stdlib.OpenDB(*cfg.ConnConfig.Copy())
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	return sqlstore.Migrate(ctx, conn, dialect, migrations, "migrations")
}

// isConstraint reports whether err is PostgreSQL refusing a write for an
// integrity constraint (class 23: unique, foreign key, not null, check).
func isConstraint(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "23")
}

// where names the server for errors: host and port, never the password.
func where(cfg *pgxpool.Config) string {
	return fmt.Sprintf("%s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port)
}

// reason is the end of a connection error: why, without the DSN.
func reason(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		err = ce.Unwrap()
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}
