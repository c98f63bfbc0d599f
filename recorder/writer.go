package recorder

import (
	"bufio"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// Writer writes one recording. Its methods are safe for concurrent use;
// the byte slices given are not kept.
type Writer struct {
	mu     sync.Mutex
	bw     *bufio.Writer
	gz     *storedGzip
	stream cipher.Stream
	buf    []byte    // the event being built, then encrypted in place
	carry  [2][]byte // per direction: an incomplete UTF-8 sequence held over
	join   []byte    // carry + chunk, when there is a carry
	start  time.Time
	now    func() time.Time
	dirty  bool // written since the last flush
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
	if now == nil {
		now = time.Now
	}
	var salt [saltLen]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, err
	}
	stream, err := newStream(passphrase, salt[:])
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(dst, 32<<10)
	gz, err := newStoredGzip(bw)
	if err != nil {
		return nil, err
	}
	w := &Writer{bw: bw, gz: gz, stream: stream, now: now, start: now(), buf: make([]byte, 0, 4<<10)}
	h.Version = 2
	if h.Timestamp == 0 {
		h.Timestamp = w.start.Unix()
	}
	line, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if _, err := gz.Write(append([]byte(saltMagic), salt[:]...)); err != nil {
		return nil, err
	}
	line = append(line, '\n')
	stream.XORKeyStream(line, line)
	if _, err := gz.Write(line); err != nil {
		return nil, err
	}
	if err := w.flushLocked(); err != nil {
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
	if c := w.carry[dir]; len(c) > 0 {
		w.join = append(append(w.join[:0], c...), p...)
		p = w.join
		w.carry[dir] = c[:0]
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

// writeData writes one "o"/"i" event (and its exact-bytes twin if p is
// not valid UTF-8).
func (w *Writer) writeData(dir int, p []byte) error {
	t := w.elapsed()
	b := append(w.buf[:0], '[')
	b = appendTime(b, t)
	b = append(b, `, "`...)
	b = append(b, codes[dir][0]...)
	b = append(b, `", "`...)
	b, valid := appendString(b, p)
	b = append(b, "\"]\n"...)
	if !valid {
		b = append(b, '[')
		b = appendTime(b, t)
		b = append(b, `, "`...)
		b = append(b, codes[dir][1]...)
		b = append(b, `", "`...)
		b = base64.StdEncoding.AppendEncode(b, p)
		b = append(b, "\"]\n"...)
	}
	w.buf = b
	return w.emit(b)
}

// Resize records a terminal size change and flushes.
func (w *Writer) Resize(cols, rows uint32) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	b := append(w.buf[:0], '[')
	b = appendTime(b, w.elapsed())
	b = fmt.Appendf(b, `, "r", "%dx%d"]`+"\n", cols, rows)
	w.buf = b
	if err := w.emit(b); err != nil {
		return err
	}
	return w.flushLocked()
}

// Flush pushes every event so far to the destination, if anything was
// written since the last flush.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || !w.dirty {
		return w.err
	}
	return w.flushLocked()
}

// Close writes the closing event, ends the gzip stream and flushes. It
// does not close the destination.
func (w *Writer) Close(end End) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err == nil {
		for dir, c := range w.carry {
			if len(c) > 0 {
				w.writeData(dir, c) // an incomplete sequence at the very end
				w.carry[dir] = nil
			}
		}
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	payload, err := json.Marshal(end)
	if err != nil {
		return err
	}
	b := append(w.buf[:0], '[')
	b = appendTime(b, w.elapsed())
	b = append(b, `, "x", "`...)
	b, _ = appendString(b, payload)
	b = append(b, "\"]\n"...)
	if err := w.emit(b); err != nil {
		return err
	}
	if err := w.gz.Close(); err != nil {
		w.err = err
		return err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = err
		return err
	}
	return nil
}

func (w *Writer) usable() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

func (w *Writer) elapsed() float64 { return w.now().Sub(w.start).Seconds() }

// emit encrypts b in place and hands it to gzip.
func (w *Writer) emit(b []byte) error {
	w.stream.XORKeyStream(b, b)
	if _, err := w.gz.Write(b); err != nil {
		w.err = fmt.Errorf("recorder: write: %w", err)
		return w.err
	}
	w.dirty = true
	return nil
}

func (w *Writer) flushLocked() error {
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("recorder: flush: %w", err)
		return w.err
	}
	w.dirty = false
	return nil
}
