package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/internal/pgtest"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/postgres"
	"github.com/rr-gateway/rr/store/sqlite"
)

// RunHA runs c against two in-process gateways (one host key) on one
// PostgreSQL database of srv, every host's agent tunnelled to both, the
// sessions spread over them; then checks every recording. With restart,
// PostgreSQL is stopped once the first half of the sessions is live: the
// live ones must go on, logins meanwhile must be refused with the
// database's line, and after the restart the second half must log in.
func RunHA(t testing.TB, name string, c Config, srv *pgtest.Server, restart bool) *Report {
	begin := time.Now()
	RaiseFDLimit()
	rep := newReport(name)
	rep.Config = &c
	logs := newCounting()
	lg := slog.New(logs)
	mail := newMailbox()
	dsn, err := srv.CreateDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hostKey := gatewaytest.NewKey(t, "gateway_host_key").Signer
	var gws [2]*gatewaytest.Gateway
	var st *postgres.Store
	for i := range gws {
		s, err := postgres.Open(context.Background(), dsn, 10*time.Second) // a pool each, as two processes
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		st = s
		gws[i] = gatewaytest.StartGateway(t, gatewaytest.Config{
			Gateway: gateway.Config{Logger: lg, ShutdownGrace: time.Second, HostKey: hostKey, Name: fmt.Sprint("gw", i+1)},
			Auth:    auth.Config{Mailer: mail, Limits: loadLimits},
			Store:   s.Store,
		})
	}
	both := []string{gws[0].AgentAddr, gws[1].AgentAddr}
	hosts, people := populate(t, gws[0], c, lg, func(ac *agent.Config) { ac.Gateways = both })
	for _, g := range gws {
		for _, h := range hosts {
			g.WaitOnline(h)
		}
	}
	tgs := []target{{Addr: gws[0].PeopleAddr, HostKey: hostKey.PublicKey(), Mail: mail},
		{Addr: gws[1].PeopleAddr, HostKey: hostKey.PublicKey(), Mail: mail}}

	loadStart := time.Now()
	live := &liveCounter{}
	ps := plans(c, people, nil)
	results := make([]*SessionResult, len(ps))
	var wg sync.WaitGroup
	launch := func(idx []int) {
		for k, i := range idx {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if c.Ramp > 0 {
					time.Sleep(time.Duration(float64(k) / float64(len(idx)) * c.Ramp * float64(time.Second)))
				}
				results[i] = runSession(tgs[i%2], ps[i], live)
			}()
		}
	}
	var all, first, second []int
	for i := range ps {
		all = append(all, i)
		if i < len(ps)/2 {
			first = append(first, i)
		} else {
			second = append(second, i)
		}
	}
	if !restart {
		launch(all)
	} else {
		launch(first)
		// Live for the client, and for the gateway: a session whose
		// recording is not registered yet when the store goes is refused
		// (no recording, no session), which is right but not this test.
		waitLive(live, st.Store, len(first), time.Duration(c.Ramp*float64(time.Second))+time.Minute)
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		// Logins while it is down, through both gateways: each refused, with
		// the line that says why.
		refused := 0
		for i := range 4 {
			p := plan{Index: len(ps) + i, Person: people[i], Host: hosts[0], Passphrase: "pp-" + hosts[0]}
			c, err := login(tgs[i%2], p)
			if err == nil {
				c.Close()
			}
			if err != nil && strings.Contains(err.Error(), "the gateway cannot reach its database") {
				refused++
			} else {
				rep.Errors++
				rep.Notes = append(rep.Notes, fmt.Sprintf("login %d with PostgreSQL down: %v (want the database's line)", i, err))
			}
		}
		if err := srv.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("PostgreSQL stopped with %d sessions live and started again; %d of 4 logins meanwhile refused with the database's line; the other %d sessions logged in after",
			len(first), refused, len(second)))
		launch(second)
	}
	wg.Wait()
	rep.LoadSeconds = time.Since(loadStart).Seconds()
	rep.Peak = live.Peak()

	rep.finish(t, st.Store, results, logs, begin)
	per := map[string]int{}
	for _, r := range results {
		if r != nil && r.ID != "" {
			per[fmt.Sprint("gw", r.Index%2+1)]++
		}
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("sessions per gateway: gw1 %d, gw2 %d", per["gw1"], per["gw2"]))
	return rep
}

// waitLive waits until n sessions are live at once for their clients and
// n rows in st are live with their recording registered, or d has passed.
func waitLive(l *liveCounter, st *sqlite.Store, n int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		now := l.live
		l.mu.Unlock()
		registered := 0
		if rows, err := st.Sessions(context.Background(), store.SessionFilter{LiveOnly: true, Limit: 1 << 30}); err == nil {
			for _, r := range rows {
				if r.Recording != "" {
					registered++
				}
			}
		}
		if now >= n && registered >= n {
			return
		}
		time.Sleep(50 * time.Millisecond) // the sessions' goroutines and the gateway's: no one event to wait on
	}
}
