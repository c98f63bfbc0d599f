package postgres

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rr-gateway/rr/internal/pgtest"
	"github.com/rr-gateway/rr/store/sqlstore"
	"github.com/rr-gateway/rr/store/storetest"
	"go.uber.org/goleak"
)

// One throwaway server for the package's tests; no test may leave a
// goroutine running.
func TestMain(m *testing.M) {
	pgtest.Main(m, func() error { return goleak.Find() })
}

var ctx = context.Background()

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(ctx, dsn, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStore runs the store's conformance suite on PostgreSQL.
func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Backend{New: func(t *testing.T) storetest.Database {
		dsn := pgtest.DB(t)
		return storetest.Database{
			Open: func() (*sqlstore.Store, error) {
				s, err := Open(ctx, dsn, 5*time.Second)
				if err != nil {
					return nil, err
				}
				return s.Store, nil
			},
			Exec: func(q string) error {
				c, err := pgx.Connect(ctx, dsn)
				if err != nil {
					return err
				}
				defer c.Close(ctx)
				_, err = c.Exec(ctx, q)
				return err
			},
		}
	}})
}

// TestUnreachable: a server that is not there is one short error that
// names where it was looked for and never the password.
func TestUnreachable(t *testing.T) {
	srv := pgtest.Shared(t)
	dsn := strings.Replace(srv.DSN("nope"), srv.Password, "s3cret-pw", 1)
	// A port nothing listens on: the server's own, plus one, is a guess;
	// a closed listener's port is certain.
	dsn = strings.Replace(dsn, ":"+itoa(srv.Port), ":1", 1)
	_, err := Open(ctx, dsn, 2*time.Second)
	if err == nil {
		t.Fatal("opened a store on a closed port")
	}
	if !strings.Contains(err.Error(), "cannot reach the PostgreSQL server at 127.0.0.1:1") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error %q", err)
	}
	// A wrong password is refused as clearly, and not echoed.
	_, err = Open(ctx, strings.Replace(srv.DSN("postgres"), srv.Password, "s3cret-pw", 1), 2*time.Second)
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := Open(ctx, "postgres://u:s3cret-pw@[::1", time.Second); err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("a DSN that does not parse: %v", err)
	}
}

// TestListenNotify: a notification sent through one store reaches a
// listener on another (another gateway), and Listen ends with its
// context.
func TestListenNotify(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := open(t, dsn), open(t, dsn)
	lctx, cancel := context.WithCancel(ctx)
	got := make(chan string, 16)
	done := make(chan error, 1)
	go func() { done <- a.Listen(lctx, "rr_kill", func(p string) { got <- p }) }()
	// The listener may not be listening yet: notify until it hears one.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		if err := b.Notify(ctx, "rr_kill", "s-1"); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-got:
			if p != "s-1" {
				t.Fatalf("payload %q", p)
			}
			break wait
		case <-tick.C:
		case <-time.After(10 * time.Second):
			t.Fatal("no notification in 10 s")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Listen after its context ended: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
