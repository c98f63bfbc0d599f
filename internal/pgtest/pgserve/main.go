// Command pgserve runs a throwaway PostgreSQL (package pgtest) in the
// foreground for `make demo-ha` and `make load`: it writes the DSN of a
// fresh database to -dsn-file (mode 0600, as the gateways' store.dsn_file
// wants it), and stops and removes the server on SIGTERM. It ignores
// SIGINT: a Ctrl-C reaches the whole terminal's group, and the gateways
// must stop (and write their last audit checkpoint) before it does.
//
// Must not: serve anything but 127.0.0.1, or keep data past its stop.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rr-gateway/rr/internal/pgtest"
)

func main() {
	dsnFile := flag.String("dsn-file", "", "write the database's DSN to this `file` (mode 0600)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: pgserve -dsn-file FILE\n\nRuns a throwaway PostgreSQL on 127.0.0.1 until SIGTERM.")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *dsnFile == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dsnFile); err != nil {
		fmt.Fprintln(os.Stderr, "pgserve:", err)
		os.Exit(1)
	}
}

func run(dsnFile string) error {
	signal.Ignore(syscall.SIGINT)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	srv, err := pgtest.Start(sctx, "")
	cancel()
	if err != nil {
		return err
	}
	defer srv.Close()
	dsn, err := srv.CreateDB(ctx)
	if err != nil {
		return err
	}
	tmp := dsnFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(dsn+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, dsnFile); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "pgserve: PostgreSQL on 127.0.0.1:%d (folder %s), DSN in %s\n", srv.Port, srv.Dir, dsnFile)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "pgserve: stopping")
	return nil
}
