package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/prometheus/procfs"
	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/internal/prelogin"
	"github.com/rr-gateway/rr/recorder"
	"github.com/rr-gateway/rr/store"
)

// roleEnv names the role a re-executed bench binary plays: the driver
// starts the gateway, the agents and the one-hop endpoint as processes of
// their own, so each one's CPU time and RSS can be measured apart.
const roleEnv = "RRBENCH_ROLE"

// A role talks to the driver over its stdin and stdout, one line each:
//
//	→ ready JSON                  once serving
//	→ mail TO CODE                a login code the gateway mailed
//	← stats | gcstats             → reply JSON (a procStats)
//	← wait PREFIX N               → reply {} once hosts PREFIX0..N-1 are online
//	← profile PATH                → reply {} once a heap profile is written
//
// A role ends when its stdin closes.
func runRole(role string, args []string) error {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	dir := fs.String("dir", "", "working directory")
	hosts := fs.Int("hosts", 1, "gateway: hosts declared, named PREFIX0…; agent: agents run")
	prefix := fs.String("prefix", "h", "host name prefix")
	people := fs.Int("people", 1, "gateway: people declared, p0…")
	recording := fs.String("recording", recordSpool, "gateway: how sessions are recorded: "+recordSpool+" (rr's recorder), "+
		recordOff+" (NopRecorders: the relay alone) or "+recordFloor+" (AES-256-CTR and SHA-256 of each byte, nothing written: the floor)")
	cheap := fs.Bool("cheap", false, "gateway: cheap argon2id verifier for the passphrase (else production cost)")
	gw := fs.String("gw", "", "agent: the gateway's agent address")
	fp := fs.String("fp", "", "agent: the gateway's host key fingerprint")
	shell := fs.String("shell", "/bin/sh", "agent, onehop: the shell sessions run")
	upstream := fs.String("upstream", "", "bridge: the one-hop endpoint's address; tcprelay: the address relayed to")
	nocaps := fs.Bool("nocaps", false, "gateway: lift the people's caps on connections not logged in")
	dsnFile := fs.String("dsn-file", "", "gateway: keep the store on PostgreSQL, the DSN in this `file` (default: SQLite in -dir)")
	addr, from, n := fs.String("addr", "", "junk: the address to flood"), fs.String("from", "", "junk: the source address"), fs.Int("n", 0, "junk: connections")
	smtp := fs.Int("smtp", 0, "events: the mail server's SMTP port on 127.0.0.1 (0: none)")
	webConsole := fs.Bool("web", false, "gateway: people get passwords, and the web console is served over TLS")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctl := newControl()
	logf, err := os.Create(filepath.Join(*dir, role+".log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	log := slog.New(slog.NewJSONHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if d := os.Getenv(cpuProfileEnv); d != "" {
		stop, err := startCPUProfile(filepath.Join(d, fmt.Sprintf("%s-%d.cpu.pprof", role, os.Getpid())))
		if err != nil {
			return err
		}
		defer stop()
	}
	if d := os.Getenv(traceEnv); d != "" {
		stop, err := startTrace(filepath.Join(d, fmt.Sprintf("%s-%d.trace", role, os.Getpid())))
		if err != nil {
			return err
		}
		defer stop()
	}
	if v := os.Getenv(memProfileRateEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%s=%q: want bytes per sample, 1 or more", memProfileRateEnv, v)
		}
		runtime.MemProfileRate = n
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	switch role {
	case "gateway":
		return gatewayRole(ctx, ctl, log, *dir, *dsnFile, *prefix, *hosts, *people, *recording, *cheap, *nocaps, *webConsole)
	case "agent":
		return agentRole(ctx, ctl, log, *gw, *fp, *prefix, *hosts, *shell)
	case "onehop":
		return onehopRole(ctx, ctl, log, *shell)
	case "bare":
		return bareRole(ctx, ctl)
	case "bridge":
		return bridgeRole(ctx, ctl, *upstream)
	case "tcprelay":
		return tcpRelayRole(ctl, *upstream)
	case "junk":
		return junkRole(ctl, *addr, *from, *n)
	case "events":
		return eventsRole(ctx, ctl, log, *dir, *smtp)
	}
	return fmt.Errorf("unknown role %q", role)
}

// control is a role's end of the driver's pipe.
type control struct {
	mu  sync.Mutex
	out *bufio.Writer
}

func newControl() *control { return &control{out: bufio.NewWriter(os.Stdout)} }

func (c *control) send(kind string, v any) {
	var s string
	if str, ok := v.(string); ok {
		s = str
	} else {
		b, _ := json.Marshal(v)
		s = string(b)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out.WriteString(kind + " " + s + "\n")
	c.out.Flush()
}

// serve answers the driver's commands until stdin closes; wait handles
// "wait" (nil: the role has no hosts to wait for).
func (c *control) serve(wait func(prefix string, n int) error) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var err error
		switch f[0] {
		case "stats":
			c.send("reply", readStats(false))
			continue
		case "gcstats":
			c.send("reply", readStats(true))
			continue
		case "wait":
			n, _ := strconv.Atoi(f[2])
			if wait == nil {
				err = errors.New("nothing to wait for")
			} else {
				err = wait(f[1], n)
			}
		case "profile":
			err = writeHeapProfile(f[1])
		default:
			err = fmt.Errorf("unknown command %q", f[0])
		}
		if err != nil {
			c.send("reply", map[string]string{"error": err.Error()})
		} else {
			c.send("reply", map[string]string{})
		}
	}
}

