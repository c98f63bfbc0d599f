package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// errWatcherDropped is a watched run whose watcher fell more than its
// buffer behind and was dropped, as the gateway drops a slow watcher: the
// session's own transfer still counts, and the figure says how often.
var errWatcherDropped = errors.New("the watcher was dropped")

// watchBulkMax bounds the watched bulk: on two shared cores the watcher's
// client, decrypting a second copy of the stream, falls behind over a
// gigabyte and is dropped (by design), which says nothing more.
const watchBulkMax = 256 << 20

// watchFigures: what watching a live session costs the person watched.
// Bulk host→person through the gateway (recording on) with one watcher
// following the session and reading, against the same session with
// nobody watching, taking turns; and how far the watcher's screen lags
// behind the person's, keystroke by keystroke.
func (r *results) watchFigures(cfg config, dir string) error {
	gw, ag, err := startStack(dir, 2, true, recordSpool, cfg.shell)
	if err != nil {
		return err
	}
	defer gw.stop()
	defer ag.stop()
	t := target{name: "gateway", addr: gw.ready["people"], hostKey: signer(gatewayKeyName).PublicKey(), gateway: true, proc: gw}
	spool := gw.ready["spool"]
	if cfg.bulk > 0 {
		size := min(cfg.bulk, watchBulkMax)
		var alone, watched []transfer
		drops := 0
		for i := 0; i < max(cfg.bulkRuns, 1); i++ {
			for _, w := range []bool{false, true} {
				logf("bulk host→person, %d bytes, through the gateway, watched %v (run %d)", size, w, i+1)
				x, err := watchedBulk(t, size, w)
				clearSpool(spool)
				if errors.Is(err, errWatcherDropped) {
					logf("  %v", err)
					drops++
					err = nil
				}
				if err != nil {
					return err
				}
				logf("  %.0f MB/s", x.mbps())
				if w {
					watched = append(watched, x)
				} else {
					alone = append(alone, x)
				}
			}
		}
		a, w := medianTransfer(alone), medianTransfer(watched)
		r.add(figure{Name: "bulk host→person, watched by one watcher (reading)", Value: w.mbps(), Unit: "MB/s",
			Spread: spreadOf(watched, transfer.mbps).String(), Baseline: "the same session unwatched", BaselineValue: a.mbps(),
			BaselineSpread: spreadOf(alone, transfer.mbps).String(), Target: ">= 0.9",
			Note: fmt.Sprintf("%s of log lines, recording on; the gateway's CPU %.2f ns/B watched, %.2f unwatched; the watcher too slow and dropped in %d of %d runs",
				sizeString(size), w.nsPerByte(), a.nsPerByte(), drops, len(watched))})
	}
	if cfg.keystrokes > 0 {
		logf("watch lag: %d keystrokes, the watcher behind the person", cfg.keystrokes)
		lag, person, err := watchLag(t, cfg.keystrokes)
		if err != nil {
			return err
		}
		r.add(figure{Name: "watcher behind the person, p99", Value: us(lag.p99), Unit: "µs",
			Baseline: "the person's keystroke echo p99", BaselineValue: us(person.p99), Lower: true,
			Note: fmt.Sprintf("p50 %.0f µs behind (the person's echo p50 %.0f µs): when a byte reaches the watcher's client after it reached the person's", us(lag.p50), us(person.p50))})
	}
	return nil
}

// liveSession returns the id of the one live session, from the console
// of person 1 (key login, no host).
func liveSession(t target) (string, error) {
	c, err := t.dialUser(1, personName(1))
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	if err := s.RequestSubsystem("rr-admin"); err != nil {
		return "", err
	}
	io.WriteString(in, "sessions --live --json\n")
	in.Close()
	b, _ := io.ReadAll(out)
	var xs []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &xs); err != nil || len(xs) != 1 {
		return "", fmt.Errorf("live sessions: %v %q", err, b)
	}
	return xs[0].ID, nil
}

// watcher is person 1 watching session id with ssh -t GW watch:ID: its
// output, after the replay, goes to onData.
type watcher struct {
	c    *ssh.Client
	s    *ssh.Session
	done chan struct{}
}

