package recorder

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// Header is a recording's first line: asciicast v2's fields and rr's.
type Header struct {
	Version   int               `json:"version"`
	Width     int               `json:"width"`
	Height    int               `json:"height"`
	Timestamp int64             `json:"timestamp"`
	Env       map[string]string `json:"env,omitempty"`
	Title     string            `json:"title,omitempty"`
	SessionID string            `json:"session_id"`
	Host      string            `json:"host"`
	Person    string            `json:"person"`
	Team      string            `json:"team,omitempty"`
	Command   string            `json:"command,omitempty"`
	PTY       bool              `json:"pty"`
	Gateway   string            `json:"gateway,omitempty"`
	// Event and EventRule name the security event the session was opened
	// from (extra keys: asciicast players ignore them).
	Event     string `json:"event,omitempty"`
	EventRule string `json:"event_rule,omitempty"`
	// Client names the client when it was not an SSH one ("rr web
	// console").
	Client string `json:"client,omitempty"`
}

// End is how a session ended: the last event's payload.
type End struct {
	Reason     string `json:"reason"`
	ExitStatus *int   `json:"exit_status,omitempty"`
	Signal     string `json:"signal,omitempty"`
	KilledBy   string `json:"killed_by,omitempty"`
}

// ErrClosed is returned by a Writer's methods after Close.
var ErrClosed = errors.New("recorder: recording closed")

// blockSize is the size of a Writer's block buffer, header included: what
// a busy recording holds, and the most it hands its destination at once.
const blockSize = 32 << 10

// blockPool holds block buffers between uses: a recording gives its block
// back at a Flush that finds nothing new since the previous one, so a
// quiet session holds no block.
var blockPool = sync.Pool{New: func() any { return new([blockSize]byte) }}

// Writer writes one recording. Its methods are safe for concurrent use;
// the byte slices given are not kept.
//
// Events are written straight into the stored gzip block being built
// (blk), with no other buffer in between. The block is encrypted in one
// pass, added to the CRC and written when it is full, or on Flush, Resize
// and Close — so the destination sees exactly what a buffered writer
// flushed at those points would have given it, in fewer, larger blocks.
type Writer struct {
	mu     sync.Mutex
	dst    io.Writer
	gz     storedGzip
	stream cipher.Stream
	// blk is the block being built: blockHeaderLen bytes of header (filled
	// in when it is written), then its data; cap(blk) == blockSize.
	// blk[plain:] is plaintext still to encrypt; blk[blockHeaderLen:plain]
	// needs no encryption (the salt).
	blk    []byte
	plain  int
	carry  [2][]byte // per direction: an incomplete UTF-8 sequence held over
	join   []byte    // carry + chunk, when there is a carry
	start  time.Time
	now    func() time.Time // nil: time.Since(start), see elapsed
	err    error
	closed bool
}

const (
	dirOut = 0
	dirIn  = 1
)

// NewWriter starts a recording on dst keyed by passphrase: it writes and
// flushes the gzip and OpenSSL headers and h before returning, so that the
// file is decodable from the start. now is the clock (time.Now if nil).
func NewWriter(dst io.Writer, passphrase string, h Header, now func() time.Time) (*Writer, error) {
	if passphrase == "" {
		return nil, errors.New("recorder: empty passphrase")
	}
	start := time.Now()
	if now != nil {
		start = now()
	}
	var salt [saltLen]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, err
	}
	stream, err := newStream(passphrase, salt[:])
	if err != nil {
		return nil, err
	}
	w := &Writer{dst: dst, stream: stream, now: now, start: start}
	w.takeBlock()
	h.Version = 2
	h.Width, h.Height = min(max(h.Width, 0), maxSize), min(max(h.Height, 0), maxSize)
	if h.Timestamp == 0 {
		h.Timestamp = w.start.Unix()
	}
	line, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if _, err := dst.Write(gzipHeader); err != nil {
		return nil, err
	}
	w.blk = append(append(w.blk, saltMagic...), salt[:]...)
	w.plain = len(w.blk) // the salt goes out as it is
	w.appendRaw(string(line) + "\n")
	if err := w.writeBlock(); err != nil {
		return nil, err
	}
	return w, nil
}

// Output records bytes from the host to the person.
func (w *Writer) Output(p []byte) error { return w.data(dirOut, p) }

// Input records bytes from the person to the host.
func (w *Writer) Input(p []byte) error { return w.data(dirIn, p) }

var codes = [2][2]string{{"o", "ob"}, {"i", "ib"}}

