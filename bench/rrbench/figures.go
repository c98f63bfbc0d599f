package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// logLine is the payload of the bulk figures: printable log lines, the
// common case of what a responder pulls through a session. (The recorder
// escapes text into JSON strings and base64s invalid UTF-8, so binary data
// costs it more.)
const logLine = "Nov 24 18:33:02 web-01 sshd[1234]: Accepted publickey for deploy from 10.0.0.7 port 52144 ssh2\n"

// transfer is one bulk run.
type transfer struct {
	bytes   int64
	elapsed time.Duration
	cpuNs   int64 // the endpoint process's CPU time during the transfer
	// the endpoint process's read and write system calls during it
	reads, writes int64
}

// callsPerMiB is the endpoint's read and write system calls per MiB moved.
func (x transfer) callsPerMiB() (reads, writes float64) {
	mib := float64(x.bytes) / (1 << 20)
	return float64(x.reads) / mib, float64(x.writes) / mib
}

func (x transfer) mbps() float64 { return float64(x.bytes) / x.elapsed.Seconds() / 1e6 }

// medianTransfer is the run with the median throughput (its CPU figure
// comes with it).
func medianTransfer(runs []transfer) transfer {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b transfer) int { return cmp.Compare(a.mbps(), b.mbps()) })
	return s[(len(s)-1)/2]
}
func (x transfer) nsPerByte() float64 { return float64(x.cpuNs) / float64(x.bytes) }

// bulk moves size bytes of log lines host→person (down) or person→host
// through t, on a connection of its own.
func bulk(t target, size int64, down bool) (transfer, error) {
	s, end, err := bulkSession(t)
	if err != nil {
		return transfer{}, err
	}
	defer end()
	before, err := t.proc.stats(false)
	if err != nil {
		return transfer{}, err
	}
	t0 := time.Now()
	var n int64
	if down {
		out, _ := s.StdoutPipe()
		line := logLine[:len(logLine)-1]
		if err := s.Start(fmt.Sprintf("yes '%s' | head -c %d", line, size)); err != nil {
			return transfer{}, err
		}
		n, err = io.Copy(io.Discard, out)
		if err != nil {
			return transfer{}, err
		}
	} else {
		in, _ := s.StdinPipe()
		if err := s.Start("cat > /dev/null"); err != nil {
			return transfer{}, err
		}
		buf := bytes.Repeat([]byte(logLine), (256<<10)/len(logLine))
		for n < size {
			p := buf[:min(int64(len(buf)), size-n)]
			m, err := in.Write(p)
			n += int64(m)
			if err != nil {
				return transfer{}, err
			}
		}
		in.Close()
	}
	if err := s.Wait(); err != nil {
		return transfer{}, fmt.Errorf("%s: bulk: %w", t.name, err)
	}
	el := time.Since(t0)
	after, err := t.proc.stats(false)
	if err != nil {
		return transfer{}, err
	}
	if n != size {
		return transfer{}, fmt.Errorf("%s: moved %d bytes of %d", t.name, n, size)
	}
	return transfer{bytes: n, elapsed: el, cpuNs: after.CPUNs - before.CPUNs,
		reads: after.ReadCalls - before.ReadCalls, writes: after.WriteCalls - before.WriteCalls}, nil
}

// bulkSession opens a session for person 0 on a connection of its own;
// end closes both.
func bulkSession(t target) (s *ssh.Session, end func(), err error) {
	c, err := t.dial(0)
	if err != nil {
		return nil, nil, err
	}
	if s, err = c.NewSession(); err != nil {
		c.Close()
		return nil, nil, err
	}
	return s, func() { s.Close(); c.Close() }, nil
}

// clearSpool removes finished recordings (a GiB each way adds up).
func clearSpool(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.gz"))
	for _, f := range files {
		os.Remove(f)
	}
}

// setup is one session from TCP connect to the first byte of its shell.
func setup(t target, person int) (time.Duration, error) {
	t0 := time.Now()
	c, err := t.dial(person)
	if err != nil {
		return 0, err
	}
	sh, err := openShell(c, t.command)
	if err != nil {
		c.Close()
		return 0, err
	}
	d := time.Since(t0)
	sh.close()
	return d, nil
}

// setupRuns is how many runs the set-up latency figures take, the
// targets taking turns; each figure is the median of the runs'
// percentiles.
const setupRuns = 5

