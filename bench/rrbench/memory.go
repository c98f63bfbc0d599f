package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// memUse is what a server holds per idle unit (a PTY session, a tunnel, a
// connection): the difference between its figures with the units held and
// without, divided by their number.
type memUse struct {
	rssKiB, heapKiB, liveKiB, stackKiB, goroutines float64 // liveKiB: HeapAlloc, the objects alive in heapKiB's spans
}

func perUnit(before, after procStats, n int) memUse {
	k := float64(n)
	return memUse{
		rssKiB:     float64(after.RSSKiB-before.RSSKiB) / k,
		heapKiB:    float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / 1024 / k,
		liveKiB:    float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / 1024 / k,
		stackKiB:   float64(int64(after.StackInuse)-int64(before.StackInuse)) / 1024 / k,
		goroutines: float64(after.Goroutines-before.Goroutines) / k,
	}
}

// memRound is one round of the memory figures: the bare floor, then the
// gateway, each from fresh processes.
type memRound struct {
	floorSession, floorConn memUse
	session, tunnel         memUse
}

// memory measures the gateway's memory per idle PTY session and per idle
// agent tunnel against the bare x/crypto/ssh floor, in cfg.memRuns rounds
// in which floor and gateway take turns: RSS moves by a few KiB per unit
// from one process to the next, so each figure is a median with its
// spread, and the ratio of each round is in the note.
func (r *results) memory(cfg config, dir string) error {
	var kinds []memKind
	if cfg.sessions > 0 {
		kinds = append(kinds, memKind{
			rss:      fmt.Sprintf("gateway RSS per idle PTY session (%d live)", cfg.sessions),
			heap:     "gateway Go heap per idle PTY session",
			floor:    "bare x/crypto/ssh server, one idle PTY channel per connection",
			target:   "<= 1.5",
			measured: "VmRSS after GC + FreeOSMemory, minus the same with no session",
			unit:     "session",
			files:    "sessions",
			measure:  sessionMemory,
			gateway:  func(m *memRound) *memUse { return &m.session },
			bare:     func(m *memRound) *memUse { return &m.floorSession },
		})
	}
	if cfg.agents > 0 {
		kinds = append(kinds, memKind{
			rss:      fmt.Sprintf("gateway RSS per idle agent tunnel (%d connected)", cfg.agents),
			heap:     "gateway Go heap per idle agent tunnel",
			floor:    "bare x/crypto/ssh server, one idle connection",
			target:   "<= 1.3",
			measured: "VmRSS after GC + FreeOSMemory, minus the same before the agents dialled",
			unit:     "tunnel",
			files:    "agents",
			measure:  agentMemory,
			gateway:  func(m *memRound) *memUse { return &m.tunnel },
			bare:     func(m *memRound) *memUse { return &m.floorConn },
		})
	}
	if len(kinds) == 0 {
		return nil
	}
	rounds := make([]memRound, max(cfg.memRuns, 1))
	for i := range rounds {
		d := filepath.Join(dir, strconv.Itoa(i+1))
		m := &rounds[i]
		if err := bareMemory(cfg, filepath.Join(d, "bare"), m); err != nil {
			return err
		}
		for _, k := range kinds {
			profile := "" // the heap profiles come from the last round
			if i == len(rounds)-1 {
				profile = k.profile(cfg)
			}
			u, err := k.measure(cfg, filepath.Join(d, k.files), profile)
			if err != nil {
				return err
			}
			*k.gateway(m) = u
			floor := k.bare(m).rssKiB
			logf("  round %d: %.1f KiB per %s against the floor's %.1f (%.2f)", i+1, u.rssKiB, k.unit, floor, u.rssKiB/floor)
		}
	}
	for _, k := range kinds {
		r.memoryFigures(cfg, rounds, k)
	}
	return nil
}

// memKind names one pair of memory figures (RSS against the floor, and
// the Go heap), measures the gateway's side, and picks its measurements
// out of a round.
type memKind struct {
	rss, heap, floor, target, measured string
	unit                               string // "session", "tunnel"
	files                              string // names the work directory and the heap profile (FILES.heap.pprof)
	measure                            func(cfg config, dir, profile string) (memUse, error)
	gateway, bare                      func(*memRound) *memUse
}

// profile is where the gateway's heap profile of this kind goes.
func (k memKind) profile(cfg config) string { return filepath.Join(cfg.out, k.files+".heap.pprof") }

