package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// Watching a live session (issue 19): the hub each session carries, the
// ring of its recent output and its watchers' bounded buffers.
//
// The session's output pumps hand every chunk to offer, which copies it
// into the ring and into each watcher's buffer under the hub's lock and
// never waits on a watcher: one whose buffer would overflow is dropped
// there and then. Each watcher's own goroutine (follow) takes what is
// pending and writes it to the watcher's terminal at its own pace.
//
// The hub is what a watch attaches to on this gateway. A session held by
// another gateway (issue 16) would be followed through a gateway-to-
// gateway channel feeding a watcher of the same shape: attach there,
// pending bytes and an end here.

const (
	// ringMax bounds a session's replayable output.
	ringMax = 256 << 10
	// ringStart is the ring's size at the session's first output; it
	// doubles as output comes, up to ringMax. A session that printed a
	// prompt and went quiet holds ringStart bytes, not ringMax; one that
	// printed more holds its output so far, rounded up to a power of two
	// (at most ringMax), as the replay needs it.
	ringStart = 64
	// watcherMax bounds what one watcher may have pending: a watcher
	// further behind is dropped. A bulk transfer moves 1 MiB in a few
	// milliseconds, a scheduling hiccup on a busy machine: 4 MiB lets a
	// watcher who reads keep up (the benchmark drops one at 1 MiB).
	watcherMax = 4 << 20
	// maxWatchers bounds a session's watchers: each may hold watcherMax.
	maxWatchers = 16
)

// watchHub is a session's output as watchers see it. The zero value is
// ready: a session nobody watches holds no buffer until its first output.
type watchHub struct {
	mu         sync.Mutex
	ring       []byte // recent output, circular once full at ringMax; nil before the first output
	ringAt     int    // where the next byte goes
	ringFull   bool   // ring wrapped: output before it was lost
	cols, rows uint32
	watchers   []*watcher
	ended      string // how the session ended, once it has; no watcher attaches then
}

// watcher is one person following a session.
type watcher struct {
	name string
	wake chan struct{} // cap 1: something is pending
	// Under the hub's lock:
	pending []byte
	dropped bool   // too slow: pending overflowed, the hub let go of it
	ended   string // the session ended this way
}

// offer takes a chunk of the session's output: into the ring, and to each
// watcher (never blocking; one too far behind is dropped).
func (h *watchHub) offer(p []byte) {
	h.mu.Lock()
	if h.ended != "" {
		h.mu.Unlock()
		return // a straggler after the end
	}
	h.remember(p)
	for i := 0; i < len(h.watchers); {
		w := h.watchers[i]
		if len(w.pending)+len(p) > watcherMax {
			w.dropped = true
			h.remove(i)
			w.signal()
			continue
		}
		w.pending = append(w.pending, p...)
		w.signal()
		i++
	}
	h.mu.Unlock()
}

// remember appends p to the ring, growing it up to ringMax.
func (h *watchHub) remember(p []byte) {
	if len(p) >= ringMax {
		h.ring = append(h.ring[:0], p[len(p)-ringMax:]...)[:ringMax:ringMax]
		h.ringAt, h.ringFull = 0, true
		return
	}
	if !h.ringFull && h.ringAt+len(p) > len(h.ring) {
		if len(h.ring) < ringMax {
			size := max(ringStart, len(h.ring))
			for size < h.ringAt+len(p) && size < ringMax {
				size *= 2
			}
			size = min(size, ringMax)
			grown := make([]byte, size)
			copy(grown, h.ring[:h.ringAt])
			h.ring = grown
		}
	}
	n := copy(h.ring[h.ringAt:], p)
	if n < len(p) { // wraps
		h.ringFull = true
		h.ringAt = copy(h.ring, p[n:])
		return
	}
	h.ringAt += n
	if h.ringAt == len(h.ring) && len(h.ring) == ringMax {
		h.ringAt, h.ringFull = 0, true
	}
}

