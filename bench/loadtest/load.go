package loadtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// Config is the shape of a load run.
type Config struct {
	Sessions int     `json:"sessions"`  // concurrent sessions (RR_LOAD_SESSIONS)
	Seconds  float64 `json:"seconds"`   // each pushes or types for Seconds to 2×Seconds (RR_LOAD_SECONDS)
	Hosts    int     `json:"hosts"`     // hosts, one agent each (RR_LOAD_HOSTS)
	PTYShare float64 `json:"pty_share"` // share of PTY shell sessions; the rest exec cat (RR_LOAD_PTY_SHARE)
	Rate     int     `json:"rate"`      // bytes a second each cat session pushes (RR_LOAD_RATE)
	Ramp     float64 `json:"ramp"`      // logins are spread over this many seconds (RR_LOAD_RAMP)
	Seed     uint64  `json:"seed"`      // RR_LOAD_SEED
}

// FromEnv overrides c with the RR_LOAD_* variables that are set. A set
// variable that is not a valid value is an error naming it: a load run
// must not quietly run with other settings than asked.
func FromEnv(c Config) (Config, error) {
	var errs []error
	geti := func(k string, v *int) {
		if s := os.Getenv(k); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a whole number above 0", k, s))
				return
			}
			*v = n
		}
	}
	getf := func(k string, v *float64) {
		if s := os.Getenv(k); s != "" {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || f < 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a number, 0 or more", k, s))
				return
			}
			*v = f
		}
	}
	geti("RR_LOAD_SESSIONS", &c.Sessions)
	getf("RR_LOAD_SECONDS", &c.Seconds)
	geti("RR_LOAD_HOSTS", &c.Hosts)
	getf("RR_LOAD_PTY_SHARE", &c.PTYShare)
	geti("RR_LOAD_RATE", &c.Rate)
	getf("RR_LOAD_RAMP", &c.Ramp)
	if s := os.Getenv("RR_LOAD_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("RR_LOAD_SEED=%q: want a whole number", s))
		}
		c.Seed = n
	}
	if c.PTYShare > 1 {
		errs = append(errs, fmt.Errorf("RR_LOAD_PTY_SHARE=%v: want a share from 0 to 1", c.PTYShare))
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	c.Hosts = max(c.Hosts, 1)
	return c, errors.Join(errs...)
}

// RaiseFDLimit raises the soft limit on open files to the hard one and
// returns it.
func RaiseFDLimit() uint64 {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 0
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	return l.Cur
}

// countingHandler drops log records below Warn and counts (and keeps the
// first few of) the rest: the gateway's and agents' complaints.
type countingHandler struct {
	mu    *sync.Mutex
	n     *int
	first *[]string
	attrs []slog.Attr
}

func newCounting() countingHandler {
	return countingHandler{mu: &sync.Mutex{}, n: new(int), first: new([]string)}
}

func (h countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	for _, a := range h.attrs {
		msg += " " + a.String()
	}
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	h.mu.Lock()
	*h.n++
	if len(*h.first) < 10 {
		*h.first = append(*h.first, r.Level.String()+": "+msg)
	}
	h.mu.Unlock()
	return nil
}
func (h countingHandler) WithAttrs(a []slog.Attr) slog.Handler {
	h.attrs = append(append([]slog.Attr{}, h.attrs...), a...)
	return h
}
func (h countingHandler) WithGroup(string) slog.Handler { return h }

func (h countingHandler) count() (int, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return *h.n, append([]string(nil), *h.first...)
}

func newPerson(i int, prefix string) person {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := ssh.NewSignerFromKey(priv)
	name := fmt.Sprintf("%s%04d", prefix, i)
	return person{Name: name, Email: name + "@load.test", Signer: s}
}

func hostName(i int) string { return fmt.Sprintf("load-%02d", i+1) }

// plans makes one plan per session: hosts round-robin, a PTY share.
func plans(c Config, people []person, stop <-chan struct{}) []plan {
	out := make([]plan, c.Sessions)
	ptyEvery := 0.0
	if c.PTYShare > 0 {
		ptyEvery = 1 / c.PTYShare
	}
	for i := range out {
		host := hostName(i % c.Hosts)
		kind := "cat"
		if ptyEvery > 0 && float64(i)-ptyEvery*float64(int(float64(i)/ptyEvery)) < 1 {
			kind = "pty"
		}
		seed := c.Seed*1000003 + uint64(i)
		d := time.Duration(c.Seconds * float64(time.Second) * (1 + float64(seed%1000)/1000))
		out[i] = plan{Index: i, Person: people[i], Host: host, Passphrase: "pp-" + host, Kind: kind,
			Seed: seed, Rate: c.Rate, Duration: d, Stop: stop}
	}
	return out
}

