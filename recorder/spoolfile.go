package recorder

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// spoolFile is a live recording's file. It hashes what it writes (so that
// a closing recording need not be read back for its SHA-256) and chooses
// how the bytes reach the file:
//
//   - A quiet or interactive recording writes through the page cache as it
//     goes, as any file does.
//   - A busy one (directAfter bytes or more between two flushes) gathers
//     its bytes in aligned buffers of directChunk bytes and writes each
//     full one with O_DIRECT, in the background while the next one fills:
//     the session waits for the disk only when the disk is slower than it.
//     The kernel copies nothing into the page cache: that copy was about a
//     fifth of the gateway's CPU per byte on bulk transfers (see the
//     README's benchmarks), and a recording running at hundreds of MB/s no
//     longer pushes everything else out of the cache.
//
// Before a buffer starts filling, its blocks on disk are reserved: a full
// disk is then found while a Write can still fail (and the session stop
// before the bytes go out unrecorded), not later by a write in the
// background. A filesystem that cannot reserve stays in the page cache,
// whose writes find a full disk themselves.
//
// At most one chunk is in flight, and nothing after it is written until it
// is done, so the file never has a hole. A flush waits for it, then writes
// what the filling buffer holds through the page cache, exactly (no
// padding): the file always ends at the last byte flushed, and a crash
// leaves a prefix of the recording. The next chunk is written over that
// range with O_DIRECT; Linux writes back and drops the cached pages a
// direct write overlaps. A filesystem that refuses O_DIRECT (at open or on
// the first chunk) gets the page cache throughout.
type spoolFile struct {
	mu     sync.Mutex
	f      *os.File // read-write, through the page cache
	direct *os.File // the same file opened O_DIRECT; nil if refused
	proven bool     // a chunk has gone out with O_DIRECT
	h      hash.Hash
	n      atomic.Int64 // bytes written; the flusher reads it for writeback
	recent int64        // bytes written since the last flush

	// In direct mode, buf holds the file's bytes from base (a multiple of
	// directAlign) on, of which fill are set; spare is the other buffer,
	// the one in flight while flight is true. Both nil otherwise.
	buf, spare *[]byte
	base       int64
	fill       int
	flight     bool
	done       chan error // the chunk in flight's result

	after, chunk int64 // directAfter and directChunk (tests set smaller ones)
	directWrites int   // chunks written with O_DIRECT (for tests)

	// reserve allocates the file's blocks for [off, off+n) without
	// changing its size (fallocate, FALLOC_FL_KEEP_SIZE); reserved says
	// it has been used, so close gives back what lies past the end.
	reserve  func(off, n int64) error
	reserved bool
}

const (
	directAlign = 4096    // O_DIRECT wants buffer, offset and length aligned to the device's block; 4096 covers 512 too
	directChunk = 1 << 20 // one O_DIRECT write: big enough that its fixed cost is small per byte
	directAfter = 2 << 20 // bytes between two flushes (1 s apart) that make a recording busy
)

// directSlots bounds the recordings in direct mode at once, and so the
// memory their buffers take (2 × directChunk each, 64 MiB in all); a busy
// recording that finds none free stays in the page cache.
var directSlots = make(chan struct{}, 32)

// directBufs holds aligned buffers of directChunk bytes (as *[]byte).
var directBufs = sync.Pool{New: func() any { b := alignedBuffer(directChunk); return &b }}

// alignedBuffer returns n bytes starting at a multiple of directAlign.
func alignedBuffer(n int) []byte {
	raw := make([]byte, n+directAlign)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(raw))) & (directAlign - 1))
	return raw[off : off+n : off+n]
}

// createSpoolFile creates path, which must not exist.
func createSpoolFile(path string) (*spoolFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	s := &spoolFile{f: f, h: sha256.New(), after: directAfter, chunk: directChunk, done: make(chan error, 1)}
	if d, err := os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT, 0); err == nil {
		s.direct = d
	}
	s.reserve = func(off, n int64) error {
		sc, err := f.SyscallConn()
		if err != nil {
			return err
		}
		cerr := sc.Control(func(fd uintptr) { err = unix.Fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, off, n) })
		return errors.Join(cerr, err)
	}
	return s, nil
}

// Write appends p to the file (or, in direct mode, to the buffer). A
// failed write breaks the recording: the Writer keeps the error.
func (s *spoolFile) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recent += int64(len(p))
	if s.buf == nil && s.direct != nil && s.recent >= s.after {
		s.enterDirect()
	}
	var err error
	if s.buf != nil {
		err = s.gather(p)
	} else {
		_, err = s.f.WriteAt(p, s.n.Load())
	}
	if err != nil {
		return 0, err
	}
	s.h.Write(p)
	s.n.Add(int64(len(p)))
	return len(p), nil
}