// recent returns the ring's content in order, and whether output before
// it was lost.
func (h *watchHub) recent() ([]byte, bool) {
	if !h.ringFull {
		return bytes.Clone(h.ring[:h.ringAt]), false
	}
	out := make([]byte, 0, len(h.ring))
	out = append(out, h.ring[h.ringAt:]...)
	return append(out, h.ring[:h.ringAt]...), true
}

// replayStart is where a replay of recent may start when output before it
// was lost: after the first line end or at the first escape sequence,
// whichever comes first, so that the watcher's terminal does not take
// the middle of a sequence for text. With no such boundary, the start.
func replayStart(recent []byte) int {
	i := bytes.IndexAny(recent, "\n\x1b")
	switch {
	case i < 0:
		return 0
	case recent[i] == '\n':
		return i + 1
	}
	return i
}

// resize tells the watchers the session's new window size, in line with
// the output around it.
func (h *watchHub) resize(cols, rows uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cols, h.rows = cols, rows
	if len(h.watchers) == 0 {
		return
	}
	seq := resizeSeq(cols, rows)
	for _, w := range h.watchers {
		w.pending = append(w.pending, seq...)
		w.signal()
	}
}

// resizeSeq is xterm's "resize the window" control sequence: terminals
// that allow it follow the session's size; the rest ignore it.
func resizeSeq(cols, rows uint32) []byte {
	if cols == 0 || rows == 0 {
		return nil
	}
	return []byte("\x1b[8;" + strconv.FormatUint(uint64(rows), 10) + ";" + strconv.FormatUint(uint64(cols), 10) + "t")
}

// attach adds a watcher named name, its buffer primed with the screen as
// it stands: for a terminal session a reset, the window size and the
// recent output from a boundary; for an exec session, its recent output.
// It fails once the session has ended.
func (h *watchHub) attach(name string, pty bool) (*watcher, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended != "" {
		return nil, errSessionEnded
	}
	if len(h.watchers) >= maxWatchers {
		return nil, errTooManyWatchers
	}
	recent, cut := h.recent()
	if cut {
		recent = recent[replayStart(recent):]
	}
	w := &watcher{name: name, wake: make(chan struct{}, 1)}
	if pty {
		w.pending = append(w.pending, "\x1bc"...) // RIS: a clean terminal
		w.pending = append(w.pending, resizeSeq(h.cols, h.rows)...)
	}
	w.pending = append(w.pending, recent...)
	w.signal()
	h.watchers = append(h.watchers, w)
	return w, nil
}

var (
	errSessionEnded    = errors.New("the session has ended")
	errTooManyWatchers = fmt.Errorf("the session has %d watchers already, the most it takes", maxWatchers)
)

// detach removes w (it stopped watching). It reports whether w was still
// attached: false when it had been dropped or the session had ended.
func (h *watchHub) detach(w *watcher) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.watchers {
		if x == w {
			h.remove(i)
			return true
		}
	}
	return false
}

func (h *watchHub) remove(i int) {
	last := len(h.watchers) - 1
	h.watchers[i] = h.watchers[last]
	h.watchers[last] = nil
	h.watchers = h.watchers[:last]
}

// names lists who watches now.
func (h *watchHub) names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.watchers))
	for _, w := range h.watchers {
		names = append(names, w.name)
	}
	return names
}

// end tells every watcher how the session ended and lets them go; no one
// attaches after it. The ring goes too.
func (h *watchHub) end(how string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = how
	for _, w := range h.watchers {
		w.ended = how
		w.signal()
	}
	h.watchers, h.ring = nil, nil
}

// take returns what is pending for w (handing spare back to fill next)
// and whether w was dropped or its session ended.
func (h *watchHub) take(w *watcher, spare []byte) (data []byte, dropped bool, ended string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	data, w.pending = w.pending, spare[:0]
	return data, w.dropped, w.ended
}

func (w *watcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}
