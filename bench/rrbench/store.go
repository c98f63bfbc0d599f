package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rr-gateway/rr/internal/pgtest"
	"github.com/rr-gateway/rr/store/postgres"
	"github.com/rr-gateway/rr/store/sqlite"
	"github.com/rr-gateway/rr/store/sqlstore"
)

// openStore is the gateway role's store: SQLite in dir, or the
// PostgreSQL whose DSN is in dsnFile.
func openStore(ctx context.Context, dir, dsnFile string) (*sqlstore.Store, error) {
	if dsnFile == "" {
		return sqlite.Open(filepath.Join(dir, "rr.db"))
	}
	b, err := os.ReadFile(dsnFile)
	if err != nil {
		return nil, err
	}
	st, err := postgres.Open(ctx, strings.TrimSpace(string(b)), 10*time.Second)
	if err != nil {
		return nil, err
	}
	return st.Store, nil
}

// storeFigures: session set-up (key, passphrase, mailed code: every
// store read and write a login makes, the limits' counters included)
// with the gateway's store on PostgreSQL against SQLite, on the same
// machine, one after the other. The store is not on the byte path, so
// the bulk figures do not change with it.
func (r *results) storeFigures(cfg config, dir string) error {
	if cfg.setups <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	srv, err := pgtest.Start(ctx, "")
	cancel()
	if err != nil {
		return fmt.Errorf("store: PostgreSQL: %w", err)
	}
	defer srv.Close()
	dsn, err := srv.CreateDB(context.Background())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	dsnFile := filepath.Join(dir, "pg.dsn")
	if err := os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600); err != nil {
		return err
	}
	var res [2]percentiles
	for i, c := range []struct {
		name string
		args []string
	}{{"SQLite", nil}, {"PostgreSQL", []string{"-dsn-file", dsnFile}}} {
		gw, ag, err := startStack(filepath.Join(dir, c.name), cfg.workers, false, true, cfg.shell, c.args...)
		if err != nil {
			return err
		}
		logf("store: %d set-ups one at a time, store on %s", cfg.setups, c.name)
		t := target{name: "gateway on " + c.name, addr: gw.ready["people"], hostKey: signer(gatewayKeyName).PublicKey(), gateway: true, proc: gw}
		res[i], _, err = setups(t, cfg.setups, cfg.workers)
		clearSpool(gw.ready["spool"])
		ag.stop()
		gw.stop()
		if err != nil {
			return err
		}
	}
	sq, pg := res[0], res[1]
	note := "TCP connect to first shell byte: key + passphrase (production argon2id) + mailed code; PostgreSQL 15 on 127.0.0.1, durability off (a test server)"
	r.add(figure{Name: "session set-up median, store on PostgreSQL", Value: ms(pg.p50), Unit: "ms", Baseline: "store on SQLite",
		BaselineValue: ms(sq.p50), Target: "<= 1.2", Lower: true, Note: note})
	r.add(figure{Name: "session set-up p99, store on PostgreSQL", Value: ms(pg.p99), Unit: "ms", Baseline: "store on SQLite",
		BaselineValue: ms(sq.p99), Target: "<= 1.2", Lower: true})
	return nil
}
