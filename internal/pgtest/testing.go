package pgtest

import (
	"context"
	"fmt"
	"os"
	"testing"
)

var (
	shared   *Server
	startErr error
)

// Main runs a test binary's tests with one server for them all, started
// first and removed at the end: call it from TestMain. check, if not nil,
// runs once the server is gone (goleak.Find, say); its error fails the
// run.
func Main(m *testing.M, check func() error) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	shared, startErr = Start(ctx, "")
	cancel()
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	if check != nil && code == 0 {
		if err := check(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// Shared returns the binary's server (Main started it). When it could not
// start, the test is skipped, or failed under CI=true (`make test` must
// not pass by skipping).
func Shared(t testing.TB) *Server {
	t.Helper()
	if shared == nil {
		err := startErr
		if err == nil {
			t.Fatal("pgtest: no server: call pgtest.Main from TestMain")
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL: %v (CI=true: a missing server fails)", err)
		}
		t.Skipf("skipped: PostgreSQL: %v; `make test` installs it", err)
	}
	return shared
}

// DB returns the DSN of a new, empty database on the binary's server.
func DB(t testing.TB) string {
	t.Helper()
	dsn, err := Shared(t).CreateDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}
