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
//     The file is opened O_DIRECT a second time only while it is busy: a
//     quiet recording holds one descriptor.
//     The kernel copies nothing into the page cache: that copy was about a
//     fifth of the gateway's CPU per byte on bulk transfers (see the
//     README's benchmarks), and a recording running at hundreds of MB/s no
//     longer pushes everything else out of the cache. The chunk is hashed
//     there too, before it is written: SHA-256 is the recorder's largest
//     cost per byte, and on the session's own goroutine it would slow the
//     session by all of it.
//
// Before a buffer starts filling, its blocks on disk are reserved: a full
// disk is then found while a Write can still fail (and the session stop
// before the bytes go out unrecorded), not later by a write in the
// background. A filesystem that cannot reserve stays in the page cache,
// whose writes find a full disk themselves.
//
// At most one chunk is in flight, and nothing after it is written until it
// is done, so the file never has a hole. A failure (of a write, of a chunk
// in the background) sticks: every later call returns it, so the session
// ends at its next write, and close cuts the file where it can no longer
// be trusted, leaving a clean prefix. A flush waits for it, then writes
// what the filling buffer holds through the page cache, exactly (no
// padding): the file always ends at the last byte flushed, and a crash
// leaves a prefix of the recording. The next chunk is written over that
// range with O_DIRECT; Linux writes back and drops the cached pages a
// direct write overlaps. A filesystem that refuses O_DIRECT (at open or on
// the first chunk) gets the page cache throughout.
type spoolFile struct {
	mu sync.Mutex
	f  *os.File // read-write, through the page cache
	// directPath is the file's path if it may go direct ("" if its
	// filesystem cannot, or O_DIRECT was refused); direct is the file
	// opened O_DIRECT, only while in direct mode, so that a quiet
	// recording holds one descriptor, not two.
	directPath string
	direct     *os.File
	h          hash.Hash    // touched only while no chunk is in flight, or by the chunk's goroutine
	hashed     int64        // how much of the file h has taken (or the chunk in flight will have)
	n          atomic.Int64 // bytes written; the flusher reads it for writeback
	recent     int64        // bytes written since the last flush

	// err holds the failures; the file is good up to cut.
	err    error
	cut    int64
	closed bool

	// In direct mode, buf holds the file's bytes from base (a multiple of
	// directAlign) on, of which fill are set; spare is the other buffer,
	// the one in flight (from flightAt) while flight is true. Both nil
	// otherwise.
	buf, spare *[]byte
	base       int64
	fill       int
	flight     bool
	flightAt   int64
	done       chan error // the chunk in flight's result

	after, chunk int64 // directAfter and directChunk (tests set smaller ones)
	directWrites int   // chunks written with O_DIRECT; the first one proves it works here

	// reserve allocates the file's blocks for [off, off+n) without
	// changing its size (fallocate, FALLOC_FL_KEEP_SIZE); writeDirect
	// writes a chunk with O_DIRECT. Tests replace them to inject failures.
	reserve     func(off, n int64) error
	writeDirect func(b []byte, off int64) error
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
	if !overwritesInPlace(f) {
		return s, nil
	}
	s.directPath = path
	s.reserve = func(off, n int64) error {
		sc, err := f.SyscallConn()
		if err != nil {
			return err
		}
		cerr := sc.Control(func(fd uintptr) { err = unix.Fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, off, n) })
		return errors.Join(cerr, err)
	}
	s.writeDirect = func(b []byte, off int64) error {
		_, err := s.direct.WriteAt(b, off) // set before the chunk's goroutine starts, closed after it ends
		return err
	}
	return s, nil
}

// overwritesInPlace reports whether f's filesystem writes over reserved
// and already written blocks in place (ext4, XFS, tmpfs). On a
// copy-on-write one (btrfs, ZFS, bcachefs) or a log-structured one
// (f2fs), a chunk written with O_DIRECT over the tail a flush wrote needs
// new room, so a full disk would be found in the background, after the
// Write that needed it went out: those files stay in the page cache, whose
// writes find a full disk themselves.
func overwritesInPlace(f *os.File) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(int(f.Fd()), &st) == nil && inPlaceFS(int64(st.Type))
}