// setupTimes times set-ups one at a time through each target, in
// setupRuns runs of n/2 each (100 at the default SETUPS of 200, so that a
// run's p99 is its slowest set-up), the targets taking turns so that
// drift in the machine's load touches all. It returns each target's
// percentiles of each run.
func setupTimes(targets []target, n int) ([][]percentiles, error) {
	perRun := setupsPerRun(n)
	out := make([][]percentiles, len(targets))
	for range setupRuns {
		for k, t := range targets {
			d := make([]time.Duration, perRun)
			for i := range d {
				var err error
				if d[i], err = setup(t, 0); err != nil {
					return nil, fmt.Errorf("%s: set-up: %w", t.name, err)
				}
			}
			out[k] = append(out[k], pct(d))
		}
	}
	return out, nil
}

// setupsPerRun is how many set-ups each of setupTimes' runs takes when
// the figure is n (SETUPS).
func setupsPerRun(n int) int { return max(n/2, 1) }

// setupRate is set-ups per second through t, n of them by workers in
// parallel.
func setupRate(t target, n, workers int) (float64, error) {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, err := setup(t, w); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// setupSpreads are the median and p99 of each run, in ms.
func setupSpreads(runs []percentiles) (p50, p99 spread) {
	return spreadOf(runs, func(p percentiles) float64 { return ms(p.p50) }),
		spreadOf(runs, func(p percentiles) float64 { return ms(p.p99) })
}

// openMany opens n idle PTY shells through t with workers in parallel,
// person i for the i-th.
func openMany(t target, n, workers int) ([]*shell, error) {
	shells := make([]*shell, n)
	err := inParallel(n, workers, func(i int) error {
		c, err := t.dial(i)
		if err != nil {
			return err
		}
		if shells[i], err = openShell(c, t.command); err != nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		closeAll(shells)
		return nil, fmt.Errorf("session %w", err)
	}
	return shells, nil
}

// dialMany opens n idle connections to t (no channel), with workers
// dialling in parallel.
func dialMany(t target, n, workers int) ([]*ssh.Client, error) {
	conns := make([]*ssh.Client, n)
	err := inParallel(n, workers, func(i int) (err error) {
		conns[i], err = t.dial(i)
		return err
	})
	if err != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		return nil, fmt.Errorf("connection %w", err)
	}
	return conns, nil
}

// inParallel calls f(0)…f(n-1) from workers goroutines and returns the
// first error ("I: err"); after an error no new call starts.
func inParallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				if err := f(i); err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("%d: %w", i, err))
					return
				}
			}
		})
	}
	wg.Wait()
	err, _ := firstErr.Load().(error)
	return err
}

func closeAll(shells []*shell) {
	var wg sync.WaitGroup
	for _, sh := range shells {
		if sh != nil {
			wg.Go(sh.close)
		}
	}
	wg.Wait()
}

// costs says what moving the bytes cost the endpoint process.
func (x transfer) costs() string {
	r, w := x.callsPerMiB()
	return fmt.Sprintf("%.2f ns/byte, %.1f reads and %.1f writes per MiB", x.nsPerByte(), r, w)
}

