package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listening returns how many connections to dsn's database last ran
// pgxlisten's `listen "channel"` (a listener waiting for notifications),
// counting only those whose application_name is app when app is not "".
func Listening(ctx context.Context, dsn, channel, app string) (int, error) {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	var n int
	err = c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query = 'listen "' || $1 || '"'
		AND ($2 = '' OR application_name = $2)`, channel, app).Scan(&n)
	return n, err
}

// WaitListening waits until n connections listen on channel (Listening):
// a notification sent before a listener is listening is lost, so a test
// that counts on one waits for this first.
func WaitListening(t testing.TB, dsn, channel string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		got, err := Listening(ctx, dsn, channel, "")
		if err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d listeners on %s after 20 s", got, n, channel)
		case <-time.After(20 * time.Millisecond): // another connection's state: the server is all there is to ask
		}
	}
}

// DropListeners ends, on the server, the connections of application app
// that listen on channel, as a cut network would: a listener then misses
// what is sent until it has reconnected. It returns how many it ended.
func DropListeners(t testing.TB, dsn, channel, app string) int {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	err = c.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query = 'listen "' || $1 || '"'
		AND application_name = $2`, channel, app).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
