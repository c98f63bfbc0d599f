package gateway_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// newPeers starts two gateways, gw-1 and gw-2, on one SQLite file with
// one host key, and web-01's agent holding a tunnel to each: the
// environments of alice on each.
func newPeers(t *testing.T) (e1, e2 *env) {
	return newPeersWith(t, 50*time.Millisecond, nil)
}

// newPeersWith is newPeers with the gateways' kill poll and, if not nil,
// a wrapper of their stores.
func newPeersWith(t *testing.T, killPoll time.Duration, wrap func(*sqlite.Store) gateway.Store) (e1, e2 *env) {
	return newPeersOn(t, peerOptions{killPoll: killPoll, lease: 3 * time.Second, wrap: wrap})
}

// peerOptions are how newPeersOn starts the two gateways.
type peerOptions struct {
	killPoll, lease time.Duration
	// wrap, if set, wraps each gateway's store (SQLite's).
	wrap func(*sqlite.Store) gateway.Store
	// store, if set, opens each gateway's own handle on a store they
	// share instead of one SQLite file: the one the harness reads and
	// writes, and the one the gateway runs on.
	store func(t *testing.T) (*sqlite.Store, gateway.Store)
}

// newPeersOn is newPeers as o says.
func newPeersOn(t *testing.T, o peerOptions) (e1, e2 *env) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "rr.db")
	hostKey := gatewaytest.NewKey(t, "gateway_host_key").Signer
	start := func(name string) *gatewaytest.Gateway {
		c := gatewaytest.Config{Database: db, WrapStore: o.wrap, Gateway: gateway.Config{
			Name: name, Advertise: name + ".example.com:2222", HostKey: hostKey,
			Lease: o.lease, KillPoll: o.killPoll, Logger: gatewaytest.Logger(t, name)}}
		if o.store != nil {
			st, gs := o.store(t)
			c.Store, c.WrapStore = st, func(*sqlite.Store) gateway.Store { return gs }
		}
		return gatewaytest.StartGateway(t, c)
	}
	g1, g2 := start("gw-1"), start("gw-2")
	alice := gatewaytest.NewKey(t, "alice")
	g1.AddPerson("alice", "advanced", "alice@example.com", "", alice)
	web01 := g1.AddHost("web-01")
	g1.SetPassphrase("web-01", "pp-web-01")
	g1.AddTeam("ops_RR", true, []string{"alice"}, "web-01")
	gatewaytest.StartAgent(t, g1, "web-01", web01, func(c *agent.Config) {
		c.Gateways = []string{g1.AgentAddr, g2.AgentAddr}
	})
	g1.WaitOnline("web-01")
	g2.WaitOnline("web-01")
	return &env{gw: g1, alice: alice}, &env{gw: g2, alice: alice}
}

// TestKillFromAPeer: a session held by gw-1 is listed, shown and killed
// from gw-2's console; the person is told by whom, the row is killed and
// the recording finalized before the kill answers.
func TestKillFromAPeer(t *testing.T) {
	e1, e2 := newPeers(t)
	id, victimErr := startVictim(t, e1)
	admin := e2.dialB(t, "rr")

	out, _ := console(t, admin, "sessions --live\nshow "+id+"\n")
	for _, want := range []string{id + "  live", "gw-1", "gateway:      gw-1 (gw-1.example.com:2222)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("gw-2's console:\n%s\nwant %q in it", out, want)
		}
	}
	// What hosts shows (an admin's command): both gateways hold web-01.
	waitPresence(t, e2.gw.Store, "web-01", "gw-1", "gw-2")

	out, errOut := console(t, admin, "kill "+id+" leaving now\n")
	if !strings.Contains(out, "killed session "+id) {
		t.Fatalf("kill from gw-2: %q %q", out, errOut)
	}
	// The kill answered only once the row was final.
	x, err := e2.gw.Store.Session(context.Background(), id)
	if err != nil || x.State != store.StateKilled || x.KilledBy != "alice" || x.EndReason != "killed by alice: leaving now" ||
		x.RecordingSHA256 == "" {
		t.Fatalf("row after the kill answered: %+v %v", x, err)
	}
	waitFor(t, victimErr, "Session closed by alice: leaving now")
}