// RunLoad runs c against an in-process gateway (gateway/gatewaytest) with one
// in-process agent per host, then checks every recording.
func RunLoad(t testing.TB, name string, c Config) *Report {
	begin := time.Now()
	RaiseFDLimit()
	rep := newReport(name)
	rep.Config = &c
	logs := newCounting()
	lg := slog.New(logs)
	mail := newMailbox()
	gw := gatewaytest.StartGateway(t, gatewaytest.Config{
		Gateway: gateway.Config{Logger: lg, ShutdownGrace: time.Second},
		Auth:    auth.Config{Mailer: mail, Limits: loadLimits},
	})
	hosts, people := populate(t, gw, c, lg, nil)
	for _, h := range hosts {
		gw.WaitOnline(h)
	}
	tg := target{Addr: gw.PeopleAddr, HostKey: gw.HostKey.PublicKey(), Mail: mail}

	loadStart := time.Now()
	live := &liveCounter{}
	ps := plans(c, people, nil)
	results := make([]*SessionResult, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.Ramp > 0 {
				time.Sleep(time.Duration(float64(i) / float64(len(ps)) * c.Ramp * float64(time.Second)))
			}
			results[i] = runSession(tg, p, live)
		}()
	}
	wg.Wait()
	rep.LoadSeconds = time.Since(loadStart).Seconds()
	rep.Peak = live.Peak()

	rep.finish(t, gw.Store, results, logs, begin)
	return rep
}

// loadLimits lift the limits a load's logins would meet: thousands from
// few addresses, a mailed code each.
var loadLimits = auth.Limits{SourceAttempts: 1 << 30, FailuresBeforeLockout: 1 << 30, MailsPerPerson: 1 << 30}

// populate adds, through gw's store, c.Hosts hosts (passphrase pp-HOST,
// an in-process agent each, edit changing its config) and c.Sessions
// people in team load_RR, and returns them.
func populate(t testing.TB, gw *gatewaytest.Gateway, c Config, lg *slog.Logger, edit func(*agent.Config)) ([]string, []person) {
	var hosts []string
	for i := range c.Hosts {
		h := hostName(i)
		hosts = append(hosts, h)
		key := gw.AddHost(h)
		gw.SetPassphrase(h, "pp-"+h)
		gatewaytest.StartAgent(t, gw, h, key, func(ac *agent.Config) {
			ac.Shell, ac.Logger = "/bin/sh", lg
			if edit != nil {
				edit(ac)
			}
		})
	}
	people := make([]person, c.Sessions)
	var names []string
	for i := range people {
		people[i] = newPerson(i, "u")
		gw.AddPerson(people[i].Name, "advanced", people[i].Email, "", gatewaytest.Key{Signer: people[i].Signer})
		names = append(names, people[i].Name)
	}
	gw.AddTeam("load_RR", true, names, "*")
	return hosts, people
}

// finish checks every session's recording against st's rows, tallies
// the run (errors counted before it stay counted) and says whether it
// passed.
func (rep *Report) finish(t testing.TB, st *sqlite.Store, results []*SessionResult, logs countingHandler, begin time.Time) {
	verifyStart := time.Now()
	verify(t, st, results, func(r *SessionResult, row store.Session) string { return row.Recording })
	rep.VerifySeconds = time.Since(verifyStart).Seconds()
	before := rep.Errors
	rep.tally(results, nil)
	rep.Errors += before
	rep.Warnings, _ = logs.count()
	_, first := logs.count()
	for _, w := range first {
		if len(rep.Notes) < 30 {
			rep.Notes = append(rep.Notes, "log "+w)
		}
	}
	for _, r := range results {
		if r.Err != "" || r.Check.Status != "identical" {
			rep.Rows = append(rep.Rows, r)
		}
	}
	rep.TotalSeconds = time.Since(begin).Seconds()
	rep.Passed = rep.Errors == 0 && rep.LostBytes == 0 && rep.Mismatches == 0 && rep.Missing == 0
}

// verify finds each session's store row (by person: one session each),
// waiting until none is live, and checks its recording; path says where
// the recording of a row is on this machine.
func verify(t testing.TB, st *sqlite.Store, results []*SessionResult, path func(*SessionResult, store.Session) string) {
	ctx := context.Background()
	var rows []store.Session
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		rows, err = st.Sessions(ctx, store.SessionFilter{Limit: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		live := 0
		for _, r := range rows {
			if r.State == store.StateLive {
				live++
			}
		}
		if live == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // rows are finalized by the gateway's goroutines
	}
	byPerson := map[string][]store.Session{}
	for _, r := range rows {
		byPerson[r.Person] = append(byPerson[r.Person], r)
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, r := range results {
		if r == nil {
			continue
		}
		rs := byPerson[r.Person]
		if len(rs) == 0 {
			if r.Kind != "" && !isRefused(r) {
				r.fail("no session row")
			}
			continue
		}
		if len(rs) > 1 {
			r.fail("%d session rows for one session", len(rs))
		}
		row := rs[0]
		r.ID, r.State, r.EndReason, r.BytesIn, r.BytesOut = row.ID, string(row.State), row.EndReason, row.BytesIn, row.BytesOut
		r.Recording = row.Recording
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			p := path(r, row)
			if p == "" {
				r.Check = Check{Status: "missing", Err: "the row names no recording"}
				return
			}
			r.Check = checkRecording(p, "pp-"+r.Host, r.in, r.out)
			if r.Check.Status == "identical" && (row.BytesIn != r.Sent || row.BytesOut != r.Received) {
				r.fail("row counts %d in / %d out, client %d / %d", row.BytesIn, row.BytesOut, r.Sent, r.Received)
			}
		}()
	}
	wg.Wait()
}

func isRefused(r *SessionResult) bool {
	return len(r.Saw) >= 13 && r.Saw[:13] == "login refused"
}
