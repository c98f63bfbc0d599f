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
// machine: both gateways up, taking turns (setupTimes).
// The store is not on the byte path, so the bulk figures do not change
// with it.
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
	var targets []target
	for _, st := range []struct{ name, dsnFile string }{{"SQLite", ""}, {"PostgreSQL", dsnFile}} {
		var args []string
		if st.dsnFile != "" {
			args = []string{"-dsn-file", st.dsnFile}
		}
		gw, ag, err := startStack(filepath.Join(dir, st.name), 1, false, recordSpool, cfg.shell, args...)
		if err != nil {
			return err
		}
		defer gw.stop()
		defer ag.stop()
		defer clearSpool(gw.ready["spool"])
		targets = append(targets, target{name: "gateway on " + st.name, addr: gw.ready["people"],
			hostKey: signer(gatewayKeyName).PublicKey(), gateway: true, proc: gw})
	}
	logf("store: %d runs of %d set-ups one at a time, SQLite and PostgreSQL taking turns", setupRuns, setupsPerRun(cfg.setups))
	times, err := setupTimes(targets, cfg.setups)
	if err != nil {
		return err
	}
	sq50, sq99 := setupSpreads(times[0])
	pg50, pg99 := setupSpreads(times[1])
	note := fmt.Sprintf("TCP connect to first shell byte: key + passphrase (production argon2id) + mailed code; PostgreSQL 15 on 127.0.0.1, durability off (a test server); %d runs of %d set-ups, the stores taking turns", setupRuns, setupsPerRun(cfg.setups))
	r.add(figure{Name: "session set-up median, store on PostgreSQL", Value: pg50.median, Spread: pg50.String(), Unit: "ms",
		Baseline: "store on SQLite", BaselineValue: sq50.median, BaselineSpread: sq50.String(), Target: "<= 1.2", Lower: true, Note: note})
	r.add(figure{Name: "session set-up p99, store on PostgreSQL", Value: pg99.median, Spread: pg99.String(), Unit: "ms",
		Baseline: "store on SQLite", BaselineValue: sq99.median, BaselineSpread: sq99.String(), Target: "<= 1.2", Lower: true})
	return nil
}
