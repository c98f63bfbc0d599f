package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

type percentiles struct{ p50, p99 time.Duration }

func pct(d []time.Duration) percentiles {
	d = slices.Clone(d)
	slices.Sort(d)
	at := func(p int) time.Duration { return d[min(len(d)-1, len(d)*p/100)] }
	return percentiles{at(50), at(99)}
}

// keystrokeRuns is how many runs the keystrokes are split into: each
// figure is the median of the runs' percentiles, with their spread.
const keystrokeRuns = 5

// keystrokeFigures times keystroke echoes on rr's paths (goPaths: one
// hop, the gateway, the naive bridge) and, with sshd here, OpenSSH direct,
// ssh -J and a plain Go TCP relay in front of OpenSSH direct (a process
// of its own, in dir), all taking turns, and adds the figures: the
// gateway against ssh -J (the target), the rest as references.
func (r *results) keystrokeFigures(cfg config, dir string, goPaths []target, o *openssh) error {
	targets := slices.Clone(goPaths)
	if o != nil {
		direct, jump := o.keystrokeTargets(cfg.shell)
		tr, err := startChild("tcprelay", filepath.Join(dir, "tcprelay"), "-upstream", direct.addr)
		if err != nil {
			return err
		}
		defer tr.stop()
		relay := direct
		relay.name, relay.addr, relay.proc = "a Go TCP relay in front of OpenSSH direct", tr.ready["addr"], tr
		targets = append(targets, direct, jump, relay)
	}
	names := make([]string, len(targets))
	for k, t := range targets {
		names[k] = t.name
	}
	logf("keystrokes: %d round trips each in %d runs, taking turns: %v", cfg.keystrokes, keystrokeRuns, names)
	runs, err := keystrokes(targets, cfg.keystrokes)
	if err != nil {
		return err
	}
	p50 := func(k int) spread { return spreadOf(runs[k], func(p percentiles) float64 { return us(p.p50) }) }
	p99 := func(k int) spread { return spreadOf(runs[k], func(p percentiles) float64 { return us(p.p99) }) }
	const oneHop, viaGW, bridge, direct, jump, tcpRelay = 0, 1, 2, 3, 4, 5
	note := "the same Go client on every path, an interactive PTY shell (" + cfg.shell + ") echoing through the terminal"
	if o == nil {
		for _, q := range []struct {
			name string
			v    func(int) spread
		}{{"p50", p50}, {"p99", p99}} {
			r.add(figure{Name: "keystroke echo " + q.name + ", through gateway", Value: q.v(viaGW).median, Spread: q.v(viaGW).String(),
				Unit: "µs", Baseline: "one hop", BaselineValue: q.v(oneHop).median, BaselineSpread: q.v(oneHop).String(), Lower: true,
				Note: "ssh -J skipped: no sshd (apt-get install openssh-server)"})
		}
	} else {
		for _, q := range []struct {
			name string
			v    func(int) spread
		}{{"p50", p50}, {"p99", p99}} {
			r.add(figure{Name: "keystroke echo " + q.name + ", through gateway vs OpenSSH ssh -J", Value: q.v(viaGW).median,
				Spread: q.v(viaGW).String(), Unit: "µs", Baseline: "ssh -J", BaselineValue: q.v(jump).median, BaselineSpread: q.v(jump).String(),
				Target: "<= 1.0", Lower: true, Note: note + "; ssh -J as OpenSSH's ProxyJump does it: a direct-tcpip channel through the jump sshd, the target's SSH inside"})
		}
		r.add(figure{Name: "keystroke echo p50 / p99, OpenSSH direct (reference)", Value: p50(direct).median, Spread: p50(direct).String(),
			Unit: "µs", Baseline: "one hop (Go) p50", BaselineValue: p50(oneHop).median, BaselineSpread: p50(oneHop).String(), Lower: true,
			Note: fmt.Sprintf("p99 %s µs; one hop's p99 %s µs", p99(direct), p99(oneHop))})
		r.add(figure{Name: "keystroke echo p50 / p99, a plain Go TCP relay in front of OpenSSH direct (reference: the floor of a Go process in the middle)",
			Value: p50(tcpRelay).median, Spread: p50(tcpRelay).String(), Unit: "µs", Baseline: "ssh -J p50",
			BaselineValue: p50(jump).median, BaselineSpread: p50(jump).String(), Lower: true,
			Note: fmt.Sprintf("p99 %s µs (ssh -J %s); io.Copy through a buffer both ways, no SSH: what any Go program between the person and the host adds; "+
				"through the gateway p50 %.2f× this", p99(tcpRelay), p99(jump), p50(viaGW).median/p50(tcpRelay).median)})
	}
	r.add(figure{Name: "keystroke echo p50 / p99, one hop to the agent's session code (reference)", Value: p50(oneHop).median,
		Spread: p50(oneHop).String(), Unit: "µs", Lower: true, Note: fmt.Sprintf("p99 %s µs", p99(oneHop))})
	r.add(figure{Name: "keystroke echo p50 / p99, naive two-hop bridge (reference)", Value: p50(bridge).median, Spread: p50(bridge).String(),
		Unit: "µs", Baseline: "through gateway p50", BaselineValue: p50(viaGW).median, BaselineSpread: p50(viaGW).String(), Lower: true,
		Note: fmt.Sprintf("p99 %s µs; what a third process that ends SSH on both hops adds, with no work of its own", p99(bridge))})
	return nil
}

