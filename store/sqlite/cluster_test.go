package sqlite

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
)

// clusterBackend is what the cluster tests need of a backend; they take
// the backend as an argument so that any backend runs them.
type clusterBackend interface {
	CreateSession(ctx context.Context, s store.Session) error
	FinishSession(ctx context.Context, id string, end store.SessionEnd) error
	Session(ctx context.Context, id string) (store.Session, error)
	InterruptLiveSessions(ctx context.Context, gateway string, now time.Time) ([]string, error)
	store.Cluster
}

func TestCluster(t *testing.T) {
	for name, f := range map[string]func(*testing.T, clusterBackend){
		"restart touches only its own rows": testInterruptOwnRows,
		"expired lease taken over once":     testExpireGateways,
		"kill requests taken once":          testKillRequests,
		"presence":                          testPresence,
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := open(t)
			f(t, s)
		})
	}
}

var t0 = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

func liveOn(t *testing.T, b clusterBackend, id, gateway string) {
	t.Helper()
	err := b.CreateSession(ctx, store.Session{ID: id, Person: "alice", Host: "web-01", State: store.StateLive,
		Started: t0, Gateway: gateway, GatewayAdvertise: gateway + ".example:2222"})
	if err != nil {
		t.Fatal(err)
	}
}

func state(t *testing.T, b clusterBackend, id string) store.Session {
	t.Helper()
	x, err := b.Session(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func testInterruptOwnRows(t *testing.T, b clusterBackend) {
	liveOn(t, b, "a1", "gw-a")
	liveOn(t, b, "b1", "gw-b")
	liveOn(t, b, "old", "") // from before several gateways
	if x := state(t, b, "b1"); x.Gateway != "gw-b" || x.GatewayAdvertise != "gw-b.example:2222" {
		t.Fatalf("gateway columns: %+v", x)
	}
	ids, err := b.InterruptLiveSessions(ctx, "gw-a", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a1", "old"}) {
		t.Fatalf("interrupted %v, want a1 and old", ids)
	}
	if x := state(t, b, "b1"); x.State != store.StateLive {
		t.Fatalf("the peer's session was touched: %+v", x)
	}
}

func testExpireGateways(t *testing.T, b clusterBackend) {
	for _, g := range []string{"gw-a", "gw-b"} {
		if err := b.RenewLease(ctx, store.Lease{Gateway: g, Advertise: g + ":2222", Renewed: t0, Expires: t0.Add(15 * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	liveOn(t, b, "a1", "gw-a")
	liveOn(t, b, "b1", "gw-b")
	if err := b.SetPresence(ctx, "web-01", "gw-b", t0); err != nil {
		t.Fatal(err)
	}
	if err := b.RequestKill(ctx, store.KillRequest{SessionID: "b1", Gateway: "gw-b", By: "carol", Requested: t0}); err != nil {
		t.Fatal(err)
	}
	// Not yet expired: nothing happens.
	if got, err := b.ExpireGateways(ctx, "gw-a", t0.Add(10*time.Second)); err != nil || len(got) != 0 {
		t.Fatalf("before expiry: %v %v", got, err)
	}
	// gw-a renews, gw-b does not: after 15 s gw-a takes over from gw-b.
	if err := b.RenewLease(ctx, store.Lease{Gateway: "gw-a", Advertise: "gw-a:2222", Renewed: t0.Add(10 * time.Second), Expires: t0.Add(25 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	got, err := b.ExpireGateways(ctx, "gw-a", t0.Add(16*time.Second))
	if err != nil || len(got) != 1 || got[0].Gateway != "gw-b" || !slices.Equal(got[0].Sessions, []string{"b1"}) {
		t.Fatalf("expired: %+v %v", got, err)
	}
	x := state(t, b, "b1")
	if x.State != store.StateInterrupted || !x.Ended.Equal(t0.Add(16*time.Second)) {
		t.Fatalf("b1 after expiry: %+v", x)
	}
	if want := "gw-b's spool"; !contains(x.EndReason, store.EndReasonGatewayLost) || !contains(x.EndReason, want) {
		t.Fatalf("end reason %q", x.EndReason)
	}
	if x := state(t, b, "a1"); x.State != store.StateLive {
		t.Fatalf("own session touched: %+v", x)
	}
	// One peer wins: a second look finds nothing more to do.
	if got, err := b.ExpireGateways(ctx, "gw-c", t0.Add(17*time.Second)); err != nil || len(got) != 0 {
		t.Fatalf("second peer: %+v %v", got, err)
	}
	if _, err := b.Lease(ctx, "gw-b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("gw-b's lease after expiry: %v", err)
	}
	if rs, _ := b.TakeKillRequests(ctx, "gw-b"); len(rs) != 0 {
		t.Fatalf("gw-b's kill requests survived: %+v", rs)
	}
	// A gateway never expires itself: its own clock says it is alive.
	if got, _ := b.ExpireGateways(ctx, "gw-a", t0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("self expired: %+v", got)
	}
	ls, err := b.Leases(ctx)
	if err != nil || len(ls) != 1 || ls[0].Gateway != "gw-a" || ls[0].Advertise != "gw-a:2222" || !ls[0].Expires.Equal(t0.Add(25*time.Second)) {
		t.Fatalf("leases %+v %v", ls, err)
	}
}

func testKillRequests(t *testing.T, b clusterBackend) {
	for i, id := range []string{"s1", "s2"} {
		if err := b.RequestKill(ctx, store.KillRequest{SessionID: id, Gateway: "gw-b", By: "carol", Reason: "r",
			Requested: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.RequestKill(ctx, store.KillRequest{SessionID: "s3", Gateway: "gw-a", By: "dave", Requested: t0}); err != nil {
		t.Fatal(err)
	}
	got, err := b.TakeKillRequests(ctx, "gw-b")
	if err != nil || len(got) != 2 || got[0].SessionID != "s1" || got[1].SessionID != "s2" || got[0].By != "carol" ||
		got[0].Reason != "r" || !got[1].Requested.Equal(t0.Add(time.Second)) {
		t.Fatalf("taken %+v %v", got, err)
	}
	if again, err := b.TakeKillRequests(ctx, "gw-b"); err != nil || len(again) != 0 {
		t.Fatalf("taken twice: %+v %v", again, err)
	}
	if other, _ := b.TakeKillRequests(ctx, "gw-a"); len(other) != 1 || other[0].SessionID != "s3" {
		t.Fatalf("gw-a's: %+v", other)
	}
}

func testPresence(t *testing.T, b clusterBackend) {
	for _, g := range []string{"gw-a", "gw-b"} {
		if err := b.RenewLease(ctx, store.Lease{Gateway: g, Renewed: t0, Expires: t0.Add(15 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		if err := b.SetPresence(ctx, "web-01", g, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SetPresence(ctx, "db-01", "gw-a", t0); err != nil {
		t.Fatal(err)
	}
	// A renewal refreshes the gateway's presence rows, not their since.
	if err := b.RenewLease(ctx, store.Lease{Gateway: "gw-a", Renewed: t0.Add(5 * time.Second), Expires: t0.Add(20 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	ps, err := b.Presence(ctx, t0.Add(6*time.Second))
	if err != nil || len(ps) != 3 {
		t.Fatalf("presence %+v %v", ps, err)
	}
	if p := ps[1]; p.Host != "web-01" || p.Gateway != "gw-a" || !p.Since.Equal(t0) || !p.LastSeen.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("web-01 on gw-a: %+v", p)
	}
	// gw-b's lease expired: its rows no longer count, even before a peer
	// took over.
	ps, _ = b.Presence(ctx, t0.Add(16*time.Second))
	if len(ps) != 2 || ps[0].Host != "db-01" || ps[1].Gateway != "gw-a" {
		t.Fatalf("presence after gw-b's expiry: %+v", ps)
	}
	if err := b.DropPresence(ctx, "web-01", "gw-a"); err != nil {
		t.Fatal(err)
	}
	ps, _ = b.Presence(ctx, t0.Add(6*time.Second))
	if len(ps) != 2 || ps[0].Host != "db-01" || ps[1].Gateway != "gw-b" {
		t.Fatalf("after one tunnel dropped: %+v", ps)
	}
	if err := b.DropPresence(ctx, "", "gw-a"); err != nil {
		t.Fatal(err)
	}
	ps, _ = b.Presence(ctx, t0.Add(6*time.Second))
	if len(ps) != 1 || ps[0].Gateway != "gw-b" {
		t.Fatalf("after gw-a dropped all: %+v", ps)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
