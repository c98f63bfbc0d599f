package gateway_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/internal/pgtest"
	"github.com/rr-gateway/rr/store/postgres"
	"github.com/rr-gateway/rr/store/sqlite"
)

// onPostgres gives each peer its own handle on one fresh PostgreSQL
// database (as each rr-gateway process has its pool), named by
// application_name so that a test can find its connections; the gateway
// runs on the *postgres.Store itself, so on its LISTEN/NOTIFY.
func onPostgres(t *testing.T) (dsn string, open func(*testing.T) (*sqlite.Store, gateway.Store)) {
	dsn = pgtest.DB(t)
	n := 0
	return dsn, func(t *testing.T) (*sqlite.Store, gateway.Store) {
		n++
		st, err := postgres.Open(context.Background(), dsn+"&application_name=gw-"+strconv.Itoa(n), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st.Store, st
	}
}

// TestKillWakesThePeerOnPostgres: on PostgreSQL, a kill asked on gw-2
// reaches gw-1 through NOTIFY on rr_kill at once, though gw-1 would look
// for it only at its next poll or renewal, an hour and twenty minutes
// away: without the wake-up the kill gives up after its 15 s.
func TestKillWakesThePeerOnPostgres(t *testing.T) {
	dsn, open := onPostgres(t)
	e1, e2 := newPeersOn(t, peerOptions{killPoll: time.Hour, lease: time.Hour, store: open})
	pgtest.WaitListening(t, dsn, "rr_kill", 2)
	killFromThePeer(t, e1, e2, nil)
}

// TestKillPollsWhileListenIsDown: gw-1's LISTEN connection cut on the
// server (a network cut, a restarted pooler): the NOTIFY of a kill asked
// meanwhile is lost, and gw-1's poll of the store still takes the kill.
func TestKillPollsWhileListenIsDown(t *testing.T) {
	dsn, open := onPostgres(t)
	e1, e2 := newPeersOn(t, peerOptions{killPoll: 50 * time.Millisecond, lease: time.Hour, store: open})
	pgtest.WaitListening(t, dsn, "rr_kill", 2)
	// The listener reconnects a second later: the kill is asked, and its
	// notification sent, in that second.
	killFromThePeer(t, e1, e2, func() {
		if n := pgtest.DropListeners(t, dsn, "rr_kill", "gw-1"); n != 1 {
			t.Fatalf("%d of gw-1's listeners cut, want 1", n)
		}
	})
}
