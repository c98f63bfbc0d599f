package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

const (
	// ringSize is how many of the most recent bytes an open file keeps, so
	// that slightly out-of-order reads are served from memory.
	ringSize = 1 << 20
	// maxSkip is how far ahead of the stream a read may land and still be
	// reached by reading forward rather than by re-opening.
	maxSkip = 4 << 20
	// maxEmptyReads is how many (0, nil) reads in a row mean a broken stream.
	maxEmptyReads = 100
	// maxResumes is how many times one fill re-opens a stream that broke
	// (a reset connection, an S3 GET cut short) where it broke, after
	// resumePause, then four times that, and so on.
	maxResumes = 3
)

// resumePause is the first pause before re-opening a broken stream (a
// variable for the tests).
var resumePause = 100 * time.Millisecond

// reader is an io.ReaderAt over one entry's stored bytes, safe for
// concurrent use. It keeps one sequential stream from Opener and a ring of
// the last bytes it read; a read behind the ring or more than maxSkip ahead of
// the stream re-opens the stream at the offset (at 0 when the offset is
// within maxSkip of it).
//
// start checks the whole file against Entry.Size and Entry.SHA256 before
// the first byte goes out: the format has no integrity of its own (AES-CTR
// turns a changed byte of the file into a changed byte of the session), so
// a recording changed at rest must not reach anyone's disk, not even its
// prefix. The read that returns the entry's last bytes checks again, with
// the SHA-256 of the stream when it has been read without a gap from
// offset 0 (a file changed during the download); otherwise start's check
// stands (without start, a separate sequential pass decides). A mismatch
// (ErrIntegrity) fails that read and every later one. Reads at or past
// Size return io.EOF (see atEnd).
type reader struct {
	ctx      context.Context
	open     Opener
	entry    Entry
	ringSize int
	maxSkip  int64

	mu         sync.Mutex
	ring       []byte        // allocated on first open
	rc         io.ReadCloser // nil when no stream is open
	pos        int64         // offset of rc's next byte
	lo         int64         // the ring holds [lo, pos)
	hash       hash.Hash     // SHA-256 of [0, pos) while continuous
	continuous bool          // rc was opened at 0 and read without a gap
	prechecked bool          // start verified the whole file (or this connection had)
	conn       *Conn         // nil in tests: start always verifies
	checked    bool          // verdict is final
	verdict    error         // nil, or wraps ErrIntegrity
	closed     bool
}

func newReader(ctx context.Context, open Opener, e Entry) *reader {
	return &reader{ctx: ctx, open: open, entry: e, ringSize: ringSize, maxSkip: maxSkip, hash: sha256.New()}
}

// ReadAt implements io.ReaderAt.
func (r *reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("download: negative offset %d", off)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return 0, os.ErrClosed
	case r.checked && r.verdict != nil:
		return 0, r.verdict
	}
	size := r.entry.Size
	if off >= size {
		return 0, r.atEnd()
	}
	end := min(off+int64(len(p)), size)
	if r.rc == nil || off < r.lo || off > r.pos+r.maxSkip {
		// Near the start, read forward from 0: the stream stays hashable.
		at := off
		if at <= r.maxSkip {
			at = 0
		}
		if err := r.seek(at); err != nil {
			return 0, err
		}
	}
	r.copyOut(p, off, off, min(end, r.pos))
	for r.pos < end {
		from := r.pos
		if err := r.fill(); err != nil {
			return 0, err
		}
		r.copyOut(p, off, max(from, off), min(r.pos, end))
	}
	n := int(end - off)
	if end < size {
		return n, nil
	}
	if err := r.verify(); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// atEnd answers a read at or past Size: io.EOF, unless verifying is cheap
// (the stream is near the end, or the file is empty) and fails. Concurrent
// SFTP reads past the end then report the mismatch too, and OpenSSH, which
// shows the last status it got, says "Failure" rather than "End of file".
func (r *reader) atEnd() error {
	size := r.entry.Size
	if !r.checked && (size == 0 || r.continuous && size-r.pos <= r.maxSkip) {
		for r.pos < size {
			if err := r.fill(); err != nil {
				return err
			}
		}
		if err := r.verify(); err != nil {
			return err
		}
	}
	return io.EOF
}

// start verifies the whole file (see reader), reading it as downloads do
// (a stream that breaks is resumed), then opens the stream at 0.
func (r *reader) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil && r.conn.checked(r.entry) {
		r.prechecked = true
		return r.seek(0)
	}
	if err := r.seek(0); err != nil {
		return err
	}
	for r.pos < r.entry.Size {
		if err := r.fill(); err != nil {
			return err
		}
	}
	if err := r.verifyStream(); err != nil {
		return r.fail(err)
	}
	r.prechecked = true
	if r.conn != nil {
		r.conn.passed(r.entry)
	}
	return r.seek(0)
}

// Close closes the stream; later reads fail.
func (r *reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.drop()
}

// seek (re-)opens the stream at off, with an empty ring. An open that
// fails is tried again like a broken stream (the file may just have moved
// from the spool to S3, which the next open finds).
func (r *reader) seek(off int64) error {
	r.drop()
	rc, err := r.open(r.ctx, r.entry.Location, off)
	if err != nil {
		tries := 0
		rc, err = r.reopen(off, &tries, err)
	}
	if err != nil {
		return fmt.Errorf("download: open %s at %d: %w", r.entry.ID, off, err)
	}
	if r.ring == nil {
		// No bigger than the file: a small recording opened many times
		// does not hold a MiB each time.
		r.ring = make([]byte, max(min(int64(r.ringSize), r.entry.Size), 1))
	}
	r.rc, r.pos, r.lo = rc, off, off
	r.continuous = off == 0
	r.hash.Reset()
	return nil
}