// spread is a figure's median over runs and its range.
type spread struct{ median, lo, hi float64 }

func spreadOf[T any](runs []T, v func(T) float64) spread {
	xs := make([]float64, len(runs))
	for i, x := range runs {
		xs[i] = v(x)
	}
	slices.Sort(xs)
	return spread{median: medianOf(xs), lo: xs[0], hi: xs[len(xs)-1]}
}

// String is "median (lo–hi)".
func (s spread) String() string {
	return fmt.Sprintf("%s (%s–%s)", fmtNum(s.median), fmtNum(s.lo), fmtNum(s.hi))
}

// keystrokes times n round trips of one byte through an interactive PTY
// shell on the host, on each target, in keystrokeRuns runs: alternately
// "x" (echoed "x") and DEL (echoed "\b \b" by the terminal's line
// discipline), so the line never grows. The targets take turns in rounds
// of keystrokeRound, so that drift in the machine's load touches all of
// them alike. It returns each target's percentiles of each run.
func keystrokes(targets []target, n int) ([][]percentiles, error) {
	shells := make([]*shell, len(targets))
	defer func() {
		for _, sh := range shells {
			if sh != nil {
				sh.close()
			}
		}
	}()
	for k, t := range targets {
		c, err := t.dial(0)
		if err != nil {
			return nil, err
		}
		if shells[k], err = openShell(c, t.command); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		shells[k].quiet(300 * time.Millisecond) // the rest of the prompt
	}
	perRun := max(n/keystrokeRuns, keystrokeRound)
	out := make([][]percentiles, len(targets))
	for run := range keystrokeRuns {
		d := make([][]time.Duration, len(targets))
		warmup := 0
		if run == 0 {
			warmup = keystrokeRound
		}
		for done := -warmup; done < perRun; done += keystrokeRound {
			for k, t := range targets {
				for i := range keystrokeRound {
					p, want := []byte("x"), 1
					if i%2 == 1 {
						p, want = []byte{0x7f}, 3
					}
					rt, err := shells[k].roundTrip(p, want)
					if err != nil {
						return nil, fmt.Errorf("%s: keystroke %d: %w", t.name, done+i, err)
					}
					if done >= 0 && done+i < perRun {
						d[k] = append(d[k], rt)
					}
				}
			}
		}
		for k := range targets {
			out[k] = append(out[k], pct(d[k]))
		}
	}
	return out, nil
}

// runPercentiles splits d, in the order it was measured, into runs
// parts of equal length and gives the percentiles of each.
func runPercentiles(d []time.Duration, runs int) []percentiles {
	runs = max(min(runs, len(d)), 1)
	out := make([]percentiles, runs)
	for i := range out {
		out[i] = pct(d[i*len(d)/runs : (i+1)*len(d)/runs])
	}
	return out
}

// keystrokeRound is how many round trips each target makes in its turn
// (even, so that each turn leaves the line as it found it).
const keystrokeRound = 20