// hub is LISTEN/NOTIFY in memory: what a store that can wake peers
// offers (gateway.Notifier).
type hub struct {
	mu   sync.Mutex
	subs map[int]func(channel, payload string)
	next int
}

// notifying is a SQLite store with the hub's Listen and Notify.
type notifying struct {
	*sqlite.Store
	hub *hub
}

func (n notifying) Listen(ctx context.Context, channel string, fn func(payload string)) error {
	n.hub.mu.Lock()
	id := n.hub.next
	n.hub.next++
	n.hub.subs[id] = func(ch, p string) {
		if ch == channel {
			fn(p)
		}
	}
	n.hub.mu.Unlock()
	<-ctx.Done()
	n.hub.mu.Lock()
	delete(n.hub.subs, id)
	n.hub.mu.Unlock()
	return ctx.Err()
}

func (n notifying) Notify(_ context.Context, channel, payload string) error {
	n.hub.mu.Lock()
	defer n.hub.mu.Unlock()
	for _, f := range n.hub.subs {
		f(channel, payload)
	}
	return nil
}

// TestKillWakesThePeer: with a store that can wake peers, a kill reaches
// the holder at once, though it would not poll, nor renew its lease (which
// takes kills too), for twenty minutes.
func TestKillWakesThePeer(t *testing.T) {
	h := &hub{subs: map[int]func(string, string){}}
	e1, e2 := newPeersOn(t, peerOptions{killPoll: time.Hour, lease: time.Hour,
		wrap: func(st *sqlite.Store) gateway.Store { return notifying{st, h} }})
	killFromThePeer(t, e1, e2, nil)
}

// killFromThePeer starts a session through e1, runs between (if not nil),
// then kills the session from e2's console: the kill must answer that it
// was done and the person must be told.
func killFromThePeer(t *testing.T, e1, e2 *env, between func()) {
	t.Helper()
	id, victimErr := startVictim(t, e1)
	admin := e2.dialB(t, "rr")
	if between != nil {
		between()
	}
	out, errOut := console(t, admin, "kill "+id+"\n")
	if !strings.Contains(out, "killed session "+id) {
		t.Fatalf("kill from gw-2: %q %q", out, errOut)
	}
	waitFor(t, victimErr, "Session closed by alice")
}