func (w *Writer) data(dir int, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	w.takeBlock()
	// The other direction's held bytes go first: events stay in the order
	// the bytes came.
	if err := w.writeCarry(1 - dir); err != nil {
		return err
	}
	if c := w.carry[dir]; len(c) > 0 {
		// Kept while the session is busy (no allocation per chunk); the
		// quiet Flush that gives the block back drops it too.
		w.join = append(append(w.join[:0], c...), p...)
		p = w.join
		w.carry[dir] = c[:0]
	}
	if isBinary(p) {
		return w.writeExact(dir, p) // whole: no character to keep together
	}
	if n := incompleteTail(p); n > 0 {
		w.carry[dir] = append(w.carry[dir][:0], p[len(p)-n:]...)
		p = p[:len(p)-n]
		if len(p) == 0 {
			return nil
		}
	}
	return w.writeData(dir, p)
}

// writeCarry writes the bytes held over in direction dir (the start of a
// UTF-8 sequence a chunk ended in) as they are: an "o"/"i" event and its
// exact-bytes twin. A flush, a resize or the other direction's next chunk
// must not leave them behind or after what came later; the bytes that
// complete the sequence then come as an event of their own, and rr cat
// joins the exact pieces.
func (w *Writer) writeCarry(dir int) error {
	c := w.carry[dir]
	if len(c) == 0 {
		return nil
	}
	w.carry[dir] = c[:0]
	return w.writeData(dir, c)
}

// writeExact writes binary data as its "ob"/"ib" event alone.
func (w *Writer) writeExact(dir int, p []byte) error {
	var ts [32]byte
	return w.exactEvent(appendElapsed(ts[:0], w.elapsed()), codes[dir][1], p)
}

// exactEvent appends the event [t, "code", "p in base64"].
func (w *Writer) exactEvent(t []byte, code string, p []byte) error {
	w.beginEvent(t, code)
	if err := w.appendBase64(p); err != nil {
		return err
	}
	w.appendRaw("\"]\n")
	return w.err
}

// writeData writes one "o"/"i" event (and its exact-bytes twin if p is
// not valid UTF-8).
func (w *Writer) writeData(dir int, p []byte) error {
	var ts [32]byte
	t := appendElapsed(ts[:0], w.elapsed())
	w.beginEvent(t, codes[dir][0])
	valid, err := w.appendEscaped(p)
	if err != nil {
		return err
	}
	w.appendRaw("\"]\n")
	if !valid {
		return w.exactEvent(t, codes[dir][1], p)
	}
	return w.err
}

// beginEvent appends `[t, "code", "`.
func (w *Writer) beginEvent(t []byte, code string) {
	w.room(len(t) + len(code) + len(`[, "", "`))
	w.blk = append(w.blk, '[')
	w.blk = append(w.blk, t...)
	w.blk = append(w.blk, `, "`...)
	w.blk = append(w.blk, code...)
	w.blk = append(w.blk, `", "`...)
}

// appendEscaped appends p as a JSON string's body (see escape), across
// blocks as needed, and reports whether p was valid UTF-8.
func (w *Writer) appendEscaped(p []byte) (valid bool, err error) {
	valid = true
	for i := 0; ; {
		var d int
		d, i, valid = escape(w.blk[:blockSize], len(w.blk), p, i, valid)
		w.blk = w.blk[:d]
		if i == len(p) {
			return valid, nil
		}
		if err := w.writeBlock(); err != nil {
			return valid, err
		}
	}
}

// appendBase64 appends p in standard base64, across blocks as needed: the
// pieces but the last are whole 3-byte groups, so they join up into
// exactly p's encoding.
func (w *Writer) appendBase64(p []byte) error {
	for len(p) > 0 {
		k := min(len(p), (blockSize-len(w.blk))/4*3)
		if k == 0 {
			if err := w.writeBlock(); err != nil {
				return err
			}
			continue
		}
		n := len(w.blk)
		w.blk = w.blk[:n+base64.StdEncoding.EncodedLen(k)]
		encodeBase64(w.blk[n:], p[:k])
		p = p[k:]
	}
	return nil
}

// appendRaw appends s, across blocks as needed.
func (w *Writer) appendRaw(s string) {
	for {
		n := copy(w.blk[len(w.blk):blockSize], s)
		w.blk = w.blk[:len(w.blk)+n]
		if s = s[n:]; s == "" || w.writeBlock() != nil {
			return
		}
	}
}

