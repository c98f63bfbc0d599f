package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlstore"
)

// Several gateways on one store: each gateway a handle of its own
// (Database.Open), as each rr-gateway process holds its own pool.

var c0 = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

func liveOn(t *testing.T, s *sqlstore.Store, id, gateway string) {
	t.Helper()
	err := s.CreateSession(ctx, store.Session{ID: id, Person: "alice", Host: "web-01", State: store.StateLive,
		Started: c0, Gateway: gateway, GatewayAdvertise: gateway + ".example:2222"})
	if err != nil {
		t.Fatal(err)
	}
}

func state(t *testing.T, s *sqlstore.Store, id string) store.Session {
	t.Helper()
	x, err := s.Session(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func testInterruptOwnRows(t *testing.T, b Backend) {
	s := b.fresh(t)
	liveOn(t, s, "a1", "gw-a")
	liveOn(t, s, "b1", "gw-b")
	liveOn(t, s, "old", "") // from before several gateways
	if x := state(t, s, "b1"); x.Gateway != "gw-b" || x.GatewayAdvertise != "gw-b.example:2222" {
		t.Fatalf("gateway columns: %+v", x)
	}
	ids, err := s.InterruptLiveSessions(ctx, "gw-a", c0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a1", "old"}) {
		t.Fatalf("interrupted %v, want a1 and old", ids)
	}
	if x := state(t, s, "b1"); x.State != store.StateLive {
		t.Fatalf("the peer's session was touched: %+v", x)
	}
}

func testExpireGateways(t *testing.T, b Backend) {
	s := b.fresh(t)
	for _, g := range []string{"gw-a", "gw-b"} {
		if err := s.RenewLease(ctx, store.Lease{Gateway: g, Advertise: g + ":2222", Renewed: c0, Expires: c0.Add(15 * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	liveOn(t, s, "a1", "gw-a")
	liveOn(t, s, "b1", "gw-b")
	if err := s.SetPresence(ctx, "web-01", "gw-b", c0); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestKill(ctx, store.KillRequest{SessionID: "b1", Gateway: "gw-b", By: "carol", Requested: c0}); err != nil {
		t.Fatal(err)
	}
	// Not yet expired: nothing happens.
	if got, err := s.ExpireGateways(ctx, "gw-a", c0.Add(10*time.Second)); err != nil || len(got) != 0 {
		t.Fatalf("before expiry: %v %v", got, err)
	}
	// gw-a renews, gw-b does not: after 15 s gw-a takes over from gw-b.
	if err := s.RenewLease(ctx, store.Lease{Gateway: "gw-a", Advertise: "gw-a:2222", Renewed: c0.Add(10 * time.Second), Expires: c0.Add(25 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ExpireGateways(ctx, "gw-a", c0.Add(16*time.Second))
	if err != nil || len(got) != 1 || got[0].Gateway != "gw-b" || !slices.Equal(got[0].Sessions, []string{"b1"}) {
		t.Fatalf("expired: %+v %v", got, err)
	}
	x := state(t, s, "b1")
	if x.State != store.StateInterrupted || !x.Ended.Equal(c0.Add(16*time.Second)) {
		t.Fatalf("b1 after expiry: %+v", x)
	}
	if want := "gw-b's spool"; !strings.Contains(x.EndReason, store.EndReasonGatewayLost) || !strings.Contains(x.EndReason, want) {
		t.Fatalf("end reason %q", x.EndReason)
	}
	if x := state(t, s, "a1"); x.State != store.StateLive {
		t.Fatalf("own session touched: %+v", x)
	}
	// One peer wins: a second look finds nothing more to do.
	if got, err := s.ExpireGateways(ctx, "gw-c", c0.Add(17*time.Second)); err != nil || len(got) != 0 {
		t.Fatalf("second peer: %+v %v", got, err)
	}
	if _, err := s.Lease(ctx, "gw-b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("gw-b's lease after expiry: %v", err)
	}
	if rs, _ := s.TakeKillRequests(ctx, "gw-b"); len(rs) != 0 {
		t.Fatalf("gw-b's kill requests survived: %+v", rs)
	}
	// A gateway never expires itself: its own clock says it is alive.
	if got, _ := s.ExpireGateways(ctx, "gw-a", c0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("self expired: %+v", got)
	}
	ls, err := s.Leases(ctx)
	if err != nil || len(ls) != 1 || ls[0].Gateway != "gw-a" || ls[0].Advertise != "gw-a:2222" || !ls[0].Expires.Equal(c0.Add(25*time.Second)) {
		t.Fatalf("leases %+v %v", ls, err)
	}
}

func testKillRequests(t *testing.T, b Backend) {
	s := b.fresh(t)
	for i, id := range []string{"s1", "s2"} {
		if err := s.RequestKill(ctx, store.KillRequest{SessionID: id, Gateway: "gw-b", By: "carol", Reason: "r",
			Requested: c0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RequestKill(ctx, store.KillRequest{SessionID: "s3", Gateway: "gw-a", By: "dave", Requested: c0}); err != nil {
		t.Fatal(err)
	}
	got, err := s.TakeKillRequests(ctx, "gw-b")
	if err != nil || len(got) != 2 || got[0].SessionID != "s1" || got[1].SessionID != "s2" || got[0].By != "carol" ||
		got[0].Reason != "r" || !got[1].Requested.Equal(c0.Add(time.Second)) {
		t.Fatalf("taken %+v %v", got, err)
	}
	if again, err := s.TakeKillRequests(ctx, "gw-b"); err != nil || len(again) != 0 {
		t.Fatalf("taken twice: %+v %v", again, err)
	}
	if other, _ := s.TakeKillRequests(ctx, "gw-a"); len(other) != 1 || other[0].SessionID != "s3" {
		t.Fatalf("gw-a's: %+v", other)
	}
}

func testPresence(t *testing.T, b Backend) {
	s := b.fresh(t)
	for _, g := range []string{"gw-a", "gw-b"} {
		if err := s.RenewLease(ctx, store.Lease{Gateway: g, Renewed: c0, Expires: c0.Add(15 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPresence(ctx, "web-01", g, c0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetPresence(ctx, "db-01", "gw-a", c0); err != nil {
		t.Fatal(err)
	}
	// A renewal refreshes the gateway's presence rows, not their since.
	if err := s.RenewLease(ctx, store.Lease{Gateway: "gw-a", Renewed: c0.Add(5 * time.Second), Expires: c0.Add(20 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Presence(ctx, c0.Add(6*time.Second))
	if err != nil || len(ps) != 3 {
		t.Fatalf("presence %+v %v", ps, err)
	}
	if p := ps[1]; p.Host != "web-01" || p.Gateway != "gw-a" || !p.Since.Equal(c0) || !p.LastSeen.Equal(c0.Add(5*time.Second)) {
		t.Fatalf("web-01 on gw-a: %+v", p)
	}
	// gw-b's lease expired: its rows no longer count, even before a peer
	// took over.
	ps, _ = s.Presence(ctx, c0.Add(16*time.Second))
	if len(ps) != 2 || ps[0].Host != "db-01" || ps[1].Gateway != "gw-a" {
		t.Fatalf("presence after gw-b's expiry: %+v", ps)
	}
	if err := s.DropPresence(ctx, "web-01", "gw-a"); err != nil {
		t.Fatal(err)
	}
	ps, _ = s.Presence(ctx, c0.Add(6*time.Second))
	if len(ps) != 2 || ps[0].Host != "db-01" || ps[1].Gateway != "gw-b" {
		t.Fatalf("after one tunnel dropped: %+v", ps)
	}
	if err := s.DropPresence(ctx, "", "gw-a"); err != nil {
		t.Fatal(err)
	}
	ps, _ = s.Presence(ctx, c0.Add(6*time.Second))
	if len(ps) != 1 || ps[0].Gateway != "gw-b" {
		t.Fatalf("after gw-a dropped all: %+v", ps)
	}
}

// testTakeoverRace: gateways looking at once at a dead peer's expired
// lease (each its own handle, as each process has) take over once: one
// of them reports its sessions, the others nothing, however their
// transactions interleave.
func testTakeoverRace(t *testing.T, b Backend) {
	db := b.New(t)
	stores := []*sqlstore.Store{db.open(t), db.open(t), db.open(t), db.open(t)}
	s := stores[0]
	for round := range 10 {
		dead := fmt.Sprint("dead-", round)
		if err := s.RenewLease(ctx, store.Lease{Gateway: dead, Renewed: c0, Expires: c0.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			liveOn(t, s, fmt.Sprintf("%s-s%d", dead, i), dead)
		}
		got := make([][]store.Expired, len(stores))
		err := atOnce(stores, func(i int, st *sqlstore.Store) (err error) {
			got[i], err = st.ExpireGateways(ctx, fmt.Sprint("gw-", i), c0.Add(time.Minute))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var reported []string
		takers := 0
		for _, g := range got {
			for _, e := range g {
				takers++
				if e.Gateway != dead {
					t.Fatalf("round %d: took over %s", round, e.Gateway)
				}
				reported = append(reported, e.Sessions...)
			}
		}
		if takers != 1 || len(reported) != 3 {
			t.Fatalf("round %d: %d peers took over %s, reporting sessions %v: want one peer, 3 sessions", round, takers, dead, reported)
		}
	}
}

// testKillRequestsNeverLost: a request made while its gateway takes its
// requests is either taken then or left for the next take, never lost.
func testKillRequestsNeverLost(t *testing.T, b Backend) {
	db := b.New(t)
	asker, holder := db.open(t), db.open(t)
	const n = 200
	taken := map[string]bool{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range n {
			if err := asker.RequestKill(ctx, store.KillRequest{SessionID: fmt.Sprint("s", i), Gateway: "gw-b", By: "carol",
				Requested: c0.Add(time.Duration(i))}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	take := func() {
		rs, err := holder.TakeKillRequests(ctx, "gw-b")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if taken[r.SessionID] {
				t.Fatalf("request for %s taken twice", r.SessionID)
			}
			taken[r.SessionID] = true
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		take()
	}
	wg.Wait()
	take()
	if len(taken) != n {
		t.Fatalf("%d of %d kill requests taken: the others were lost", len(taken), n)
	}
}
