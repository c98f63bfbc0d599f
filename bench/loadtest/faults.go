package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/internal/sshkit"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// proc is a child process that can be killed and started again with the
// same arguments; its output goes to a log file.
type proc struct {
	t    testing.TB
	args []string
	env  []string
	log  string
	cmd  *exec.Cmd
}

func newProc(t testing.TB, log string, env []string, args ...string) *proc {
	p := &proc{t: t, args: args, env: env, log: log}
	t.Cleanup(p.kill)
	return p
}

func (p *proc) start() {
	p.t.Helper()
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	f.Close()
	p.cmd = cmd
}

// kill sends SIGKILL and reaps the process.
func (p *proc) kill() {
	if p.cmd != nil && p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// pollMailpit feeds the codes of new mails in mailpit to mb until ctx
// ends; it carries on through mailpit being down.
func pollMailpit(ctx context.Context, api string, mb *mailbox) {
	seen := map[string]bool{}
	for ctx.Err() == nil {
		resp, err := http.Get(api + "/api/v1/messages?limit=1000")
		if err == nil {
			var body struct {
				Messages []struct {
					ID      string
					Snippet string // the start of the text body, where the code is
					To      []struct{ Address string }
				}
			}
			if json.NewDecoder(resp.Body).Decode(&body) == nil {
				for i := len(body.Messages) - 1; i >= 0; i-- { // oldest first
					m := body.Messages[i]
					if seen[m.ID] || len(m.To) == 0 {
						continue
					}
					seen[m.ID] = true
					mb.add(m.To[0].Address, sixDigits.FindString(m.Snippet))
				}
			}
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// faultWorld is the real thing on 127.0.0.1: rr-gateway, one rr-agent per
// host, mailpit and versitygw, all processes.
type faultWorld struct {
	t                 testing.TB
	dir, bin          string
	people, agents    string // addresses
	gw, mailpit, s3   *proc
	agent             map[string]*proc
	s3dir, s3addr     string
	tg                target
	st                *sqlite.Store
	hosts             []string
	persons           []person
	live              *liveCounter
	mailAPI, mailSMTP string
}

func (w *faultWorld) gatewayLog() string { return w.gw.output() }

// waitOnline waits until the gateway logged host's agent connecting after
// log offset from.
func (w *faultWorld) waitOnline(host string, from int) error {
	re := regexp.MustCompile(`msg="agent connected" host=` + regexp.QuoteMeta(host) + ` `)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if l := w.gatewayLog(); len(l) > from && re.MatchString(l[from:]) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent of %s did not connect", host)
		}
		time.Sleep(50 * time.Millisecond) // the gateway is another process
	}
}

func startFaultWorld(t testing.TB, nPeople, nHosts int) *faultWorld {
	w := &faultWorld{t: t, dir: t.TempDir(), bin: t.TempDir(), agent: map[string]*proc{}, live: &liveCounter{}}
	build := exec.Command("go", "build", "-o", w.bin+"/", "github.com/rr-gateway/rr/cmd/rr-gateway", "github.com/rr-gateway/rr/cmd/rr-agent")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// mailpit, and a poller that hands codes to the logins.
	w.mailSMTP, w.mailAPI = gatewaytest.FreeAddr(t), "http://"+gatewaytest.FreeAddr(t)
	w.mailpit = newProc(t, filepath.Join(w.dir, "mailpit.log"), nil, gatewaytest.Tool(t, "mailpit", "scripts/load.sh installs it"), "-l", strings.TrimPrefix(w.mailAPI, "http://"),
		"-s", w.mailSMTP, "--disable-version-check", "-d", filepath.Join(w.dir, "mailpit.db"))
	w.mailpit.start()
	gatewaytest.WaitPort(t, w.mailSMTP)
	mb := newMailbox()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pollMailpit(ctx, w.mailAPI, mb); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// versitygw with a bucket.
	w.s3dir = t.TempDir()
	os.Mkdir(filepath.Join(w.s3dir, "rec"), 0o700)
	s3addr := gatewaytest.FreeAddr(t)
	w.s3addr = s3addr
	w.s3 = newProc(t, filepath.Join(w.dir, "versitygw.log"), nil, gatewaytest.Tool(t, "versitygw", "scripts/load.sh installs it"), "--access", "rr-access", "--secret", "rr-secret-key",
		"--port", s3addr, "posix", w.s3dir)
	w.s3.start()
	gatewaytest.WaitPort(t, s3addr)

	// People, hosts, the config.
	var people, hosts, members strings.Builder
	for i := range nPeople {
		p := newPerson(i, "f")
		w.persons = append(w.persons, p)
		pub := filepath.Join(w.dir, p.Name+".pub")
		os.WriteFile(pub, ssh.MarshalAuthorizedKey(p.Signer.PublicKey()), 0o644)
		fmt.Fprintf(&people, "  - {name: %s, email: %s, role: advanced, key_files: [%s]}\n", p.Name, p.Email, pub)
		fmt.Fprintf(&members, "%s, ", p.Name)
	}
	keys := map[string]gatewaytest.Key{}
	for i := range nHosts {
		h := fmt.Sprintf("f-%02d", i+1)
		w.hosts = append(w.hosts, h)
		keys[h] = gatewaytest.NewKey(t, h+"_agent")
		fmt.Fprintf(&hosts, "  - {name: %s, passphrase_verifier: '%s', agent_key_file: %s.pub}\n", h, gatewaytest.CheapHash(t, "pp-"+h), keys[h].Path)
	}
	w.people, w.agents = gatewaytest.FreeAddr(t), gatewaytest.FreeAddr(t)
	cfg := filepath.Join(w.dir, "gateway.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %s
agent_listen: %s
host_key: %s/host_key
database: %s/rr.db
name: load-gw
log: {format: text, level: info}
shutdown_grace: 2s
mail: {mode: smtp, from: rr@load.test, smtp: {host: 127.0.0.1, port: %s, tls: none}}
auth:
  limits: {source_attempts: 100000, failures_before_lockout: 100000, mails_per_person: 100000}
recordings:
  spool: %s/spool
  flush_interval: 200ms
  s3: {bucket: rec, endpoint: "http://%s", path_style: true, prefix: "r/", access_key_id: rr-access, secret_access_key_env: RR_LOAD_S3_SECRET}
people:
%steams: [{name: load_RR, rapid_response: true, members: [%s], hosts: ["*"]}]
hosts:
%s`, w.people, w.agents, w.dir, w.dir, portOf(w.mailSMTP), w.dir, s3addr, people.String(), strings.TrimSuffix(members.String(), ", "), hosts.String())), 0o600)
	w.gw = newProc(t, filepath.Join(w.dir, "gateway.log"), []string{"RR_LOAD_S3_SECRET=rr-secret-key"},
		filepath.Join(w.bin, "rr-gateway"), "-config", cfg)
	w.gw.start()
	gatewaytest.WaitPort(t, w.people)
	fp, err := exec.Command(filepath.Join(w.bin, "rr-gateway"), "fingerprint", "-config", cfg).Output()
	if err != nil {
		t.Fatalf("fingerprint: %v\n%s", err, w.gatewayLog())
	}
	hk, err := sshkit.LoadOrCreateKey(filepath.Join(w.dir, "host_key"))
	if err != nil {
		t.Fatal(err)
	}
	w.tg = target{Addr: w.people, HostKey: hk.PublicKey(), Mail: mb}
	for _, h := range w.hosts {
		acfg := filepath.Join(w.dir, h+"-agent.yaml")
		os.WriteFile(acfg, []byte(fmt.Sprintf(`gateways: [%s]
gateway_host_key: %q
host: %s
key: %s
shell: /bin/sh
keepalive_interval: 1s
keepalive_max_missed: 3
backoff_min: 100ms
backoff_max: 1s
kill_grace: 500ms
log: {format: text, level: info}
`, w.agents, strings.TrimSpace(string(fp)), h, keys[h].Path)), 0o600)
		w.agent[h] = newProc(t, filepath.Join(w.dir, h+"-agent.log"), nil, filepath.Join(w.bin, "rr-agent"), "-config", acfg)
		w.agent[h].start()
	}
	for _, h := range w.hosts {
		if err := w.waitOnline(h, 0); err != nil {
			t.Fatalf("%v\n%s", err, w.gatewayLog())
		}
	}
	st, err := sqlite.Open(filepath.Join(w.dir, "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w.st = st
	return w
}

func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// group is sessions that share a fate.
type group struct {
	name    string
	rate    int    // bytes a second each cat session pushes; 0: 32 KiB
	kind    string // "cat" for cat sessions only; "": cat and pty in turn
	stop    chan struct{}
	wg      sync.WaitGroup
	results []*SessionResult
	mu      sync.Mutex
	started int // sessions launched; every one must report a result
}

// launch starts n sessions of the group on hosts (round-robin) with the
// next free people; d == 0 runs them until the group is stopped.
func (w *faultWorld) launch(g *group, next *int, n int, hosts []string, d time.Duration, seed uint64) {
	if g.stop == nil {
		g.stop = make(chan struct{})
	}
	g.started += n
	for i := range n {
		idx := *next
		*next++
		h := hosts[i%len(hosts)]
		kind := "cat"
		if i%2 == 1 && g.kind == "" {
			kind = "pty"
		}
		rate := g.rate
		if rate == 0 {
			rate = 32 << 10
		}
		p := plan{Index: idx, Person: w.persons[idx], Host: h, Passphrase: "pp-" + h, Kind: kind,
			Seed: seed*1000003 + uint64(idx), Rate: rate, Duration: d, Stop: g.stop, Group: g.name}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			r := runSession(w.tg, p, w.live)
			g.mu.Lock()
			g.results = append(g.results, r)
			g.mu.Unlock()
		}()
	}
}

// waitGroup waits up to d for the group's sessions to end.
func waitGroup(g *group, d time.Duration) bool {
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func (w *faultWorld) waitLive(n int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		w.live.mu.Lock()
		l := w.live.live
		w.live.mu.Unlock()
		if l >= n {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (w *faultWorld) liveNow() int {
	w.live.mu.Lock()
	defer w.live.mu.Unlock()
	return w.live.live
}

// rowsOf returns the store rows of the group's people.
func (w *faultWorld) rowsOf(g *group) map[string]store.Session {
	rows, _ := w.st.Sessions(context.Background(), store.SessionFilter{Limit: 1 << 30})
	out := map[string]store.Session{}
	for _, r := range g.results {
		for _, row := range rows {
			if row.Person == r.Person {
				out[r.Person] = row
			}
		}
	}
	return out
}

func count(rs []*SessionResult, f func(*SessionResult) bool) int {
	n := 0
	for _, r := range rs {
		if f(r) {
			n++
		}
	}
	return n
}

// RunFaults is the fault run: sessions under load while an agent is
// killed, the SMTP server stops, the S3 server stops, and the gateway is
// SIGKILLed and restarted; then every recording is checked.
func RunFaults(t testing.TB, seed uint64) *Report {
	begin := time.Now()
	RaiseFDLimit()
	rep := newReport("faults")
	w := startFaultWorld(t, 70, 4)
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	next := 0
	others := w.hosts[1:]
	agentKill := &group{name: "agent-kill"}
	steady := &group{name: "steady"}
	s3down := &group{name: "s3-down"}
	gwKill := &group{name: "gateway-kill"}
	// Two fast ones: their recordings write O_DIRECT chunks when the
	// gateway is killed.
	gwKillBulk := &group{name: "gateway-kill-bulk", rate: 1 << 20, kind: "cat"}
	smtpDown := &group{name: "smtp-down"}
	after := &group{name: "after-restart"}
	fault := func(f Fault) {
		rep.Faults = append(rep.Faults, f)
		t.Logf("fault %s: %s → %s (ok %v)", f.Name, f.Action, f.Observed, f.OK)
	}
	loadStart := time.Now()
	w.launch(agentKill, &next, 8, w.hosts[:1], 0, seed)
	w.launch(steady, &next, 10, others, 0, seed)
	w.launch(s3down, &next, 12, others, 0, seed)
	w.launch(gwKill, &next, 12, others, 0, seed)
	w.launch(gwKillBulk, &next, 2, others, 0, seed)
	if !w.waitLive(44, 90*time.Second) {
		t.Logf("only %d of 44 sessions started", w.liveNow())
	}
	rep.Peak = w.liveNow()
	time.Sleep(3 * time.Second)

	// 1. The agent of f-01 is SIGKILLed.
	w.agent["f-01"].kill()
	ended := waitGroup(agentKill, 30*time.Second)
	lost := count(agentKill.results, func(r *SessionResult) bool {
		return strings.Contains(r.Notice, "connection to the host was lost")
	})
	from := len(w.gatewayLog())
	w.agent["f-01"].start()
	back := w.waitOnline("f-01", from)
	fault(Fault{Name: "agent killed", Action: "SIGKILL rr-agent of f-01 with 8 sessions on it, then start it again",
		Expected: `its sessions end with "connection to the host was lost"; rows closed, "agent lost"; recordings complete, each direction an exact prefix of what the client saw; the agent reconnects`,
		Observed: fmt.Sprintf("%d of %d sessions ended (all within 30 s: %v), %d told the connection was lost; %d others still live; agent back: %v",
			len(agentKill.results), 8, ended, lost, w.liveNow(), back == nil),
		OK: ended && lost == 8 && back == nil && w.liveNow() == 36})

	// 2. The SMTP server stops: new logins fail, sessions carry on.
	w.mailpit.kill()
	liveBefore := w.liveNow()
	w.launch(smtpDown, &next, 4, others, time.Second, seed)
	hung := map[string]bool{}
	hung[smtpDown.name] = !waitGroup(smtpDown, time.Minute)
	refused := count(smtpDown.results, func(r *SessionResult) bool {
		return strings.HasPrefix(r.Saw, "login refused") && strings.Contains(r.Saw, "could not be sent")
	})
	liveAfter := w.liveNow()
	w.mailpit.start()
	gatewaytest.WaitPort(t, w.mailSMTP)
	msg := ""
	if len(smtpDown.results) > 0 {
		msg = smtpDown.results[0].Saw
	}
	fault(Fault{Name: "SMTP down", Action: "stop mailpit, try 4 new logins, start it again",
		Expected: "the new logins are refused with a clear message; live sessions carry on",
		Observed: fmt.Sprintf("%d of 4 refused (%q); live sessions %d before, %d after", refused, msg, liveBefore, liveAfter),
		OK:       refused == 4 && liveAfter == liveBefore})

	// Ten sessions end normally (mail back, S3 up).
	close(steady.stop)
	hung[steady.name] = !waitGroup(steady, time.Minute)

	// 3. The S3 server stops: recordings that close wait in the spool.
	w.s3.kill()
	close(s3down.stop)
	ok3 := waitGroup(s3down, time.Minute)
	time.Sleep(time.Second) // a failed upload leaves the file where it is
	spooled := 0
	for _, row := range w.rowsOf(s3down) {
		if _, err := os.Stat(row.Recording); err == nil && !strings.HasPrefix(row.Recording, "s3://") {
			spooled++
		}
	}
	w.s3.start()
	gatewaytest.WaitPort(t, w.s3addr)
	s3Fault := Fault{Name: "S3 down", Action: "stop versitygw, end 12 sessions normally, start it again",
		Expected: "their recordings wait in the spool and are uploaded once S3 is back (checked at the end)",
		Observed: fmt.Sprintf("%d of 12 sessions ended (%v); %d recordings in the spool while S3 was down", len(s3down.results), ok3, spooled)}

	// A flood of password guesses: memory within budget, sessions go on.
	burst := &group{name: "password-burst"}
	fault(w.passwordBurst(burst, &next, others, seed))

	// 4. The gateway is SIGKILLed with 12 sessions live, and restarted.
	time.Sleep(time.Second)
	liveAtKill := w.liveNow()
	w.gw.kill()
	endedKill := waitGroup(gwKill, 30*time.Second)
	endedKill = waitGroup(gwKillBulk, 30*time.Second) && endedKill
	from = len(w.gatewayLog())
	w.gw.start()
	gatewaytest.WaitPort(t, w.people)
	online := 0
	for _, h := range w.hosts {
		if w.waitOnline(h, from) == nil {
			online++
		}
	}
	interrupted := 0
	for _, g := range []*group{gwKill, gwKillBulk} {
		for _, row := range w.rowsOf(g) {
			if row.State == store.StateInterrupted {
				interrupted++
			}
		}
	}
	fault(Fault{Name: "gateway killed", Action: fmt.Sprintf("SIGKILL rr-gateway with %d sessions live, start it again", liveAtKill),
		Expected: "the clients lose the connection; at the next start the rows say interrupted and each recording decrypts to an exact prefix of what was sent and received (two of them pushing 1 MiB/s, so that their recordings were being written with O_DIRECT); agents reconnect",
		Observed: fmt.Sprintf("%d of 14 clients ended (%v): %s; %d rows interrupted; %d of %d agents back", len(gwKill.results)+len(gwKillBulk.results), endedKill,
			sawOf(append(gwKill.results, gwKillBulk.results...)), interrupted, online, len(w.hosts)),
		OK: endedKill && interrupted == 14 && online == len(w.hosts)})

	// 5. Life goes on: eight short sessions on every host, f-01 included.
	w.launch(after, &next, 8, w.hosts, 3*time.Second, seed)
	hung[after.name] = !waitGroup(after, 2*time.Minute)

	// 6. A bounded flood of junk connections (flood.go).
	floodDuring, floodFresh := &group{name: "flood-during"}, &group{name: "flood-fresh"}
	w.launch(floodDuring, &next, 4, w.hosts, 0, seed)
	w.waitLive(4, time.Minute)
	fault(w.floodFault(t, floodDuring, floodFresh, &next, seed))
	rep.LoadSeconds = time.Since(loadStart).Seconds()

	// Every recording reaches the bucket; the spool empties.
	verifyStart := time.Now()
	all := []*SessionResult{}
	for _, g := range []*group{agentKill, steady, s3down, smtpDown, gwKill, gwKillBulk, after, burst, floodDuring, floodFresh} {
		g.mu.Lock()
		// A session that never reported (hung past its group's wait)
		// would otherwise vanish from the report.
		if len(g.results) != g.started || hung[g.name] {
			t.Errorf("group %s: %d of %d sessions reported (wait timed out: %v)", g.name, len(g.results), g.started, hung[g.name])
			rep.Errors++
		}
		all = append(all, g.results...)
		g.mu.Unlock()
	}
	deadline := time.Now().Add(90 * time.Second)
	var inS3, rows int
	var spool []string
	for {
		rs, _ := w.st.Sessions(context.Background(), store.SessionFilter{Limit: 1 << 30})
		rows, inS3 = len(rs), 0
		for _, r := range rs {
			if strings.HasPrefix(r.Recording, "s3://rec/r/") {
				inS3++
			}
		}
		spool, _ = filepath.Glob(filepath.Join(w.dir, "spool", "*.gz"))
		if (inS3 == rows && len(spool) == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // uploads retry with back-off
	}
	s3rows := w.rowsOf(s3down)
	s3up := 0
	for _, row := range s3rows {
		if strings.HasPrefix(row.Recording, "s3://") {
			s3up++
		}
	}
	s3Fault.Observed += fmt.Sprintf("; %d of 12 uploaded after it came back; in the end %d of %d recordings in S3, %d files left in the spool", s3up, inS3, rows, len(spool))
	s3Fault.OK = ok3 && spooled == 12 && s3up == 12
	rep.Faults = append(rep.Faults[:2], append([]Fault{s3Fault}, rep.Faults[2:]...)...)

	verify(t, w.st, all, func(_ *SessionResult, row store.Session) string {
		if rest, ok := strings.CutPrefix(row.Recording, "s3://"); ok {
			return filepath.Join(w.s3dir, rest)
		}
		return row.Recording
	})
	rep.VerifySeconds = time.Since(verifyStart).Seconds()
	// Every rule also wants the client's own checks passed (r.Err: what it
	// received was what it was sent, no more), and a recording holding
	// nothing the client did not see (Extra).
	clean := func(r *SessionResult) bool { return r.Err == "" && r.Check.In.Extra() == 0 && r.Check.Out.Extra() == 0 }
	expect := map[string]func(*SessionResult) bool{
		"agent-kill": func(r *SessionResult) bool {
			return clean(r) && strings.Contains(r.Notice, "connection to the host was lost") && r.State == "closed" && r.EndReason == "agent lost" &&
				(r.Check.Status == "identical" || r.Check.Status == "complete-prefix")
		},
		"smtp-down": func(r *SessionResult) bool { return strings.Contains(r.Saw, "could not be sent") && r.ID == "" },
		"gateway-kill": func(r *SessionResult) bool {
			return clean(r) && r.State == "interrupted" && r.Check.Status == "prefix" && r.Saw != "exit 0"
		},
		"gateway-kill-bulk": func(r *SessionResult) bool {
			return clean(r) && r.State == "interrupted" && r.Check.Status == "prefix" && r.Saw != "exit 0"
		},
	}
	rep.tally(all, func(r *SessionResult) bool {
		if f := expect[r.Group]; f != nil {
			return f(r)
		}
		return r.Err == "" && r.Saw == "exit 0" && r.Check.Status == "identical" && strings.HasPrefix(r.Recording, "s3://")
	})
	for _, f := range rep.Faults {
		if !f.OK {
			rep.Errors++
		}
	}
	rep.Rows = all
	log := w.gatewayLog()
	rep.Warnings = strings.Count(log, "level=WARN") + strings.Count(log, "level=ERROR")
	rep.TotalSeconds = time.Since(begin).Seconds()
	rep.Passed = rep.Errors == 0 && rep.LostBytes == 0 && rep.Mismatches == 0 && rep.Missing == 0
	if !rep.Passed {
		t.Logf("gateway log tail:\n%s", tail(w.gatewayLog(), 60))
	}
	return rep
}

func sawOf(rs []*SessionResult) string {
	m := map[string]int{}
	for _, r := range rs {
		s := r.Saw
		if len(s) > 60 {
			s = s[:60] + "…"
		}
		m[s]++
	}
	var parts []string
	for s, n := range m {
		parts = append(parts, fmt.Sprintf("%d× %q", n, s))
	}
	return strings.Join(parts, ", ")
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