// enterDirect starts gathering from the last aligned offset, reading back
// the bytes already written past it. If that fails the file stays in
// page-cache mode.
func (s *spoolFile) enterDirect() {
	select {
	case directSlots <- struct{}{}:
	default:
		return
	}
	b := directBufs.Get().(*[]byte)
	size := s.n.Load()
	base := size &^ (directAlign - 1)
	fill := int(size - base)
	s.reserved = true
	if s.reserve(base, s.chunk) != nil {
		directBufs.Put(b)
		<-directSlots
		return
	}
	if fill > 0 {
		if _, err := s.f.ReadAt((*b)[:fill], base); err != nil {
			directBufs.Put(b)
			<-directSlots
			return
		}
	}
	s.buf, s.spare, s.base, s.fill = b, directBufs.Get().(*[]byte), base, fill
}

// gather adds p to the buffer, sending each full one to the disk.
func (s *spoolFile) gather(p []byte) error {
	for len(p) > 0 {
		if s.buf == nil { // O_DIRECT refused on the first chunk
			_, err := s.f.WriteAt(p, s.base) // base: the end of what went out
			return err
		}
		buf := (*s.buf)[:s.chunk]
		c := copy(buf[s.fill:], p)
		s.fill += c
		p = p[c:]
		if s.fill == len(buf) {
			if err := s.send(); err != nil {
				return err
			}
		}
	}
	return nil
}

// send writes the full buffer at base: the first chunk of a file
// synchronously (to learn whether O_DIRECT works here), the others in the
// background once the one before is done.
func (s *spoolFile) send() error {
	if err := s.wait(); err != nil {
		return err
	}
	full, off := (*s.buf)[:s.chunk], s.base
	if !s.proven {
		_, err := s.direct.WriteAt(full, off)
		if errors.Is(err, unix.EINVAL) {
			// Accepted at open, refused on write (some filesystems
			// and devices do): the page cache from now on.
			if _, err := s.f.WriteAt(full, off); err != nil {
				return err
			}
			s.direct.Close()
			s.direct = nil
			s.base += s.chunk
			s.fill = 0
			s.release()
			return nil
		}
		if err != nil {
			return fmt.Errorf("direct write: %w", err)
		}
		s.proven = true
		s.directWrites++
	} else {
		d, done := s.direct, s.done
		s.flight = true
		go func() {
			_, err := d.WriteAt(full, off)
			done <- err
		}()
		s.directWrites++
		s.buf, s.spare = s.spare, s.buf
	}
	s.base += s.chunk
	s.fill = 0
	if err := s.reserve(s.base, s.chunk); err != nil {
		return fmt.Errorf("reserve disk space: %w", err)
	}
	return nil
}

// wait waits for the chunk in flight, if any.
func (s *spoolFile) wait() error {
	if !s.flight {
		return nil
	}
	s.flight = false
	if err := <-s.done; err != nil {
		return fmt.Errorf("direct write: %w", err)
	}
	return nil
}

// release gives both buffers back; nothing may be in flight and
// everything they held must be in the file.
func (s *spoolFile) release() {
	if s.buf != nil {
		directBufs.Put(s.buf)
		directBufs.Put(s.spare)
		s.buf, s.spare, s.fill = nil, nil, 0
		<-directSlots
	}
}

// flush puts everything written so far into the file: it waits for the
// chunk in flight, then writes what the buffer holds through the page
// cache. A recording gone quiet leaves direct mode.
func (s *spoolFile) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	busy := s.recent >= s.chunk
	s.recent = 0
	if s.buf == nil {
		return nil
	}
	if err := s.wait(); err != nil {
		return err
	}
	if s.fill > 0 {
		if _, err := s.f.WriteAt((*s.buf)[:s.fill], s.base); err != nil {
			return err
		}
	}
	if !busy {
		s.release()
	}
	return nil
}

// close flushes, syncs and closes the file.
func (s *spoolFile) close() error {
	ferr := s.flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	werr := s.wait() // after a failed flush, a chunk may still be in flight
	s.release()
	var terr error
	if s.reserved {
		// Give back the blocks reserved past the end. After a failed
		// Write this also drops bytes the digest does not cover.
		terr = s.f.Truncate(s.n.Load())
	}
	serr := s.f.Sync()
	cerr := s.f.Close()
	if s.direct != nil {
		s.direct.Close()
	}
	return errors.Join(ferr, werr, terr, serr, cerr)
}
