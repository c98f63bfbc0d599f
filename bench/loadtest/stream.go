package loadtest

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// genStream is the deterministic byte stream of seed: what a cat session
// sends, so that neither side has to keep it.
func genStream(seed uint64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	binary.LittleEndian.PutUint64(s[8:], 0x72722d6c6f6164) // "rr-load"
	return rand.NewChaCha8(s)
}

// Ref is one direction of a session as its client saw it: either the
// first Len bytes of genStream(Seed), or Bytes.
type Ref struct {
	Seed  uint64
	Bytes []byte // when set, the stream itself
	Len   int64
}

func (r Ref) reader() io.Reader {
	if r.Bytes != nil {
		return bytes.NewReader(r.Bytes)
	}
	return io.LimitReader(genStream(r.Seed), r.Len)
}

// Matcher compares what is written to it with a reference stream, in
// order, without keeping either.
type Matcher struct {
	ref      io.Reader
	ahead    []byte // read from ref, not yet compared
	N        int64  // bytes written
	Common   int64  // length of the common prefix of what was written and the reference
	diverged bool
}

// NewMatcher returns a Matcher against r.
func NewMatcher(r Ref) *Matcher { return &Matcher{ref: r.reader()} }

// fill reads the reference until k bytes are ahead (or it ends).
func (m *Matcher) fill(k int) {
	for len(m.ahead) < k {
		buf := make([]byte, k-len(m.ahead))
		n, err := io.ReadFull(m.ref, buf)
		m.ahead = append(m.ahead, buf[:n]...)
		if err != nil {
			return
		}
	}
}

// Write compares p with the next len(p) bytes of the reference.
func (m *Matcher) Write(p []byte) (int, error) {
	n := len(p)
	m.N += int64(n)
	for len(p) > 0 && !m.diverged {
		k := min(len(p), 32<<10)
		m.fill(k)
		got := min(k, len(m.ahead))
		i := 0
		for i < got && m.ahead[i] == p[i] {
			i++
		}
		m.Common += int64(i)
		if i < k {
			m.diverged = true
		}
		m.ahead = m.ahead[got:]
		p = p[k:]
	}
	return n, nil
}

// Compare is one direction of a recording against its client's view.
type Compare struct {
	Recorded int64 `json:"recorded"` // bytes in the recording
	Client   int64 `json:"client"`   // bytes the client sent or received
	Common   int64 `json:"common"`   // common prefix
}

func compareOf(m *Matcher, ref Ref) Compare {
	return Compare{Recorded: m.N, Client: ref.Len, Common: m.Common}
}

// Identical: the recording holds exactly what the client saw.
func (c Compare) Identical() bool { return c.Common == c.Recorded && c.Common == c.Client }

// Prefix: one is a prefix of the other (a cut recording, or bytes in
// flight when a connection died).
func (c Compare) Prefix() bool { return c.Common == min(c.Recorded, c.Client) }

// Lost is what the client saw that the recording lacks; Extra what the
// recording holds beyond the common prefix.
func (c Compare) Lost() int64  { return c.Client - c.Common }
func (c Compare) Extra() int64 { return c.Recorded - c.Common }

// watchBuffer keeps what is written and lets a reader wait for a string.
type watchBuffer struct {
	mu      sync.Mutex
	buf     []byte
	changed chan struct{}
}

func newWatchBuffer() *watchBuffer { return &watchBuffer{changed: make(chan struct{})} }

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf = append(w.buf, p...)
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
	return len(p), nil
}

func (w *watchBuffer) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf)
}

// waitFor waits until s appears at or after from, until timeout or dead
// is closed; it returns where s ends, or -1.
func (w *watchBuffer) waitFor(s string, from int, timeout time.Duration, dead <-chan struct{}) int {
	t := time.NewTimer(timeout)
	defer t.Stop()
	final := false
	for {
		w.mu.Lock()
		if i := bytes.Index(w.buf[min(from, len(w.buf)):], []byte(s)); i >= 0 {
			end := min(from, len(w.buf)) + i + len(s)
			w.mu.Unlock()
			return end
		}
		ch := w.changed
		w.mu.Unlock()
		if final {
			return -1
		}
		select {
		case <-ch:
		case <-dead:
			final = true // look once more: the last bytes may have just come
			dead = nil
		case <-t.C:
			return -1
		}
	}
}