// inPlaceFS reports whether the filesystem of type fsType (statfs's
// f_type) is one of those that overwrite in place.
func inPlaceFS(fsType int64) bool {
	switch fsType {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.TMPFS_MAGIC:
		return true
	}
	return false
}

// fail records a failure and where the file stops being good: every
// failure is kept, and the file is good up to the lowest of their offsets.
func (s *spoolFile) fail(err error, at int64) error {
	if s.err == nil {
		s.err, s.cut = err, at
	} else {
		s.err, s.cut = errors.Join(s.err, err), min(s.cut, at)
	}
	return s.err
}

// Write appends p to the file (or, in direct mode, to the buffer).
func (s *spoolFile) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, os.ErrClosed
	}
	s.poll()
	if s.err != nil {
		return 0, s.err
	}
	s.recent += int64(len(p))
	if s.buf == nil && s.directPath != "" && s.recent >= s.after {
		s.enterDirect()
	}
	if s.buf != nil {
		if err := s.gather(p); err != nil {
			return 0, err
		}
	} else if _, err := s.f.WriteAt(p, s.n.Load()); err != nil {
		return 0, s.fail(err, s.n.Load())
	}
	if s.buf == nil { // in the file already; a buffer's bytes are hashed when it goes out
		s.hashFrom(p, s.n.Load())
	}
	s.n.Add(int64(len(p)))
	return len(p), nil
}

// hashFrom gives h the part of b, which holds the file's bytes from off
// on, that it has not taken yet. h must have taken everything before off.
// Call with nothing in flight.
func (s *spoolFile) hashFrom(b []byte, off int64) {
	if end := off + int64(len(b)); end > s.hashed {
		s.h.Write(b[s.hashed-off:])
		s.hashed = end
	}
}

// enterDirect starts gathering from the last aligned offset, reading back
// the bytes already written past it. If a slot cannot be had the file
// stays in the page cache for now; if the reservation or the read-back
// fails, for good.
func (s *spoolFile) enterDirect() {
	select {
	case directSlots <- struct{}{}:
	default:
		return
	}
	if s.direct == nil {
		d, err := os.OpenFile(s.directPath, os.O_WRONLY|unix.O_DIRECT, 0)
		if err != nil {
			<-directSlots
			s.noDirect()
			return
		}
		s.direct = d
	}
	b := directBufs.Get().(*[]byte)
	size := s.n.Load()
	base := size &^ (directAlign - 1)
	fill := int(size - base)
	err := s.reserve(base, s.chunk)
	if err == nil && fill > 0 {
		_, err = s.f.ReadAt((*b)[:fill], base)
	}
	if err != nil {
		directBufs.Put(b)
		<-directSlots
		s.noDirect()
		return
	}
	s.buf, s.spare, s.base, s.fill = b, directBufs.Get().(*[]byte), base, fill
}

// noDirect gives up O_DIRECT for this file.
func (s *spoolFile) noDirect() {
	if s.direct != nil {
		s.direct.Close()
		s.direct = nil
	}
	s.directPath = ""
}

