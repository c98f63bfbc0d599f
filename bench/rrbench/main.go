// Command rrbench measures rr against baselines in the same run: bulk
// throughput, the gateway's CPU per byte, keystroke latency, session
// set-up, and memory per idle session and per idle agent tunnel. The
// gateway, the agents and the one-hop endpoint run as processes of their
// own (this binary, re-executed with RRBENCH_ROLE set), so each one's CPU
// time and RSS are its own. `make bench` (scripts/bench.sh) runs it after
// the Go benchmarks and it writes bench/results.md and bench/results.json.
//
// Sizes come from flags, defaulting to the environment: BULK (bytes, with
// an optional KiB/MiB/GiB suffix), SESSIONS, AGENTS, KEYSTROKES, SETUPS,
// EVENTS. -only runs one group of figures. The watch group measures a
// watched session against an unwatched one.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type config struct {
	bulk       int64
	bulkRuns   int // each bulk figure is the median of this many runs
	memRuns    int // each memory figure is the median of this many rounds
	sessions   int
	agents     int
	keystrokes int
	setups     int
	workers    int
	junk       int    // junk connections held while a person logs in
	events     int    // security events posted for the intake figures
	gobench    string // go test -bench output to fold into the table
	out        string // directory of results.md and results.json
	work       string // "" = a fresh temporary directory
	shell      string
	only       string // one figure group, "" for all
}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		if err := runRole(role, os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "rrbench %s: %v\n", role, err)
			os.Exit(1)
		}
		return
	}
	cfg := config{}
	bulk := flag.String("bulk", envOr("BULK", "1GiB"), "bytes moved each way by the bulk figures (0 skips them)")
	flag.IntVar(&cfg.bulkRuns, "bulk-runs", envInt("BULK_RUNS", 5), "runs of each bulk transfer (the median is reported)")
	flag.IntVar(&cfg.memRuns, "memory-runs", envInt("MEMORY_RUNS", 3), "rounds of the memory figures, floor and gateway taking turns (the median is reported)")
	flag.IntVar(&cfg.sessions, "sessions", envInt("SESSIONS", 1000), "idle sessions for the memory figure (0 skips it)")
	flag.IntVar(&cfg.agents, "agents", envInt("AGENTS", 1000), "idle agent tunnels for the memory figure (0 skips it)")
	flag.IntVar(&cfg.keystrokes, "keystrokes", envInt("KEYSTROKES", 2000), "keystroke round trips (0 skips the figure)")
	flag.IntVar(&cfg.setups, "setups", envInt("SETUPS", 200), "session set-ups timed (0 skips the figure)")
	flag.IntVar(&cfg.workers, "workers", envInt("WORKERS", 8), "parallel clients for the set-up rate and for opening sessions")
	flag.IntVar(&cfg.junk, "junk", envInt("JUNK", 20000), "junk connections held while a real person logs in (0 skips the flood figures)")
	flag.IntVar(&cfg.events, "events", envInt("EVENTS", 20000), "security events posted to the intake (0 skips the event figures)")
	flag.IntVar(&gatewayProcs, "gateway-procs", 0, "GOMAXPROCS of the gateway processes alone (0: Go's default), to weigh the runtime's idle threads")
	only := flag.String("only", "", "run only this figure group: speed, memory, flood, events, watch, web or store")
	flag.StringVar(&cfg.gobench, "gobench", "", "output of go test -bench (recorder, gateway) to include")
	flag.StringVar(&cfg.out, "out", "bench", "directory for results.md and results.json")
	flag.StringVar(&cfg.work, "work", "", "working directory (default: a temporary one, removed)")
	flag.StringVar(&cfg.shell, "shell", "/bin/sh", "the shell sessions run on the host")
	flag.Parse()
	cfg.only = *only
	if cfg.bulkRuns < 1 || cfg.memRuns < 1 || gatewayProcs < 0 {
		fmt.Fprintf(os.Stderr, "rrbench: -bulk-runs (BULK_RUNS) and -memory-runs (MEMORY_RUNS) want 1 or more, -gateway-procs 0 or more; got %d, %d, %d\n",
			cfg.bulkRuns, cfg.memRuns, gatewayProcs)
		os.Exit(2)
	}
	var err error
	if *bulk == "0" {
		cfg.bulk = 0 // skips the bulk figures
	} else if cfg.bulk, err = parseSize(*bulk); err != nil {
		fmt.Fprintln(os.Stderr, "rrbench:", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "rrbench:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// envInt is the whole number in the environment variable name, or def
// when it is unset; a value that is not a whole number stops the bench
// (it must not run other sizes than asked).
func envInt(name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		fmt.Fprintf(os.Stderr, "rrbench: %s=%q: want a whole number, 0 or more\n", name, s)
		os.Exit(2)
	}
	return n
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "rrbench %s: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(cfg config) error {
	work := cfg.work
	if work == "" {
		d, err := os.MkdirTemp("", "rrbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	r := &results{cfg: cfg, started: time.Now()}
	for _, g := range []struct {
		group string
		run   func(config, string) error
		dir   string
	}{
		{"speed", r.speed, "speed"}, {"memory", r.memory, "memory"}, {"flood", r.junkFlood, "flood"}, {"events", r.eventFigures, "events"},
		{"watch", r.watchFigures, "watch"}, {"web", r.webFigures, "web"},
		{"store", r.storeFigures, "store"},
	} {
		if cfg.only != "" && cfg.only != g.group {
			continue
		}
		if err := g.run(cfg, filepath.Join(work, g.dir)); err != nil {
			return err
		}
	}
	if cfg.gobench != "" {
		if err := r.goBenchmarks(cfg.gobench); err != nil {
			return err
		}
	}
	return r.write(cfg.out)
}

// stack is a gateway (recording as the role's -recording says: recordSpool,
// recordOff or recordFloor) and an agent process for host h0, with people
// p0…
func startStack(dir string, people int, cheap bool, recording, shell string, extra ...string) (gw, ag *child, err error) {
	gw, err = startChild("gateway", filepath.Join(dir, "gateway"), append([]string{"-people", strconv.Itoa(people),
		"-hosts", "1", "-cheap=" + strconv.FormatBool(cheap), "-recording", recording}, extra...)...)
	if err != nil {
		return nil, nil, err
	}
	ag, err = startChild("agent", filepath.Join(dir, "agent"), "-gw", gw.ready["agents"], "-fp", gw.ready["fingerprint"],
		"-hosts", "1", "-shell", shell)
	if err != nil {
		gw.stop()
		return nil, nil, err
	}
	if err := gw.do(nil, "wait h 1"); err != nil {
		ag.stop()
		gw.stop()
		return nil, nil, err
	}
	return gw, ag, nil
}

// speed: bulk, CPU per byte, keystrokes, set-up; gateway and one hop.
func (r *results) speed(cfg config, dir string) error {
	gw, ag, err := startStack(dir, cfg.workers, false, recordSpool, cfg.shell)
	if err != nil {
		return err
	}
	defer gw.stop()
	defer ag.stop()
	// The same gateway with recording off: what the relay costs by itself.
	gwOff, agOff, err := startStack(filepath.Join(dir, "norec"), 1, true, recordOff, cfg.shell)
	if err != nil {
		return err
	}
	defer gwOff.stop()
	defer agOff.stop()
	// And with a recorder that only encrypts and hashes: the floor of any
	// recording, under the bulk target.
	gwFloor, agFloor, err := startStack(filepath.Join(dir, "floorrec"), 1, true, recordFloor, cfg.shell)
	if err != nil {
		return err
	}
	defer gwFloor.stop()
	defer agFloor.stop()
	oh, err := startChild("onehop", filepath.Join(dir, "onehop"), "-shell", cfg.shell)
	if err != nil {
		return err
	}
	defer oh.stop()
	br, err := startChild("bridge", filepath.Join(dir, "bridge"), "-upstream", oh.ready["addr"])
	if err != nil {
		return err
	}
	defer br.stop()
	viaGW := target{name: "gateway", addr: gw.ready["people"], hostKey: signer(gatewayKeyName).PublicKey(), gateway: true, proc: gw}
	viaOff := target{name: "gateway, recording off", addr: gwOff.ready["people"], hostKey: signer(gatewayKeyName).PublicKey(), gateway: true, proc: gwOff}
	viaFloor := target{name: "gateway, recording only encrypted and hashed", addr: gwFloor.ready["people"], hostKey: signer(gatewayKeyName).PublicKey(), gateway: true, proc: gwFloor}
	oneHop := target{name: "one hop", addr: oh.ready["addr"], hostKey: signer(onehopKeyName).PublicKey(), proc: oh}
	bridge := target{name: "naive bridge", addr: br.ready["addr"], hostKey: signer(onehopKeyName).PublicKey(), proc: br}
	spool := gw.ready["spool"]

	// OpenSSH direct and ssh -J, when sshd is here, take their turns with
	// the Go paths.
	o, osshSkip := r.startOpenSSH(cfg, filepath.Join(dir, "openssh"))
	if o != nil {
		defer o.stop()
	}
	for _, down := range []bool{true, false} {
		if cfg.bulk == 0 {
			break
		}
		dirName := "person→host"
		if down {
			dirName = "host→person"
		}
		// They all take turns, so that drift in the machine's load
		// touches all; each figure is the median run.
		type turn struct {
			what string
			run  func() (transfer, error)
			runs []transfer
		}
		goTurn := func(what string, t target) turn {
			return turn{what: what, run: func() (transfer, error) {
				x, err := bulk(t, cfg.bulk, down)
				clearSpool(spool)
				if err == nil {
					logf("  %.0f MB/s, %s %s", x.mbps(), t.name, x.costs())
				}
				return x, err
			}}
		}
		turns := []turn{
			goTurn("one hop", oneHop),
			goTurn("through the gateway, recording on", viaGW),
			goTurn("through the gateway, recording off", viaOff),
			goTurn("through a naive two-hop bridge", bridge),
			goTurn("through the gateway, recording only encrypted and hashed", viaFloor),
		}
		if o != nil {
			for _, ot := range o.turns(cfg.bulk, down) {
				turns = append(turns, turn{what: ot.what, run: ot.run})
			}
		}
		for i := 0; i < max(cfg.bulkRuns, 1); i++ {
			for k := range turns {
				tn := &turns[k]
				logf("bulk %s, %d bytes, %s (run %d)", dirName, cfg.bulk, tn.what, i+1)
				x, err := tn.run()
				if err != nil {
					return err
				}
				tn.runs = append(tn.runs, x)
			}
		}
		runs := make([][]transfer, len(turns))
		for k := range turns {
			runs[k] = turns[k].runs
		}
		r.bulkFigures(cfg, dirName, runs, o != nil, osshSkip)
	}

	if cfg.keystrokes > 0 {
		if err := r.keystrokeFigures(cfg, dir, []target{oneHop, viaGW, bridge}, o); err != nil {
			return err
		}
	}
	if cfg.setups > 0 {
		logf("set-up: %d runs of %d sessions one at a time, one hop and the gateway (key, passphrase, mailed code) taking turns",
			setupRuns, setupsPerRun(cfg.setups))
		times, err := setupTimes([]target{oneHop, viaGW}, cfg.setups)
		clearSpool(spool)
		if err != nil {
			return err
		}
		logf("set-up: %d sessions with %d clients in parallel, one hop, then the gateway", cfg.setups, cfg.workers)
		oneRate, err := setupRate(oneHop, cfg.setups, cfg.workers)
		if err != nil {
			return err
		}
		viaRate, err := setupRate(viaGW, cfg.setups, cfg.workers)
		clearSpool(spool)
		if err != nil {
			return err
		}
		one50, one99 := setupSpreads(times[0])
		via50, via99 := setupSpreads(times[1])
		note := fmt.Sprintf("TCP connect to first shell byte; gateway: key + passphrase (production argon2id, 64 MiB, 3 passes) + mailed code; %d runs of %d, taking turns",
			setupRuns, setupsPerRun(cfg.setups))
		r.add(figure{Name: "session set-up median, through gateway", Value: via50.median, Spread: via50.String(), Unit: "ms",
			Baseline: "one hop (key only)", BaselineValue: one50.median, BaselineSpread: one50.String(), Lower: true, Note: note})
		r.add(figure{Name: "session set-up p99, through gateway", Value: via99.median, Spread: via99.String(), Unit: "ms",
			Baseline: "one hop (key only)", BaselineValue: one99.median, BaselineSpread: one99.String(), Lower: true})
		r.add(figure{Name: "sessions set up per second, through gateway", Value: viaRate, Unit: "/s", Baseline: "one hop",
			BaselineValue: oneRate, Note: fmt.Sprintf("%d clients in parallel", cfg.workers)})
	}
	return nil
}

// startOpenSSH starts the throwaway sshds for the ssh -J figures, or
// says why it cannot (no sshd, no ssh).
func (r *results) startOpenSSH(cfg config, dir string) (*openssh, string) {
	if cfg.bulk == 0 && cfg.keystrokes == 0 {
		return nil, ""
	}
	sshd := sshdPath()
	if sshd == "" {
		return nil, "no sshd (apt-get install openssh-server)"
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		return nil, "no ssh (apt-get install openssh-client)"
	}
	o, err := startOpenSSH(sshd, dir)
	if err != nil {
		return nil, err.Error()
	}
	return o, ""
}

// osshTurn is one OpenSSH transfer that takes its turn with the Go ones.
type osshTurn struct {
	what string
	run  func() (transfer, error)
}

// turns are OpenSSH direct and ssh -J with the Go paths' cipher, and ssh
// -J with OpenSSH's default, each with its set-up (measured first) taken
// off.
func (o *openssh) turns(size int64, down bool) []osshTurn {
	mk := func(what, host, cipher string) osshTurn {
		var setup time.Duration
		return osshTurn{what: what, run: func() (transfer, error) {
			if setup == 0 {
				d, err := o.setup(host, cipher)
				if err != nil {
					return transfer{}, err
				}
				setup = d
			}
			x, err := o.bulk(host, cipher, setup, size, down)
			if err == nil {
				logf("  %.0f MB/s (set-up of %v taken off)", x.mbps(), setup.Round(time.Millisecond))
			}
			return x, err
		}}
	}
	return []osshTurn{
		mk("OpenSSH direct, "+matchedCipher, "direct", matchedCipher),
		mk("OpenSSH ssh -J, "+matchedCipher, "target", matchedCipher),
		mk("OpenSSH ssh -J, its default cipher", "target", ""),
	}
}

func absPath(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sizeString(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