func (r *results) memoryFigures(cfg config, rounds []memRound, k memKind) {
	use := func(pick func(*memRound) *memUse, v func(memUse) float64) spread {
		return spreadOf(rounds, func(m memRound) float64 { return v(*pick(&m)) })
	}
	rss := func(u memUse) float64 { return u.rssKiB }
	gw, floor := use(k.gateway, rss), use(k.bare, rss)
	ratios := spreadOf(rounds, func(m memRound) float64 { return k.gateway(&m).rssKiB / k.bare(&m).rssKiB })
	floorHeap := use(k.bare, func(u memUse) float64 { return u.heapKiB }).median
	floorStack := use(k.bare, func(u memUse) float64 { return u.stackKiB }).median
	floorG := use(k.bare, func(u memUse) float64 { return u.goroutines }).median
	heap := use(k.gateway, func(u memUse) float64 { return u.heapKiB })
	stack := use(k.gateway, func(u memUse) float64 { return u.stackKiB })
	g := use(k.gateway, func(u memUse) float64 { return u.goroutines })
	// One round has no spread.
	spreadText := func(s spread) string {
		if len(rounds) < 2 {
			return ""
		}
		return s.String()
	}
	how := "1 round"
	if len(rounds) > 1 {
		how = fmt.Sprintf("%d rounds, floor and gateway taking turns, ratio of each round %s–%s", len(rounds), fmtNum(ratios.lo), fmtNum(ratios.hi))
	}
	r.add(figure{Name: k.rss, Value: gw.median, Spread: spreadText(gw), Unit: "KiB", Baseline: k.floor,
		BaselineValue: floor.median, BaselineSpread: spreadText(floor), Target: k.target, Lower: true,
		Note: fmt.Sprintf("%s; %s; heap profile: %s; floor: a bare x/crypto/ssh server holding the same, %.1f KiB heap + %.1f KiB stacks (%.1f goroutines)",
			k.measured, how, k.profile(cfg), floorHeap, floorStack, floorG)})
	r.add(figure{Name: k.heap, Value: heap.median, Spread: spreadText(heap), Unit: "KiB", Lower: true,
		Note: fmt.Sprintf("plus %.1f KiB of goroutine stacks (%.1f goroutines per %s)", stack.median, g.median, k.unit)})
}

// bareMemory measures the floor of the memory figures: what a server that
// does nothing but hold connections on golang.org/x/crypto/ssh (the
// library the gateway is built on) takes per idle connection with one PTY
// session channel, and per idle connection with none, at the same counts
// as the gateway's figures. Each comes from a fresh process warmed by one
// session, as the gateway's do: a process that has held connections
// before keeps their goroutines' records (about 0.45 KiB each; Go never
// frees them) and lends them to the next, which then look cheaper.
func bareMemory(cfg config, dir string, m *memRound) error {
	var err error
	if cfg.sessions > 0 {
		// As the gateway's sessions: 2×workers clients at a time.
		logf("memory floor: %d idle PTY sessions on a bare x/crypto/ssh server", cfg.sessions)
		if m.floorSession, err = bareHolding(filepath.Join(dir, "sessions"), cfg.sessions, func(t target) (func(), error) {
			shells, err := openMany(t, cfg.sessions, 2*cfg.workers)
			return func() { closeAll(shells) }, err
		}); err != nil {
			return err
		}
		logf("  %.1f KiB RSS per session (heap in use %.1f, live objects %.1f)", m.floorSession.rssKiB, m.floorSession.heapKiB, m.floorSession.liveKiB)
	}
	if cfg.agents > 0 {
		logf("memory floor: %d idle connections on a bare x/crypto/ssh server", cfg.agents)
		if m.floorConn, err = bareHolding(filepath.Join(dir, "conns"), cfg.agents, func(t target) (func(), error) {
			conns, err := dialMany(t, cfg.agents, 2*cfg.workers)
			return func() {
				for _, c := range conns {
					c.Close()
				}
			}, err
		}); err != nil {
			return err
		}
		logf("  %.1f KiB RSS per connection (heap in use %.1f, live objects %.1f)", m.floorConn.rssKiB, m.floorConn.heapKiB, m.floorConn.liveKiB)
	}
	return nil
}