// gather adds p to the buffer, sending each full one to the disk.
func (s *spoolFile) gather(p []byte) error {
	for len(p) > 0 {
		if s.buf == nil { // O_DIRECT refused on the first chunk
			if _, err := s.f.WriteAt(p, s.base); err != nil { // base: the end of what went out
				return s.fail(err, s.base)
			}
			return nil
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
// background once the one before is done. Then it reserves the blocks of
// the next buffer.
func (s *spoolFile) send() error {
	if err := s.wait(); err != nil {
		return err
	}
	full, off := (*s.buf)[:s.chunk], s.base
	s.base += s.chunk
	s.fill = 0
	if s.directWrites == 0 {
		s.hashFrom(full, off)
		err := s.writeDirect(full, off)
		if errors.Is(err, unix.EINVAL) {
			// Accepted at open, refused on write (some filesystems
			// and devices do): the page cache from now on.
			if _, err := s.f.WriteAt(full, off); err != nil {
				return s.fail(err, off)
			}
			s.noDirect()
			s.release()
			return nil
		}
		if err != nil {
			return s.fail(fmt.Errorf("direct write: %w", err), off)
		}
	} else {
		if s.hashed < off { // cannot happen: every byte before a chunk is hashed before it goes
			return s.fail(fmt.Errorf("recorder: internal error: bytes %d to %d of the file not hashed", s.hashed, off), s.hashed)
		}
		write, done, h, unhashed := s.writeDirect, s.done, s.h, full[min(s.hashed-off, s.chunk):]
		s.flight, s.flightAt, s.hashed = true, off, off+s.chunk
		go func() {
			h.Write(unhashed)
			done <- write(full, off)
		}()
		s.buf, s.spare = s.spare, s.buf
	}
	s.directWrites++
	if err := s.reserve(s.base, s.chunk); err != nil {
		return s.fail(fmt.Errorf("reserve disk space: %w", err), s.base)
	}
	return nil
}

// poll takes the result of the chunk in flight if it is done, so that a
// failed one ends the session at the next Write rather than at the next
// chunk or flush.
func (s *spoolFile) poll() {
	if !s.flight {
		return
	}
	select {
	case err := <-s.done:
		s.flight = false
		if err != nil {
			s.fail(fmt.Errorf("direct write: %w", err), s.flightAt)
		}
	default:
	}
}

// wait waits for the chunk in flight, if any.
func (s *spoolFile) wait() error {
	if !s.flight {
		return s.err
	}
	s.flight = false
	if err := <-s.done; err != nil {
		return s.fail(fmt.Errorf("direct write: %w", err), s.flightAt)
	}
	return s.err
}

// release leaves direct mode: it gives both buffers back, once h has
// taken what the filling one holds, and closes the O_DIRECT descriptor;
// nothing may be in flight and everything they held must be in the file.
func (s *spoolFile) release() {
	if s.buf != nil {
		s.hashFrom((*s.buf)[:s.fill], s.base)
		directBufs.Put(s.buf)
		directBufs.Put(s.spare)
		s.buf, s.spare, s.fill = nil, nil, 0
		<-directSlots
	}
	if s.direct != nil {
		s.direct.Close()
		s.direct = nil
	}
}

// writeTail puts everything written so far into the file: it waits for
// the chunk in flight, then writes what the buffer holds through the page
// cache. Call with mu held.
func (s *spoolFile) writeTail() error {
	if s.buf == nil {
		return s.err
	}
	if err := s.wait(); err != nil {
		return err
	}
	if s.fill > 0 {
		if _, err := s.f.WriteAt((*s.buf)[:s.fill], s.base); err != nil {
			return s.fail(err, s.base)
		}
	}
	return nil
}

// sync puts everything written so far into the file (a resize, which
// must reach the disk at once), without touching the mode.
func (s *spoolFile) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeTail()
}

// flush is sync at the flush interval: a recording gone quiet also leaves
// direct mode.
func (s *spoolFile) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

func (s *spoolFile) flushLocked() error {
	busy := s.recent >= s.chunk
	s.recent = 0
	if err := s.writeTail(); err != nil {
		return err
	}
	if !busy {
		s.release()
	}
	return nil
}

// close flushes, cuts the file at its end (giving back the blocks reserved
// past it; after a failure, where it stops being good, and never past what
// is in it), syncs and closes it, all under one lock: a Write after it
// fails.
func (s *spoolFile) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return os.ErrClosed
	}
	s.closed = true
	s.flushLocked()
	s.wait() // after a failed flush, a chunk may still be in flight
	s.release()
	end := s.n.Load()
	if s.err != nil {
		end = min(end, s.cut)
		if fi, err := s.f.Stat(); err == nil {
			end = min(end, fi.Size())
		}
	}
	terr := s.f.Truncate(end)
	serr := s.f.Sync()
	cerr := s.f.Close()
	if s.direct != nil {
		s.direct.Close()
	}
	return errors.Join(s.err, terr, serr, cerr)
}