// cpuProfileEnv names a directory where each role writes a CPU profile of
// its whole life (ROLE-PID.cpu.pprof), for finding where a figure's time goes.
const cpuProfileEnv = "RRBENCH_CPUPROFILE"

func startCPUProfile(path string) (stop func(), err error) {
	return startWriting(path, pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// startWriting creates path and starts writing a profile or trace to it
// (start); the function it returns stops it (stop) and closes the file.
func startWriting(path string, start func(io.Writer) error, stop func()) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { stop(); f.Close() }, nil
}

// traceEnv names a directory where each role writes an execution trace
// of its whole life (ROLE-PID.trace, for go tool trace): where a
// keystroke waits (goroutine hand-offs, wake-ups, system calls). Use it
// with small figures: a trace grows by megabytes a second under load.
const traceEnv = "RRBENCH_TRACE"

func startTrace(path string) (stop func(), err error) {
	return startWriting(path, trace.Start, trace.Stop)
}

// memProfileRateEnv sets the roles' heap profile sampling (bytes per
// sample; 1 records every allocation), for a finer heap profile than the
// default 512 KiB sampling gives.
const memProfileRateEnv = "RRBENCH_MEMPROFILERATE"

// writeHeapProfile writes the heap profile to path and, beside it, the
// goroutines with their stacks (path with .goroutines.txt for
// .heap.pprof): together they say what an idle session or tunnel holds.
func writeHeapProfile(path string) error {
	runtime.GC()
	if err := writeProfile("heap", path, 0); err != nil {
		return err
	}
	return writeProfile("goroutine", strings.TrimSuffix(path, ".heap.pprof")+".goroutines.txt", 1)
}

func writeProfile(name, path string, debug int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, debug); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// procStats is what a role says about itself.
type procStats struct {
	CPUNs      int64  `json:"cpu_ns"` // user + system time of the whole process
	RSSKiB     int64  `json:"rss_kib"`
	HeapInuse  uint64 `json:"heap_inuse"`
	HeapAlloc  uint64 `json:"heap_alloc"`
	StackInuse uint64 `json:"stack_inuse"`
	GoSys      uint64 `json:"go_sys"`
	Goroutines int    `json:"goroutines"`
	Procs      int    `json:"procs"` // GOMAXPROCS
	// Read and write system calls so far (/proc/self/io syscr, syscw):
	// per byte moved, they show how big the packets and reads were.
	ReadCalls  int64 `json:"read_calls"`
	WriteCalls int64 `json:"write_calls"`
}

// readStats reads the process's own figures; with gc, after a collection
// that also returns freed pages to the OS, so that RSS and heap are what
// live objects hold rather than garbage not yet swept.
func readStats(gc bool) procStats {
	if gc {
		runtime.GC()
		debug.FreeOSMemory()
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	reads, writes := ioCalls()
	return procStats{
		ReadCalls:  reads,
		WriteCalls: writes,
		CPUNs:      ru.Utime.Nano() + ru.Stime.Nano(),
		RSSKiB:     vmRSS(),
		HeapInuse:  ms.HeapInuse,
		HeapAlloc:  ms.HeapAlloc,
		StackInuse: ms.StackInuse,
		GoSys:      ms.Sys,
		Goroutines: runtime.NumGoroutine(),
		Procs:      runtime.GOMAXPROCS(0),
	}
}

// ioCalls reads syscr and syscw from /proc/self/io (0 where it cannot).
func ioCalls() (reads, writes int64) {
	p, err := procfs.Self()
	if err != nil {
		return 0, 0
	}
	io, err := p.IO()
	if err != nil {
		return 0, 0
	}
	return int64(io.SyscR), int64(io.SyscW)
}

// vmRSS is the process's resident set size in KiB (0 where it cannot).
func vmRSS() int64 {
	p, err := procfs.Self()
	if err != nil {
		return 0
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0
	}
	return int64(st.VmRSS >> 10)
}

// lineMailer hands each login code to the driver over the control pipe:
// the benchmark's local mail capture.
type lineMailer struct{ ctl *control }

var codeRE = regexp.MustCompile(`\b\d{6}\b`)

func (m lineMailer) Send(_ context.Context, msg auth.Message) error {
	m.ctl.send("mail", msg.To+" "+codeRE.FindString(msg.Body))
	return nil
}

// cheapParams are gatewaytest's argon2id costs, for runs that open hundreds of
// sessions at once (the memory figures), where the production verifier
// (64 MiB, 3 passes) would only measure argon2id.
var cheapParams = &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

func gatewayRole(ctx context.Context, ctl *control, log *slog.Logger, dir, dsnFile, prefix string, hosts, people int, recording string, cheap, nocaps, webConsole bool) error {
	st, err := openStore(ctx, dir, dsnFile)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range hosts {
		h := prefix + strconv.Itoa(i)
		if err := st.UpsertHost(ctx, h); err != nil {
			return err
		}
		if err := st.SetAgentKey(ctx, h, authorizedLine(agentKey(h))); err != nil {
			return err
		}
	}
	if hosts > 0 {
		var v string
		if cheap {
			v, err = argon2id.CreateHash(passphrase, cheapParams)
		} else {
			v, err = auth.HashSecret(passphrase)
		}
		if err != nil {
			return err
		}
		if err := st.SetHostPassphrase(ctx, prefix+"0", v); err != nil {
			return err
		}
	}
	var members []string
	for i := range people {
		p := store.Person{Name: personName(i), Role: "advanced", Email: personEmail(i)}
		if err := st.UpsertPerson(ctx, p); err != nil {
			return err
		}
		k := personKey(i)
		if err := st.SetPersonKeys(ctx, p.Name, map[string]string{ssh.FingerprintSHA256(k.PublicKey()): authorizedLine(k)}); err != nil {
			return err
		}
		members = append(members, p.Name)
	}
	if webConsole {
		if err := webPeople(ctx, st, people); err != nil {
			return err
		}
	}
	if people > 0 {
		if err := st.UpsertTeam(ctx, store.Team{Name: "bench_RR", RapidResponse: true, Members: members, Hosts: []string{"*"}}); err != nil {
			return err
		}
	}
	lots := 1 << 30
	a, err := auth.New(auth.Config{
		Directory: gateway.StoreDirectory(st),
		Mailer:    lineMailer{ctl},
		Audit:     gateway.AuthAudit(st, log),
		Counters:  st, // as rr-gateway runs: the limits counted in the store
		Logger:    log,
		// The benchmark logs in thousands of times from one address.
		Limits: auth.Limits{SourceAttempts: lots, MailsPerPerson: lots, FailuresBeforeLockout: lots},
	})
	if err != nil {
		return err
	}
	var rec gateway.Recorders
	spoolDir := filepath.Join(dir, "recordings")
	switch recording {
	case recordSpool:
		sp, err := recorder.NewSpool(recorder.SpoolConfig{Dir: spoolDir, Logger: log})
		if err != nil {
			return err
		}
		defer sp.Close()
		rec = gateway.SpoolRecorders(sp, st, log, nil)
	case recordOff:
		rec = gateway.NopRecorders{}
	case recordFloor:
		rec = floorRecorders{}
	default:
		return fmt.Errorf("-recording %q: want %s, %s or %s", recording, recordSpool, recordOff, recordFloor)
	}
	hk := signer(gatewayKeyName)
	// The agent role dials its 1 000 tunnels at once from one address.
	lifted := prelogin.Limits{PerAddress: lots, MaxStartups: prelogin.Startups{Start: lots, Rate: 30, Full: lots}}
	gcfg := gateway.Config{HostKey: hk, Store: st, Auth: a, Recorders: rec, Logger: log, Name: "rrbench", AgentLimits: lifted}
	if nocaps {
		gcfg.PeopleLimits = lifted
	}
	srv, err := gateway.New(gcfg)
	if err != nil {
		return err
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	al, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.ServePeople(pl)
	go srv.ServeAgents(al)
	defer srv.Close()
	ready := map[string]string{"people": pl.Addr().String(), "agents": al.Addr().String(),
		"fingerprint": ssh.FingerprintSHA256(hk.PublicKey()), "spool": spoolDir}
	if webConsole {
		addr, stop, err := serveWeb(srv, a, log)
		if err != nil {
			return err
		}
		defer stop()
		ready["web"] = addr
	}
	ctl.send("ready", ready)
	ctl.serve(func(prefix string, n int) error {
		wctx, cancel := context.WithTimeout(ctx, 120*time.Second)
		defer cancel()
		for i := range n {
			if err := srv.WaitHost(wctx, prefix+strconv.Itoa(i), true); err != nil {
				return fmt.Errorf("host %s%d: %w", prefix, i, err)
			}
		}
		return nil
	})
	return nil
}

func agentRole(ctx context.Context, ctl *control, log *slog.Logger, gw, fp, prefix string, n int, shell string) error {
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	for i := range n {
		h := prefix + strconv.Itoa(i)
		a, err := agent.New(agent.Config{Gateways: []string{gw}, GatewayHostKey: fp, Host: h,
			Signer: agentKey(h), Shell: shell, KillGrace: 200 * time.Millisecond, Logger: log})
		if err != nil {
			cancel()
			return err
		}
		wg.Go(func() { a.Run(ctx) })
	}
	ctl.send("ready", map[string]string{})
	ctl.serve(nil)
	cancel()
	wg.Wait()
	return nil
}