// bareHolding starts a bare x/crypto/ssh server, warms it with one
// session, and measures what it holds per unit while open's n units are
// open.
func bareHolding(dir string, n int, open func(target) (func(), error)) (memUse, error) {
	b, err := startChild("bare", dir)
	if err != nil {
		return memUse{}, err
	}
	defer b.stop()
	t := target{name: "bare x/crypto/ssh", addr: b.ready["addr"], hostKey: signer(onehopKeyName).PublicKey(), proc: b}
	warm, err := openMany(t, 1, 1)
	if err != nil {
		return memUse{}, err
	}
	closeAll(warm)
	// No recorder here: a short settle is enough.
	time.Sleep(200 * time.Millisecond)
	before, err := b.stats(true)
	if err != nil {
		return memUse{}, err
	}
	closeThem, err := open(t)
	if err != nil {
		return memUse{}, err
	}
	defer closeThem()
	time.Sleep(500 * time.Millisecond)
	after, err := b.stats(true)
	if err != nil {
		return memUse{}, err
	}
	return perUnit(before, after, n), nil
}

// sessionMemory: the gateway's RSS and heap per idle PTY session, and
// its heap profile with them held when profile is not "".
func sessionMemory(cfg config, dir, profile string) (memUse, error) {
	gw, ag, err := startStack(dir, cfg.sessions, true, recordSpool, cfg.shell)
	if err != nil {
		return memUse{}, err
	}
	defer gw.stop()
	defer ag.stop()
	viaGW := target{name: "gateway", addr: gw.ready["people"], hostKey: signer(gatewayKeyName).PublicKey(), gateway: true, proc: gw}
	// One session first, so that what every session shares (the store's
	// caches, the recorder's pools) is in the "before".
	warm, err := openMany(viaGW, 1, 1)
	if err != nil {
		return memUse{}, err
	}
	closeAll(warm)
	time.Sleep(time.Second)
	before, err := gw.stats(true)
	if err != nil {
		return memUse{}, err
	}
	logf("memory: opening %d idle PTY sessions through the gateway", cfg.sessions)
	shells, err := openMany(viaGW, cfg.sessions, 2*cfg.workers)
	if err != nil {
		return memUse{}, err
	}
	defer closeAll(shells)
	time.Sleep(2 * time.Second) // a recorder flush interval and more
	return held(gw, before, cfg.sessions, profile)
}

// agentMemory: the gateway's RSS and heap per idle agent tunnel, and its
// heap profile with them held when profile is not "".
func agentMemory(cfg config, dir, profile string) (memUse, error) {
	n := strconv.Itoa(cfg.agents)
	gw, err := startChild("gateway", filepath.Join(dir, "gateway"), "-people", "0", "-hosts", n, "-prefix", "a", "-cheap")
	if err != nil {
		return memUse{}, err
	}
	defer gw.stop()
	// One tunnel first, held and dropped, as the session figure opens one
	// session first: the code and the store's pages every tunnel's
	// admission touches are then in the "before".
	warm, err := startChild("agent", filepath.Join(dir, "warm"), "-gw", gw.ready["agents"], "-fp", gw.ready["fingerprint"],
		"-hosts", "1", "-prefix", "a", "-shell", cfg.shell)
	if err != nil {
		return memUse{}, err
	}
	err = gw.do(nil, "wait a 1")
	warm.stop()
	if err != nil {
		return memUse{}, err
	}
	time.Sleep(time.Second)
	before, err := gw.stats(true)
	if err != nil {
		return memUse{}, err
	}
	logf("memory: %d idle agent tunnels", cfg.agents)
	ag, err := startChild("agent", filepath.Join(dir, "agent"), "-gw", gw.ready["agents"], "-fp", gw.ready["fingerprint"],
		"-hosts", n, "-prefix", "a", "-shell", cfg.shell)
	if err != nil {
		return memUse{}, err
	}
	defer ag.stop()
	if err := gw.do(nil, "wait a "+n); err != nil {
		return memUse{}, err
	}
	time.Sleep(2 * time.Second)
	return held(gw, before, cfg.agents, profile)
}

// held reads the gateway's figures with n units held, against before,
// and writes its heap profile when profile is not "".
func held(gw *child, before procStats, n int, profile string) (memUse, error) {
	after, err := gw.stats(true)
	if err != nil {
		return memUse{}, err
	}
	if profile != "" {
		if err := gw.do(nil, "profile "+absPath(profile)); err != nil {
			return memUse{}, err
		}
	}
	logf("  RSS %d → %d KiB, heap in use %d → %d KiB (live objects %d → %d), goroutines %d → %d", before.RSSKiB, after.RSSKiB,
		before.HeapInuse>>10, after.HeapInuse>>10, before.HeapAlloc>>10, after.HeapAlloc>>10, before.Goroutines, after.Goroutines)
	return perUnit(before, after, n), nil
}
