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

// storeRuns is how many runs the store figures take, the two stores
// taking turns; each figure is the median of the runs' percentiles.
const storeRuns = 5

// storeFigures: session set-up (key, passphrase, mailed code: every
// store read and write a login makes, the limits' counters included)
// with the gateway's store on PostgreSQL against SQLite, on the same
// machine: both gateways up, in storeRuns runs of setups/2 set-ups one
// at a time (100 at the default, so that a run's p99 is its slowest
// set-up), taking turns so that drift in the machine's load touches both.
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
	stores := []struct {
		name string
		args []string
		t    target
		runs []percentiles
	}{{name: "SQLite"}, {name: "PostgreSQL", args: []string{"-dsn-file", dsnFile}}}
	for i := range stores {
		st := &stores[i]
		gw, ag, err := startStack(filepath.Join(dir, st.name), 1, false, true, cfg.shell, st.args...)
		if err != nil {
			return err
		}
		defer gw.stop()
		defer ag.stop()
		defer clearSpool(gw.ready["spool"])
		st.t = target{name: "gateway on " + st.name, addr: gw.ready["people"], hostKey: signer(gatewayKeyName).PublicKey(), gateway: true, proc: gw}
	}
	perRun := max(cfg.setups/2, 1)
	logf("store: %d runs of %d set-ups one at a time, SQLite and PostgreSQL taking turns", storeRuns, perRun)
	for range storeRuns {
		for i := range stores {
			st := &stores[i]
			d := make([]time.Duration, perRun)
			for k := range d {
				if d[k], err = setup(st.t, 0); err != nil {
					return fmt.Errorf("store on %s: %w", st.name, err)
				}
			}
			st.runs = append(st.runs, pct(d))
		}
	}
	sq, pg := stores[0].runs, stores[1].runs
	p50 := func(runs []percentiles) spread {
		return spreadOf(runs, func(p percentiles) float64 { return ms(p.p50) })
	}
	p99 := func(runs []percentiles) spread {
		return spreadOf(runs, func(p percentiles) float64 { return ms(p.p99) })
	}
	note := fmt.Sprintf("TCP connect to first shell byte: key + passphrase (production argon2id) + mailed code; PostgreSQL 15 on 127.0.0.1, durability off (a test server); %d runs of %d set-ups, the stores taking turns", storeRuns, perRun)
	r.add(figure{Name: "session set-up median, store on PostgreSQL", Value: p50(pg).median, Spread: p50(pg).String(), Unit: "ms",
		Baseline: "store on SQLite", BaselineValue: p50(sq).median, BaselineSpread: p50(sq).String(), Target: "<= 1.2", Lower: true, Note: note})
	r.add(figure{Name: "session set-up p99, store on PostgreSQL", Value: p99(pg).median, Spread: p99(pg).String(), Unit: "ms",
		Baseline: "store on SQLite", BaselineValue: p99(sq).median, BaselineSpread: p99(sq).String(), Target: "<= 1.2", Lower: true})
	return nil
}