// room makes sure the block has n bytes free (n is small), writing it
// out if not; a failure is left in w.err.
func (w *Writer) room(n int) {
	if blockSize-len(w.blk) < n {
		w.writeBlock()
	}
}

// maxSize is the largest terminal width or height written: players read
// them as 16-bit numbers (asciinema 3 fails on a larger one); an SSH
// client may send up to 2^32-1.
const maxSize = 65535

// Resize records a terminal size change and flushes.
func (w *Writer) Resize(cols, rows uint32) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	w.takeBlock()
	if err := errors.Join(w.writeCarry(dirOut), w.writeCarry(dirIn)); err != nil {
		return err
	}
	var b [64]byte
	e := append(b[:0], '[')
	e = appendElapsed(e, w.elapsed())
	e = append(e, `, "r", "`...)
	e = strconv.AppendUint(e, uint64(min(cols, maxSize)), 10)
	e = append(e, 'x')
	e = strconv.AppendUint(e, uint64(min(rows, maxSize)), 10)
	e = append(e, "\"]\n"...)
	w.room(len(e))
	w.blk = append(w.blk, e...)
	return w.writeBlock()
}

// Flush pushes every event so far to the destination, if anything was
// written since the last flush.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.err != nil {
		return w.err
	}
	if len(w.carry[dirOut])+len(w.carry[dirIn]) > 0 {
		// Held bytes are recorded bytes: they reach the file too.
		w.takeBlock()
		if err := errors.Join(w.writeCarry(dirOut), w.writeCarry(dirIn)); err != nil {
			return err
		}
	}
	if w.blk == nil {
		return nil
	}
	if len(w.blk) == blockHeaderLen {
		w.releaseBlock() // nothing since the last flush: quiet
		w.join = nil     // and no chunk-sized join buffer either
		return nil
	}
	return w.writeBlock()
}

// takeBlock makes sure there is a block to build events in.
func (w *Writer) takeBlock() {
	if w.blk == nil {
		w.blk = blockPool.Get().(*[blockSize]byte)[:blockHeaderLen]
	}
}

// releaseBlock gives the (empty) block back to the pool.
func (w *Writer) releaseBlock() {
	if w.blk != nil {
		blockPool.Put((*[blockSize]byte)(w.blk[:blockSize]))
		w.blk = nil
	}
}

// Close writes the closing event, ends the gzip stream and flushes. It
// does not close the destination.
func (w *Writer) Close(end End) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.takeBlock()
	defer w.releaseBlock()
	if w.err == nil {
		w.writeCarry(dirOut) // an incomplete sequence at the very end
		w.writeCarry(dirIn)
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	payload, err := json.Marshal(end)
	if err != nil {
		return err
	}
	var ts [32]byte
	w.beginEvent(appendElapsed(ts[:0], w.elapsed()), "x")
	if _, err := w.appendEscaped(payload); err != nil {
		return err
	}
	w.appendRaw("\"]\n")
	if err := w.writeBlock(); err != nil {
		return err
	}
	t := w.gz.trailer()
	if _, err := w.dst.Write(t[:]); err != nil {
		w.err = fmt.Errorf("recorder: write: %w", err)
		return w.err
	}
	return nil
}

func (w *Writer) usable() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

// elapsed is the time since the recording started. With the real clock it
// is time.Since, which reads only the monotonic clock (time.Now reads the
// wall clock too, and that was half the cost of a keystroke's event);
// the result is the same, as Sub uses the monotonic readings.
func (w *Writer) elapsed() time.Duration {
	if w.now == nil {
		return time.Since(w.start)
	}
	return w.now().Sub(w.start)
}

// writeBlock encrypts the block's plaintext in place (one call over the
// whole of it: the keystream is fastest on big buffers), seals it and
// writes it to the destination, then starts the next block. An empty
// block is not written. A failure is kept in w.err: the recording is
// broken from then on.
func (w *Writer) writeBlock() error {
	if w.err != nil {
		// Broken: drop the block, so that callers appending after a
		// failure still find room in it.
		w.blk, w.plain = w.blk[:blockHeaderLen], blockHeaderLen
		return w.err
	}
	if len(w.blk) == blockHeaderLen {
		return nil
	}
	w.stream.XORKeyStream(w.blk[w.plain:], w.blk[w.plain:])
	w.gz.seal(w.blk)
	_, err := w.dst.Write(w.blk)
	w.blk, w.plain = w.blk[:blockHeaderLen], blockHeaderLen
	if err != nil {
		w.err = fmt.Errorf("recorder: write: %w", err)
	}
	return w.err
}
