package recorder

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Event is one recorded event. For "o" and "i", Data holds the exact bytes
// (from the "ob"/"ib" twin when there was one); for "r" the size
// ("COLSxROWS"); for "x" the End JSON.
type Event struct {
	Time float64
	Code string
	Data []byte

	lossy bool // its line holds U+FFFD as it is: bytes that were not valid UTF-8
}

// Reader reads a recording.
type Reader struct {
	hdr     Header
	lines   *bufio.Reader
	pending *Event // read ahead, looking for an exact-bytes twin
	pendErr error  // the read ahead's error, for the next call
	ended   bool   // the "x" event was read
	tail    error  // after it: io.EOF, or ErrTruncated if the file ends badly
	End     *End   // set once the "x" event is read
}

// NewReader opens a recording: it checks the gzip and OpenSSL headers and
// decrypts and parses the header line. A header that does not parse means
// a wrong passphrase (ErrWrongPassphrase).
func NewReader(r io.Reader, passphrase string) (*Reader, error) {
	plain, err := Plaintext(r, passphrase)
	if err != nil {
		return nil, err
	}
	return newPlainReader(plain)
}

// newPlainReader reads a recording's decrypted asciicast.
func newPlainReader(plain io.Reader) (*Reader, error) {
	rd := &Reader{lines: bufio.NewReaderSize(plain, 64<<10)}
	line, err := rd.lines.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return nil, ErrTruncated
	}
	if rd.hdr, err = ParseHeader(line); err != nil {
		return nil, err
	}
	return rd, nil
}

// ParseHeader parses a recording's first line, decrypted. A line that is
// not an asciicast v2 header means a wrong passphrase (ErrWrongPassphrase):
// the format has no other check. A line cut short (no newline) that begins
// as every header the Writer writes does is a file cut inside its header
// (ErrTruncated).
func ParseHeader(line []byte) (Header, error) {
	var h Header
	if json.Unmarshal(line, &h) != nil || h.Version != 2 {
		if n := min(len(line), len(headerStart)); n > 0 && !bytes.HasSuffix(line, []byte("\n")) &&
			string(line[:n]) == headerStart[:n] {
			return Header{}, ErrTruncated
		}
		return Header{}, ErrWrongPassphrase
	}
	return h, nil
}

// headerStart is how every header the Writer writes begins (json.Marshal
// of Header).
const headerStart = `{"version":2,`

// Plaintext returns the decrypted asciicast of a recording: exactly what
// gzip -dc | openssl enc -d -aes-256-ctr -pbkdf2 prints. It does not check
// the passphrase (NewReader does); a cut file's reader ends in an error
// after its prefix.
func Plaintext(r io.Reader, passphrase string) (io.Reader, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, ErrNotRecording
	}
	var head [len(saltMagic) + saltLen]byte
	if _, err := io.ReadFull(gz, head[:]); err != nil || string(head[:len(saltMagic)]) != saltMagic {
		return nil, ErrNotRecording
	}
	stream, err := newStream(passphrase, head[len(saltMagic):])
	if err != nil {
		return nil, err
	}
	return cipher.StreamReader{S: stream, R: gz}, nil
}

// Header returns the recording's header.
func (r *Reader) Header() Header { return r.hdr }

// Next returns the next event; io.EOF after the closing event, or
// ErrTruncated where the file was cut before it.
func (r *Reader) Next() (Event, error) {
	ev, err := r.pending, r.pendErr
	r.pending, r.pendErr = nil, nil
	if err != nil {
		return Event{}, err
	}
	if ev == nil {
		if ev, err = r.read(); err != nil {
			return Event{}, err
		}
	}
	switch ev.Code {
	case "ob", "ib":
		// Exact bytes with no text event before them: a chunk of binary
		// data (see isBinary).
		ev.Code = ev.Code[:1]
		return *ev, nil
	case "o", "i":
		if !ev.lossy {
			return *ev, nil // its text is its bytes, and it has no twin
		}
		// Bytes that were not valid UTF-8: the exact-bytes twin follows.
		next, err := r.read()
		switch {
		case err == nil && next.Code == ev.Code+"b":
			ev.Data = next.Data
		case err == nil:
			r.pending = next
		case errors.Is(err, ErrTruncated) || errors.Is(err, ErrDamaged):
			// The file ends here, maybe between this event and the exact
			// bytes it stands for: its text is not known to be exact, so
			// it is not part of the prefix given back. (A real U+FFFD is
			// written \ufffd, so an event with none written as it is is
			// exact; files from before that rule lose such an event at a
			// cut.)
			return Event{}, err
		default:
			r.pendErr = err // returned by the next call
		}
	}
	return *ev, nil
}

// cutOrDamaged names why the decrypted stream ended early: damaged when
// gzip's checksum says the bytes are not the ones written, else cut.
func cutOrDamaged(err error) error {
	if errors.Is(err, gzip.ErrChecksum) {
		return ErrDamaged
	}
	return ErrTruncated
}

func (r *Reader) read() (*Event, error) {
	if r.ended {
		// The file must end cleanly after the closing event: a file that
		// lost its gzip trailer holds the whole session but is still cut.
		if r.tail == nil {
			r.tail = io.EOF
			if _, err := io.Copy(io.Discard, r.lines); err != nil {
				r.tail = cutOrDamaged(err)
			}
		}
		return nil, r.tail
	}
	line, err := r.lines.ReadBytes('\n')
	if err != nil {
		return nil, cutOrDamaged(err) // a torn line, gzip cut short, or no closing event
	}
	var raw [3]json.RawMessage
	var t float64
	var code, data string
	if json.Unmarshal(line, &raw) != nil || json.Unmarshal(raw[0], &t) != nil ||
		json.Unmarshal(raw[1], &code) != nil || json.Unmarshal(raw[2], &data) != nil {
		return nil, fmt.Errorf("recorder: bad event line %q", bytes.TrimSpace(line))
	}
	ev := &Event{Time: t, Code: code, Data: []byte(data), lossy: bytes.Contains(line, []byte("\xef\xbf\xbd"))}
	switch code {
	case "ob", "ib":
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, fmt.Errorf("recorder: bad %s event: %w", code, err)
		}
		ev.Data = b
	case "x":
		r.ended = true
		var end End
		if json.Unmarshal(ev.Data, &end) == nil {
			r.End = &end
		}
	}
	return ev, nil
}