// TestPeerLeaseExpires: a gateway that stops renewing its lease (it was
// killed) has its live sessions marked interrupted by a peer within the
// lease, the row saying where the recording is; a kill of a session held
// by a gateway that is gone says so.
func TestPeerLeaseExpires(t *testing.T) {
	e1, e2 := newPeers(t)
	ctx := context.Background()
	st := e1.gw.Store
	now := time.Now()
	if err := st.RenewLease(ctx, store.Lease{Gateway: "gw-dead", Renewed: now.Add(-time.Minute), Expires: now.Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"orphan", "ghost"} {
		gw := map[string]string{"orphan": "gw-dead", "ghost": "gw-unknown"}[id]
		if err := st.CreateSession(ctx, store.Session{ID: id, Person: "alice", Team: "ops_RR", Host: "web-01",
			State: store.StateLive, Started: now, Gateway: gw, Recording: "/spool/" + id + ".gz"}); err != nil {
			t.Fatal(err)
		}
	}
	// A peer takes over once it has renewed its own lease for a lease
	// (the peers have just started), at its next renewal.
	deadline := time.Now().Add(2 * 3 * time.Second)
	for {
		x, err := st.Session(ctx, "orphan")
		if err != nil {
			t.Fatal(err)
		}
		if x.State == store.StateInterrupted {
			if !strings.Contains(x.EndReason, "gw-dead's spool") {
				t.Fatalf("end reason %q does not say where the recording is", x.EndReason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a dead peer's session still live after the lease")
		}
		time.Sleep(50 * time.Millisecond) // no event to wait on: the store is all peers share
	}
	evs, err := st.AuditEvents(ctx, store.AuditFilter{Action: "session.interrupted"})
	if err != nil || len(evs) != 1 || evs[0].SessionID != "orphan" || !strings.Contains(evs[0].Detail, "gw-dead") {
		t.Fatalf("audit of the takeover: %+v %v", evs, err)
	}

	admin := e2.dialB(t, "rr")
	out, errOut := console(t, admin, "show orphan\nkill ghost\n")
	if !strings.Contains(out, "in gw-dead's spool; gw-dead seals and uploads it when it restarts") {
		t.Errorf("show of the interrupted session:\n%s", out)
	}
	if !strings.Contains(errOut, "the gateway holding it, gw-unknown, is gone") {
		t.Errorf("kill of a session whose gateway is gone: %q", errOut)
	}
}

// TestDownloadFromAPeersSpool: a finalized recording still only in gw-1's
// spool (not uploaded) is refused on gw-2 with a message naming gw-1,
// not "no such recording"; gw-1 serves it.
func TestDownloadFromAPeersSpool(t *testing.T) {
	e1, e2 := newPeers(t)
	id := recordedSession(t, e1)
	cl, err := sftp.NewClient(e2.dialB(t, "rr"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = cl.Open("recordings/" + id + ".gz")
	if err == nil || !strings.Contains(err.Error(), "spool of gateway gw-1 (gw-1.example.com:2222)") {
		t.Fatalf("open on gw-2 of a recording in gw-1's spool: %v", err)
	}
	cl1, err := sftp.NewClient(e1.dialB(t, "rr"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl1.Close()
	f, err := cl1.Open("recordings/" + id + ".gz")
	if err != nil {
		t.Fatalf("open on gw-1, which holds it: %v", err)
	}
	if b, err := io.ReadAll(f); err != nil || len(b) == 0 {
		t.Fatalf("read on gw-1: %d bytes, %v", len(b), err)
	}
	f.Close()
}

// TestHostOnlyOnAPeer: a host whose agent is connected to gw-2 only is
// refused on gw-1 naming where it is reachable.
func TestHostOnlyOnAPeer(t *testing.T) {
	e1, e2 := newPeers(t)
	web02 := e1.gw.AddHost("web-02")
	e1.gw.SetPassphrase("web-02", "pp-web-02")
	e1.gw.AddTeam("ops_RR", true, []string{"alice"}, "web-01", "web-02")
	gatewaytest.StartAgent(t, e2.gw, "web-02", web02, nil)
	waitPresence(t, e1.gw.Store, "web-02", "gw-2")
	_, stderr, err := run(t, e1.dialB(t, "rr"), "web-02 -- true", nil)
	if exitStatus(err) != 1 || !strings.Contains(stderr, `rr: host "web-02" is not connected to this gateway; its agent is connected to gw-2 (gw-2.example.com:2222)`) {
		t.Fatalf("web-02 on gw-1: %q %v", stderr, err)
	}
}

// waitPresence waits until the store says exactly gateways hold host's
// tunnel. A gateway writes its row just after the tunnel is admitted
// (WaitOnline's event), so this may take a moment.
func waitPresence(t *testing.T, st *sqlite.Store, host string, gateways ...string) {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		ps, err := st.Presence(context.Background(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, p := range ps {
			if p.Host == host {
				got = append(got, p.Gateway)
			}
		}
		if strings.Join(got, ",") == strings.Join(gateways, ",") {
			return
		}
	}
	t.Fatalf("gateways holding %s: %v, want %v", host, got, gateways)
}

// flaky is a SQLite store whose lease renewals fail while down, telling
// each renewal (and its outcome) on renewals.
type flaky struct {
	*sqlite.Store
	down     *atomic.Bool
	renewals chan bool
}

func (f flaky) RenewLease(ctx context.Context, l store.Lease) error {
	ok := !f.down.Load()
	select {
	case f.renewals <- ok:
	default:
	}
	if !ok {
		return errors.New("database unreachable")
	}
	return f.Store.RenewLease(ctx, l)
}

// TestNoTakeoverRightAfterAnOutage: after the store was out of reach for
// longer than the lease, every lease has run out; a gateway back first
// takes over from no peer until its own renewals have gone through for a
// whole lease, giving the others the time to renew theirs.
func TestNoTakeoverRightAfterAnOutage(t *testing.T) {
	var down atomic.Bool
	renewals := make(chan bool, 64)
	e1, _ := newPeersWith(t, 50*time.Millisecond, func(st *sqlite.Store) gateway.Store {
		return flaky{Store: st, down: &down, renewals: renewals}
	})
	ctx := context.Background()
	now := time.Now()
	// A peer whose lease ran out during the outage, with a live session.
	if err := e1.gw.Store.RenewLease(ctx, store.Lease{Gateway: "gw-3", Renewed: now.Add(-time.Minute), Expires: now.Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := e1.gw.Store.CreateSession(ctx, store.Session{ID: "s3", Person: "alice", Team: "ops_RR", Host: "web-01",
		State: store.StateLive, Started: now, Gateway: "gw-3"}); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	for failed := 0; failed < 2; { // both gateways saw the outage
		if !<-renewals {
			failed++
		}
	}
	down.Store(false)
	// Five renewals after it: one gateway's third, once its second (and
	// the takeover it could have tried then) is done; two seconds of
	// health, less than a lease (3s, renewed every 1s).
	for ok := 0; ok < 5; {
		if <-renewals {
			ok++
		}
	}
	if x, _ := e1.gw.Store.Session(ctx, "s3"); x.State != store.StateLive {
		t.Fatalf("a peer's session taken over right after the outage: %+v", x)
	}
	// Then a peer does take over.
	timeout := time.After(20 * time.Second)
	for x := (store.Session{State: store.StateLive}); x.State == store.StateLive; {
		select {
		case <-renewals:
		case <-timeout:
			t.Fatal("no takeover a lease after the outage")
		}
		x, _ = e1.gw.Store.Session(ctx, "s3")
	}
}

// taking is a SQLite store that tells each kill request it hands out.
type taking struct {
	*sqlite.Store
	taken chan string
}

func (s taking) TakeKillRequests(ctx context.Context, gateway string) ([]store.KillRequest, error) {
	rs, err := s.Store.TakeKillRequests(ctx, gateway)
	for _, r := range rs {
		select {
		case s.taken <- gateway + " " + r.SessionID:
		default:
		}
	}
	return rs, err
}

// TestKillBeforeRegistration: a kill request taken for a session whose
// row is live here but which is not registered yet (its row is written
// just before) is kept for the next take, not lost.
func TestKillBeforeRegistration(t *testing.T) {
	taken := make(chan string, 16)
	e1, _ := newPeersWith(t, 50*time.Millisecond, func(st *sqlite.Store) gateway.Store { return taking{st, taken} })
	ctx := context.Background()
	st := e1.gw.Store
	if err := st.CreateSession(ctx, store.Session{ID: "early", Person: "alice", Team: "ops_RR", Host: "web-01",
		State: store.StateLive, Started: time.Now(), Gateway: "gw-1"}); err != nil {
		t.Fatal(err)
	}
	if err := st.RequestKill(ctx, store.KillRequest{SessionID: "early", Gateway: "gw-1", By: "bob", Requested: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// Taken, kept, and taken again (it polls every 50ms).
	timeout := time.After(10 * time.Second)
	for n := 0; n < 2; {
		select {
		case got := <-taken:
			if got == "gw-1 early" {
				n++
			}
		case <-timeout:
			t.Fatal("the kill request was taken and lost")
		}
	}
}

// TestStaleKillRequestsGo: with no live session, a gateway does not poll
// for kills, but its lease renewal takes the requests for sessions that
// ended before it took them.
func TestStaleKillRequestsGo(t *testing.T) {
	taken := make(chan string, 16)
	e1, _ := newPeersWith(t, 50*time.Millisecond, func(st *sqlite.Store) gateway.Store { return taking{st, taken} })
	if err := e1.gw.Store.RequestKill(context.Background(), store.KillRequest{SessionID: "ended", Gateway: "gw-1", By: "bob",
		Requested: time.Now()}); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second) // renewals every second
	for {
		select {
		case got := <-taken:
			if got == "gw-1 ended" {
				return
			}
		case <-timeout:
			t.Fatal("a stale kill request stayed in the store")
		}
	}
}
