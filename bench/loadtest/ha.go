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
			Auth: auth.Config{Mailer: mail, Limits: auth.Limits{SourceAttempts: 1 << 30, FailuresBeforeLockout: 1 << 30,
				MailsPerPerson: 1 << 30}},
			Store: s.Store,
		})
	}
	both := []string{gws[0].AgentAddr, gws[1].AgentAddr}
	var hosts []string
	for i := range c.Hosts {
		h := hostName(i)
		hosts = append(hosts, h)
		key := gws[0].AddHost(h)
		gws[0].SetPassphrase(h, "pp-"+h)
		gatewaytest.StartAgent(t, gws[0], h, key, func(ac *agent.Config) { ac.Shell, ac.Logger, ac.Gateways = "/bin/sh", lg, both })
	}
	people := make([]person, c.Sessions)
	var names []string
	for i := range people {
		people[i] = newPerson(i, "u")
		gws[0].AddPerson(people[i].Name, "advanced", people[i].Email, "", gatewaytest.Key{Signer: people[i].Signer})
		names = append(names, people[i].Name)
	}
	gws[0].AddTeam("load_RR", true, names, "*")
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
		waitLive(live, len(first), time.Duration(c.Ramp*float64(time.Second))+time.Minute)
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		// Logins while it is down, through both gateways: each refused, with
		// the line that says why.
		refused := 0
		for i := range 4 {
			p := plan{Index: len(ps) + i, Person: people[i], Host: hosts[0], Passphrase: "pp-" + hosts[0]}
			_, err := login(tgs[i%2], p)
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

	verifyStart := time.Now()
	verify(t, st.Store, results, func(r *SessionResult, row store.Session) string { return row.Recording })
	rep.VerifySeconds = time.Since(verifyStart).Seconds()
	errsBefore := rep.Errors
	rep.tally(results, nil)
	rep.Errors += errsBefore
	rep.Warnings, _ = logs.count()
	for _, r := range results {
		if r.Err != "" || r.Check.Status != "identical" {
			rep.Rows = append(rep.Rows, r)
		}
	}
	per := map[string]int{}
	for _, r := range results {
		if r != nil && r.ID != "" {
			per[fmt.Sprint("gw", r.Index%2+1)]++
		}
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("sessions per gateway: gw1 %d, gw2 %d", per["gw1"], per["gw2"]))
	rep.TotalSeconds = time.Since(begin).Seconds()
	rep.Passed = rep.Errors == 0 && rep.LostBytes == 0 && rep.Mismatches == 0 && rep.Missing == 0
	return rep
}

// waitLive waits until n sessions are live at once, or d has passed.
func waitLive(l *liveCounter, n int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		now := l.live
		l.mu.Unlock()
		if now >= n {
			return
		}
		time.Sleep(50 * time.Millisecond) // the sessions' goroutines count themselves in
	}
}