func startWatcher(t target, id string, onData func([]byte)) (*watcher, error) {
	c, err := t.dialUser(1, personName(1))
	if err != nil {
		return nil, err
	}
	s, err := c.NewSession()
	if err != nil {
		c.Close()
		return nil, err
	}
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	errp, _ := s.StderrPipe()
	w := &watcher{c: c, s: s, done: make(chan struct{})}
	fail := func(err error) (*watcher, error) { s.Close(); c.Close(); return nil, err }
	if err := s.RequestPty("xterm", 40, 120, nil); err != nil {
		return fail(err)
	}
	if err := s.Start("watch:" + id); err != nil {
		return fail(err)
	}
	if err := readPast(bufio.NewReader(errp), "Passphrase for "+sessionHost+":"); err != nil {
		return fail(err)
	}
	go io.Copy(io.Discard, errp)
	io.WriteString(in, passphrase+"\r")
	br := bufio.NewReaderSize(out, 64<<10)
	if err := readPast(br, "q or Ctrl-C stops"); err != nil {
		return fail(err)
	}
	go func() {
		defer close(w.done)
		buf := make([]byte, 64<<10)
		for {
			n, err := br.Read(buf)
			if n > 0 {
				onData(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	return w, nil
}

func (w *watcher) stop() {
	w.s.Close()
	w.c.Close()
	<-w.done
}

// readPast reads r until want has gone by (30 s at most).
func readPast(r *bufio.Reader, want string) error {
	got := make(chan error, 1)
	go func() {
		var seen []byte
		for !strings.Contains(string(seen), want) {
			b, err := r.ReadByte()
			if err != nil {
				got <- fmt.Errorf("waiting for %q: %w after %q", want, err, seen)
				return
			}
			seen = append(seen, b)
		}
		got <- nil
	}()
	select {
	case err := <-got:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no %q in 30 s", want)
	}
}

// watchedBulk is bulk host→person on an exec session that waits for a
// line before it starts; when watched, person 1 watches it first, reading
// everything.
func watchedBulk(t target, size int64, watched bool) (transfer, error) {
	s, end, err := bulkSession(t)
	if err != nil {
		return transfer{}, err
	}
	defer end()
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	line := logLine[:len(logLine)-1]
	if err := s.Start(fmt.Sprintf("echo started; read go; yes '%s' | head -c %d", line, size)); err != nil {
		return transfer{}, err
	}
	br := bufio.NewReaderSize(out, 64<<10)
	if l, err := br.ReadString('\n'); err != nil || l != "started\n" {
		return transfer{}, fmt.Errorf("session start: %q %v", l, err)
	}
	var seen atomic.Int64
	var w *watcher
	if watched {
		id, err := liveSession(t)
		if err != nil {
			return transfer{}, err
		}
		w, err = startWatcher(t, id, func(p []byte) { seen.Add(int64(len(p))) })
		if err != nil {
			return transfer{}, err
		}
		defer w.stop()
	}
	before, err := t.proc.stats(false)
	if err != nil {
		return transfer{}, err
	}
	t0 := time.Now()
	io.WriteString(in, "go\n")
	n, err := io.Copy(io.Discard, br)
	if err != nil {
		return transfer{}, err
	}
	if err := s.Wait(); err != nil {
		return transfer{}, fmt.Errorf("watched bulk: %w", err)
	}
	el := time.Since(t0)
	after, err := t.proc.stats(false)
	if err != nil {
		return transfer{}, err
	}
	if n != size {
		return transfer{}, fmt.Errorf("watched bulk: moved %d bytes of %d", n, size)
	}
	if watched {
		select { // the watcher's ssh ends with the session, once it has it all
		case <-w.done:
		case <-time.After(30 * time.Second):
		}
	}
	if watched && seen.Load() < size {
		return transfer{bytes: n, elapsed: el, cpuNs: after.CPUNs - before.CPUNs},
			fmt.Errorf("%w: it saw %d bytes of %d", errWatcherDropped, seen.Load(), size)
	}
	return transfer{bytes: n, elapsed: el, cpuNs: after.CPUNs - before.CPUNs}, nil
}

// watchLag types n keystrokes (alternately "x" and DEL, as keystrokes
// does) in person 0's shell while person 1 watches it, and returns how
// long after the person's client each echo reached the watcher's, and the
// person's own echo times.
func watchLag(t target, n int) (lag, person percentiles, err error) {
	c, err := t.dial(0)
	if err != nil {
		return lag, person, err
	}
	sh, err := openShell(c, t.command)
	if err != nil {
		c.Close()
		return lag, person, err
	}
	defer sh.close()
	sh.quiet(300 * time.Millisecond)
	id, err := liveSession(t)
	if err != nil {
		return lag, person, err
	}
	arrived := make(chan int, 1024)
	w, err := startWatcher(t, id, func(p []byte) { arrived <- len(p) })
	if err != nil {
		return lag, person, err
	}
	defer w.stop()
	drain := func(d time.Duration) {
		for {
			select {
			case <-arrived:
			case <-time.After(d):
				return
			}
		}
	}
	sh.quiet(300 * time.Millisecond) // the "is watching" notice
	drain(300 * time.Millisecond)    // the replay
	lags, echoes := make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	for i := range n {
		p, want := []byte("x"), 1
		if i%2 == 1 {
			p, want = []byte{0x7f}, 3
		}
		d, err := sh.roundTrip(p, want)
		if err != nil {
			return lag, person, err
		}
		personAt := time.Now()
		for got := 0; got < want; {
			select {
			case m := <-arrived:
				got += m
			case <-time.After(10 * time.Second):
				return lag, person, errors.New("the watcher saw no echo in 10 s")
			}
		}
		lags = append(lags, max(0, time.Since(personAt)))
		echoes = append(echoes, d)
	}
	return pct(lags), pct(echoes), nil
}