// bulkFigures adds the bulk figures of one direction from each turn's
// runs (one hop, the gateway with recording on and off, the naive bridge,
// the gateway with floorRecorders and, with sshd, OpenSSH direct, ssh -J
// and ssh -J with OpenSSH's default cipher). Each figure is the median
// run, with the spread over runs; the targets are the peers': the
// gateway, recording, at or above ssh -J with the same cipher, and the
// relay alone at most 1.05 of the naive bridge's CPU per byte.
func (r *results) bulkFigures(cfg config, dirName string, runs [][]transfer, withSSH bool, sshSkip string) {
	mbps := func(k int) spread { return spreadOf(runs[k], transfer.mbps) }
	nspb := func(k int) spread { return spreadOf(runs[k], transfer.nsPerByte) }
	const oneHop, viaGW, viaOff, bridge, viaFloor, direct, jump, jumpDefault = 0, 1, 2, 3, 4, 5, 6, 7
	via, off := medianTransfer(runs[viaGW]), medianTransfer(runs[viaOff])
	if withSSH {
		r.add(figure{Name: "bulk " + dirName + ", through gateway (recording on) vs OpenSSH ssh -J", Value: mbps(viaGW).median,
			Spread: mbps(viaGW).String(), Unit: "MB/s", Baseline: "ssh -J", BaselineValue: mbps(jump).median,
			BaselineSpread: mbps(jump).String(), Target: ">= 1.0",
			Note: fmt.Sprintf("%s of log lines; the Go paths' cipher (%s) for both, taking turns; each ssh run's set-up (ssh HOST true) taken off, as the Go paths time from their session's start", sizeString(cfg.bulk), matchedCipher)})
	} else {
		r.add(figure{Name: "bulk " + dirName + ", through gateway vs OpenSSH ssh -J", Target: ">= 1.0", Skipped: true, Note: "skipped: " + sshSkip})
	}
	r.add(figure{Name: "relay CPU per byte, " + dirName + ", recording off, vs the naive bridge", Value: nspb(viaOff).median,
		Spread: nspb(viaOff).String(), Unit: "ns/B", Baseline: "naive bridge", BaselineValue: nspb(bridge).median,
		BaselineSpread: nspb(bridge).String(), Target: "<= 1.05", Lower: true,
		Note: fmt.Sprintf("the gateway with NopRecorders (%.0f MB/s) against x/crypto/ssh relaying with io.Copy, no login factors, no recording; getrusage of each process, utime+stime", off.mbps())})
	r.add(figure{Name: "gateway CPU per byte, " + dirName + ", recording on (reference)", Value: nspb(viaGW).median, Spread: nspb(viaGW).String(),
		Unit: "ns/B", Baseline: "one-hop endpoint", BaselineValue: nspb(oneHop).median, BaselineSpread: nspb(oneHop).String(), Lower: true,
		Note: fmt.Sprintf("recording adds %.2f ns/B to the relay", via.nsPerByte()-off.nsPerByte())})
	r.add(figure{Name: "bulk " + dirName + ", through gateway (recording on) vs one hop (reference)", Value: mbps(viaGW).median,
		Spread: mbps(viaGW).String(), Unit: "MB/s", Baseline: "one-hop Go SSH", BaselineValue: mbps(oneHop).median, BaselineSpread: mbps(oneHop).String()})
	if withSSH {
		// The floors of the bulk target, against the same ssh -J runs: a
		// Go relay that ends SSH on both hops and records nothing (ours
		// and the naive one), and ours with a recorder that only encrypts
		// and hashes, as any recording must.
		r.add(figure{Name: "bulk " + dirName + ", through gateway, recording off (reference: the relay without the recording)", Value: mbps(viaOff).median,
			Spread: mbps(viaOff).String(), Unit: "MB/s", Baseline: "ssh -J", BaselineValue: mbps(jump).median, BaselineSpread: mbps(jump).String(),
			Note: fmt.Sprintf("the gateway with NopRecorders; with recording on it reads %.2f of this", mbps(viaGW).median/mbps(viaOff).median)})
		r.add(figure{Name: "bulk " + dirName + ", naive two-hop bridge (reference)", Value: mbps(bridge).median, Spread: mbps(bridge).String(),
			Unit: "MB/s", Baseline: "ssh -J", BaselineValue: mbps(jump).median, BaselineSpread: mbps(jump).String(),
			Note: "x/crypto/ssh on both hops and io.Copy, no login factors, no recording"})
		r.add(figure{Name: "bulk " + dirName + ", through gateway, recording only encrypted and hashed (reference: the floor of any recording)", Value: mbps(viaFloor).median,
			Spread: mbps(viaFloor).String(), Unit: "MB/s", Baseline: "ssh -J", BaselineValue: mbps(jump).median, BaselineSpread: mbps(jump).String(),
			Note: fmt.Sprintf("the gateway whose recorder only encrypts each byte (AES-256-CTR) and takes it into a SHA-256, as every recording must, and writes nothing; with rr's recorder it reads %.2f of this", mbps(viaGW).median/mbps(viaFloor).median)})
		r.add(figure{Name: "bulk " + dirName + ", ssh -J with OpenSSH's default cipher (reference)", Value: mbps(viaGW).median,
			Spread: mbps(viaGW).String(), Unit: "MB/s", Baseline: "ssh -J, its default cipher", BaselineValue: mbps(jumpDefault).median,
			BaselineSpread: mbps(jumpDefault).String(), Note: "set-up taken off the same way"})
		r.add(figure{Name: "bulk " + dirName + ", OpenSSH direct (reference)", Value: mbps(direct).median, Spread: mbps(direct).String(),
			Unit: "MB/s", Baseline: "one-hop Go SSH", BaselineValue: mbps(oneHop).median, BaselineSpread: mbps(oneHop).String(),
			Note: matchedCipher + ", set-up taken off"})
	} else {
		r.add(figure{Name: "bulk " + dirName + ", naive two-hop bridge (reference)", Value: mbps(bridge).median, Spread: mbps(bridge).String(),
			Unit: "MB/s", Baseline: "one-hop Go SSH", BaselineValue: mbps(oneHop).median, BaselineSpread: mbps(oneHop).String()})
		r.add(figure{Name: "bulk " + dirName + ", through gateway, recording only encrypted and hashed (reference: the floor of any recording)", Value: mbps(viaFloor).median,
			Spread: mbps(viaFloor).String(), Unit: "MB/s", Baseline: "through gateway (recording on)", BaselineValue: mbps(viaGW).median, BaselineSpread: mbps(viaGW).String()})
	}
}