// drop closes the stream, if any.
func (r *reader) drop() error {
	if r.rc == nil {
		return nil
	}
	err := r.rc.Close()
	r.rc, r.continuous = nil, false
	return err
}

// fill reads the next bytes of the stream into the ring, never past Size.
// A stream that breaks is re-opened where it broke (resume), so a passing
// fault costs a pause, not the download.
func (r *reader) fill() error {
	size := r.entry.Size
	i := r.pos % int64(len(r.ring))
	buf := r.ring[i:min(int64(len(r.ring)), i+size-r.pos)]
	resumes := 0
	for empty := 0; empty < maxEmptyReads; {
		k, err := r.rc.Read(buf)
		if r.continuous {
			r.hash.Write(buf[:k])
		}
		r.pos += int64(k)
		r.lo = max(r.lo, r.pos-int64(len(r.ring)))
		switch {
		case err == io.EOF && r.pos < size:
			return r.fail(fmt.Errorf("%w: %s ends at byte %d, %d recorded", ErrIntegrity, r.entry.ID, r.pos, size))
		case errors.Is(err, ErrIntegrity): // the opener's own check (S3's stored checksum)
			r.drop()
			return r.fail(fmt.Errorf("download: read %s at %d: %w", r.entry.ID, r.pos, err))
		case err != nil && err != io.EOF:
			// Re-open where it broke, keeping the ring and the running
			// hash; an open that fails counts as one more break.
			r.rc.Close()
			rc, rerr := r.reopen(r.pos, &resumes, err)
			if rerr != nil {
				r.rc, r.continuous = nil, false
				return fmt.Errorf("download: read %s at %d: %w", r.entry.ID, r.pos, rerr)
			}
			r.rc = rc
			if k > 0 {
				return nil
			}
		case k > 0 || err == io.EOF:
			return nil
		default:
			empty++
		}
	}
	r.drop()
	return fmt.Errorf("download: read %s at %d: %w", r.entry.ID, r.pos, io.ErrNoProgress)
}

// reopen opens the stream at off after a failure (cause), after pauses of
// resumePause, then four times that, and so on, while *tries (which the
// caller may share between failures) is below maxResumes and ctx is not
// done; it returns cause, with the failed opens added, if it gives up.
func (r *reader) reopen(off int64, tries *int, cause error) (io.ReadCloser, error) {
	for *tries < maxResumes && r.ctx.Err() == nil {
		*tries++
		t := time.NewTimer(resumePause << (2 * (*tries - 1)))
		select {
		case <-r.ctx.Done():
			t.Stop()
			return nil, cause
		case <-t.C:
		}
		rc, err := r.open(r.ctx, r.entry.Location, off)
		if err == nil {
			return rc, nil
		}
		cause = fmt.Errorf("%w (re-opening: %v)", cause, err)
	}
	return nil, cause
}

// copyOut copies the ring's bytes [from, to) into p, which starts at off.
func (r *reader) copyOut(p []byte, off, from, to int64) {
	for from < to {
		i := from % int64(len(r.ring))
		k := copy(p[from-off:to-off], r.ring[i:])
		from += int64(k)
	}
}

// verify checks the whole file against the entry once; an I/O error leaves
// the question open for a later read.
func (r *reader) verify() error {
	if r.checked {
		return r.verdict
	}
	var err error
	switch {
	case r.continuous && r.pos == r.entry.Size:
		err = r.verifyStream()
	case r.prechecked: // start's check stands
	default:
		err = r.verifyPass()
	}
	if err != nil && !errors.Is(err, ErrIntegrity) {
		return err
	}
	r.checked, r.verdict = true, err
	return err
}

// verifyStream checks that the stream, hashed from 0 to Size, ends there.
func (r *reader) verifyStream() error {
	var b [1]byte
	for range maxEmptyReads {
		k, err := r.rc.Read(b[:])
		switch {
		case k > 0:
			return fmt.Errorf("%w: %s is longer than the %d bytes recorded", ErrIntegrity, r.entry.ID, r.entry.Size)
		case err == io.EOF:
			return r.compare(r.pos, r.hash)
		case err != nil:
			r.drop()
			return fmt.Errorf("download: read %s at %d: %w", r.entry.ID, r.pos, err)
		}
	}
	r.drop()
	return fmt.Errorf("download: read %s at %d: %w", r.entry.ID, r.pos, io.ErrNoProgress)
}

// verifyPass hashes the whole file with a separate sequential read.
func (r *reader) verifyPass() error {
	rc, err := r.open(r.ctx, r.entry.Location, 0)
	if err != nil {
		return fmt.Errorf("download: open %s to verify: %w", r.entry.ID, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(rc, r.entry.Size+1))
	if err != nil {
		return fmt.Errorf("download: read %s to verify: %w", r.entry.ID, err)
	}
	return r.compare(n, h)
}

// compare checks a size and hash against the entry.
func (r *reader) compare(n int64, h hash.Hash) error {
	if n < r.entry.Size {
		return fmt.Errorf("%w: %s holds %d bytes, %d recorded", ErrIntegrity, r.entry.ID, n, r.entry.Size)
	}
	if n > r.entry.Size {
		return fmt.Errorf("%w: %s is longer than the %d bytes recorded", ErrIntegrity, r.entry.ID, r.entry.Size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(sum, r.entry.SHA256) {
		return fmt.Errorf("%w: %s has SHA-256 %s, %s recorded", ErrIntegrity, r.entry.ID, sum, r.entry.SHA256)
	}
	return nil
}

// fail makes err, if it reports a mismatch, the answer to every later read.
func (r *reader) fail(err error) error {
	if errors.Is(err, ErrIntegrity) {
		r.checked, r.verdict = true, err
	}
	return err
}
