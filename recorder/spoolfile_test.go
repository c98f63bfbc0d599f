package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// spoolFileRun writes random amounts with flushes in between, checking
// after every flush that the file is exactly what was written so far (a
// crash then leaves a prefix and no padding), and at the end the content
// and the digest.
func spoolFileRun(t *testing.T, s *spoolFile, path string, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var want []byte
	for i := 0; i < 400; i++ {
		p := make([]byte, 1+rng.IntN(40000))
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		if n, err := s.Write(p); err != nil || n != len(p) {
			t.Fatalf("write %d: %d, %v", len(p), n, err)
		}
		want = append(want, p...)
		if rng.IntN(8) == 0 {
			if err := s.flush(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("after flush %d: file has %d bytes, want %d (first difference at %d)",
					i, len(got), len(want), firstDiff(got, want))
			}
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, want) {
		t.Fatalf("closed file has %d bytes, want %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
	}
	sum := sha256.Sum256(want)
	if hex.EncodeToString(s.h.Sum(nil)) != hex.EncodeToString(sum[:]) || s.n.Load() != int64(len(want)) {
		t.Fatalf("digest or size of what was written is wrong")
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// directSpoolFile creates a spool file in a temporary folder, skipping the
// test where the filesystem refuses O_DIRECT (TestSpoolFilePageCache
// covers that case).
func directSpoolFile(t *testing.T) (*spoolFile, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.gz")
	s, err := createSpoolFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !mayGoDirect(s) {
		s.close()
		t.Skipf("the filesystem of %s refuses O_DIRECT", path)
	}
	return s, path
}

// mayGoDirect reports whether s's file can be opened with O_DIRECT (what
// direct mode does when it starts).
func mayGoDirect(s *spoolFile) bool {
	if s.directPath == "" {
		return false
	}
	d, err := os.OpenFile(s.directPath, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return false
	}
	d.Close()
	return true
}

// TestSpoolFileDirect: small thresholds so that direct mode comes and goes
// many times; the file is always exact.
func TestSpoolFileDirect(t *testing.T) {
	for seed := uint64(1); seed <= 2; seed++ {
		s, path := directSpoolFile(t)
		s.after, s.chunk = 3*directAlign, 4*directAlign
		spoolFileRun(t, s, path, seed)
		if s.directWrites == 0 {
			t.Fatalf("seed %d: no chunk went out with O_DIRECT", seed)
		}
	}
}

// TestSpoolFilePageCache: where O_DIRECT is refused, everything goes
// through the page cache, exactly as well.
func TestSpoolFilePageCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.gz")
	s, err := createSpoolFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s.noDirect()
	s.after, s.chunk = 3*directAlign, 4*directAlign
	spoolFileRun(t, s, path, 9)
}

// TestBusyRecordingGoesDirectAndQuietOneLeaves: through the Spool with the
// real sizes, a burst of output (several MiB between two flushes) goes out
// in O_DIRECT chunks; after a quiet interval the recording holds no
// buffer; the file decodes to exactly what was recorded and its digest is
// the one Close reports.
func TestBusyRecordingGoesDirectAndQuietOneLeaves(t *testing.T) {
	dir := t.TempDir()
	sp, err := NewSpool(SpoolConfig{Dir: dir, FlushInterval: 1 << 40}) // flushes are the test's
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	r, err := sp.Create("busy", pass, Header{SessionID: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	if !mayGoDirect(r.file) {
		r.Close(End{Reason: "exit 0"})
		t.Skip("the filesystem of the temporary folder refuses O_DIRECT")
	}
	if r.file.direct != nil {
		t.Fatal("a new recording holds an O_DIRECT descriptor before it is busy")
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var sent []byte
	out := func(n int) {
		p := make([]byte, n)
		for i := range p {
			p[i] = 'a' + byte(rng.IntN(26))
			if rng.IntN(60) == 0 {
				p[i] = '\n'
			}
		}
		if err := r.Output(p); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, p...)
	}
	for range 200 {
		out(32 << 10) // 6.25 MiB in one interval: busy
	}
	if r.file.directWrites == 0 || r.file.direct == nil {
		t.Fatal("a busy recording wrote no O_DIRECT chunk")
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if r.file.buf == nil {
		t.Fatal("a recording still busy gave its buffer back")
	}
	out(100)
	if err := r.Flush(); err != nil { // a quiet interval
		t.Fatal(err)
	}
	if r.file.buf != nil || r.file.direct != nil {
		t.Fatalf("a quiet recording keeps its O_DIRECT buffer (%v) or descriptor (%v)", r.file.buf != nil, r.file.direct)
	}
	out(5000)
	closed, err := r.Close(End{Reason: "exit 0"})
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(closed.Path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(file)
	if closed.Size != int64(len(file)) || closed.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("closed %+v, file %d bytes", closed, len(file))
	}
	got, _, end, err := replay(t, file)
	if err != nil || end == nil || !bytes.Equal(got, sent) {
		t.Fatalf("replay: %d bytes (want %d), end %v, err %v", len(got), len(sent), end, err)
	}
	// The blocks reserved past the end were given back.
	var st syscall.Stat_t
	if err := syscall.Stat(closed.Path, &st); err != nil {
		t.Fatal(err)
	}
	if allocated := st.Blocks * 512; allocated > closed.Size+directChunk/2 {
		t.Fatalf("%d bytes allocated to a %d-byte file: the reservation past its end was kept", allocated, closed.Size)
	}
}

// TestFullDiskFailsTheWrite: when the disk has no room for the next
// buffer, the Write that needs it fails (so the session stops before those
// bytes go out), and the closed file is exactly what was accepted, with
// the digest of that.
func TestFullDiskFailsTheWrite(t *testing.T) {
	s, path := directSpoolFile(t)
	s.after, s.chunk = 3*directAlign, 4*directAlign
	reserve, calls := s.reserve, 0
	s.reserve = func(off, n int64) error {
		if calls++; calls > 4 {
			return unix.ENOSPC
		}
		return reserve(off, n)
	}
	var accepted []byte
	var werr error
	for i := 0; werr == nil && i < 100; i++ {
		p := bytes.Repeat([]byte{byte(i)}, 3000)
		var n int
		if n, werr = s.Write(p); werr == nil {
			accepted = append(accepted, p[:n]...)
		} else if n != 0 {
			t.Fatalf("a failed Write reports %d bytes written", n)
		}
	}
	if !errors.Is(werr, unix.ENOSPC) {
		t.Fatalf("Write error %v, want ENOSPC", werr)
	}
	s.close()
	// The digest is not checked: after a failure the recording reports
	// none (the next start seals the file and hashes what it holds).
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, accepted) || s.n.Load() != int64(len(accepted)) {
		t.Fatalf("file %d bytes, accepted %d, counted %d", len(got), len(accepted), s.n.Load())
	}
}

// TestSpoolFileDirectRefusedOnWrite: a file whose first O_DIRECT chunk is
// refused (EINVAL, as some filesystems and devices answer) goes on through
// the page cache without losing or repeating a byte.
func TestSpoolFileDirectRefusedOnWrite(t *testing.T) {
	s, path := directSpoolFile(t)
	s.after, s.chunk = 3*directAlign, 4*directAlign
	s.writeDirect = func([]byte, int64) error { return unix.EINVAL }
	spoolFileRun(t, s, path, 5)
	if s.directWrites != 0 || s.direct != nil || s.directPath != "" {
		t.Fatalf("%d direct writes, direct file %v: want the page cache after the refusal", s.directWrites, s.direct)
	}
}

// TestDirectModeIsBounded: with every slot taken, a busy recording stays
// in the page cache; once one is free, it goes direct.
func TestDirectModeIsBounded(t *testing.T) {
	s, path := directSpoolFile(t)
	s.after, s.chunk = 3*directAlign, 4*directAlign
	n := 0
	for full := false; !full; {
		select {
		case directSlots <- struct{}{}:
			n++
		default:
			full = true
		}
	}
	held := n
	t.Cleanup(func() {
		for range held {
			<-directSlots
		}
	})
	p := bytes.Repeat([]byte("x"), 5000)
	var want []byte
	for range 10 {
		s.Write(p)
		want = append(want, p...)
	}
	if s.buf != nil || s.directWrites != 0 {
		t.Fatal("direct mode without a free slot")
	}
	for range n {
		<-directSlots
	}
	held = 0
	for range 10 {
		s.Write(p)
		want = append(want, p...)
	}
	if s.directWrites == 0 {
		t.Fatal("no direct writes once slots were free")
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if len(directSlots) != 0 {
		t.Fatalf("%d slots still held after close", len(directSlots))
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
		t.Fatalf("file %d bytes, want %d", len(got), len(want))
	}
}

// TestFailedChunkSticks: a chunk whose background write fails breaks the
// file for good: the next call says so, close reports it, and the file is
// cut where that chunk began, so it holds an exact prefix and no hole.
func TestFailedChunkSticks(t *testing.T) {
	s, path := directSpoolFile(t)
	s.after, s.chunk = 3*directAlign, 4*directAlign
	failedAt := failChunk(s, 3)
	var want []byte
	var werr error
	for i := 0; werr == nil && i < 200; i++ {
		p := bytes.Repeat([]byte{byte(i)}, 3000)
		if _, werr = s.Write(p); werr == nil {
			want = append(want, p...)
			if i%7 == 6 {
				werr = s.flush()
			}
		}
	}
	if !errors.Is(werr, unix.EIO) {
		t.Fatalf("after the failed chunk: %v, want EIO", werr)
	}
	if _, err := s.Write([]byte("more")); !errors.Is(err, unix.EIO) {
		t.Fatalf("a later Write: %v, want EIO", err)
	}
	if err := s.close(); !errors.Is(err, unix.EIO) {
		t.Fatalf("close: %v, want EIO", err)
	}
	got, _ := os.ReadFile(path)
	if *failedAt < 0 || int64(len(got)) != *failedAt || !bytes.Equal(got, want[:*failedAt]) {
		t.Fatalf("file %d bytes, want the %d before the failed chunk", len(got), *failedAt)
	}
}

// TestResizeReachesABusyFile: a window change is in the file at once,
// also while the recording gathers O_DIRECT chunks.
func TestResizeReachesABusyFile(t *testing.T) {
	sp, err := NewSpool(SpoolConfig{Dir: t.TempDir(), FlushInterval: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	r, err := sp.Create("resize", pass, Header{SessionID: "resize"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(End{Reason: "exit 0"})
	if !mayGoDirect(r.file) {
		t.Skip("the filesystem of the temporary folder refuses O_DIRECT")
	}
	for range 100 {
		r.Output(bytes.Repeat([]byte("busy "), 6000)) // 3 MiB: direct mode
	}
	if r.file.buf == nil {
		t.Fatal("the recording did not go direct")
	}
	if err := r.Resize(132, 43); err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile(r.path)
	rd, err := NewReader(bytes.NewReader(file), pass)
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := rd.Next()
		if err != nil {
			t.Fatalf("no resize event in the file: %v", err)
		}
		if ev.Code == "r" && string(ev.Data) == "132x43" {
			return
		}
	}
}

// TestSealGivesBackAReservation: a file a crash left with blocks reserved
// past its end (a busy recording's next buffer) is sealed as it stands,
// byte for byte, and the reservation is given back.
func TestSealGivesBackAReservation(t *testing.T) {
	sp, err := NewSpool(SpoolConfig{Dir: t.TempDir(), FlushInterval: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	content := bytes.Repeat([]byte("torn prefix "), 1000)
	path := sp.Path("crashed")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, int64(len(content)), 4*directChunk)
	f.Close()
	if err != nil {
		t.Skipf("this filesystem cannot reserve: %v", err)
	}
	allocated := func() int64 {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	if a := allocated(); a < 4*directChunk {
		t.Skipf("the reservation did not show in st_blocks (%d bytes)", a)
	}
	closed, err := sp.Seal("crashed")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	if closed.Size != int64(len(content)) || closed.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("sealed %+v, want %d bytes with the content's digest", closed, len(content))
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Fatal("sealing changed the file")
	}
	if a := allocated(); a > int64(len(content))+directChunk/2 {
		t.Fatalf("%d bytes still allocated to a %d-byte file after Seal", a, len(content))
	}
}

// TestTwoFailuresCutAtTheLower: a reservation fails (the disk is full)
// just after a chunk went out in the background, and that chunk then
// fails too: the file is cut before the failed chunk, not padded to what
// the Writes accepted, and close reports both failures.
func TestTwoFailuresCutAtTheLower(t *testing.T) {
	s, path := directSpoolFile(t)
	s.after, s.chunk = 3*directAlign, 4*directAlign
	failedAt := failChunk(s, 2)
	reserve, rcalls := s.reserve, 0
	s.reserve = func(off, n int64) error {
		if rcalls++; rcalls == 3 {
			return unix.ENOSPC
		}
		return reserve(off, n)
	}
	var accepted []byte
	var werr error
	for i := 0; werr == nil && i < 100; i++ {
		p := bytes.Repeat([]byte{byte(i + 1)}, 3000)
		if _, werr = s.Write(p); werr == nil {
			accepted = append(accepted, p...)
		}
	}
	if !errors.Is(werr, unix.ENOSPC) {
		t.Fatalf("the Write that needed room: %v, want ENOSPC", werr)
	}
	cerr := s.close()
	if !errors.Is(cerr, unix.ENOSPC) || !errors.Is(cerr, unix.EIO) {
		t.Errorf("close: %v, want both ENOSPC and EIO", cerr)
	}
	got, _ := os.ReadFile(path)
	if *failedAt < 0 || int64(len(got)) != *failedAt || !bytes.Equal(got, accepted[:*failedAt]) {
		t.Fatalf("file %d bytes, want the %d before the failed chunk, exactly", len(got), *failedAt)
	}
}

// TestWriteDuringClose: a Write racing close is either in the file (and
// the digest) or refused; the file is never padded.
func TestWriteDuringClose(t *testing.T) {
	for range 100 {
		s, path := directSpoolFile(t)
		s.after, s.chunk = 3*directAlign, 4*directAlign
		p := bytes.Repeat([]byte("y"), 1000)
		for range 20 {
			s.Write(p)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := s.Write(p); err != nil {
					if !errors.Is(err, os.ErrClosed) {
						t.Errorf("Write during close: %v, want os.ErrClosed", err)
					}
					return
				}
				runtime.Gosched()
			}
		}()
		runtime.Gosched()
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
		<-done
		got, _ := os.ReadFile(path)
		sum := sha256.Sum256(got)
		if int64(len(got)) != s.n.Load() || !bytes.Equal(s.h.Sum(nil), sum[:]) || bytes.IndexByte(got, 0) >= 0 {
			t.Fatalf("file %d bytes (zero at %d), %d accepted; digest matches: %v",
				len(got), bytes.IndexByte(got, 0), s.n.Load(), bytes.Equal(s.h.Sum(nil), sum[:]))
		}
	}
}

// TestFailedChunkStopsTheNextWrite: once a chunk in the background has
// failed, the next Write says so, not the one that fills the next chunk.
func TestFailedChunkStopsTheNextWrite(t *testing.T) {
	s, _ := directSpoolFile(t)
	defer s.close()
	s.after, s.chunk = 3*directAlign, 4*directAlign
	write := s.writeDirect
	var calls atomic.Int32
	started, fail, failed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	s.writeDirect = func(b []byte, off int64) error {
		if calls.Add(1) == 2 { // the first chunk in the background
			close(started)
			<-fail
			defer close(failed)
			return unix.EIO
		}
		return write(b, off)
	}
	p := bytes.Repeat([]byte("z"), 1000)
	for inFlight := false; !inFlight; {
		if _, err := s.Write(p); err != nil {
			t.Fatalf("before the chunk failed: %v", err)
		}
		s.mu.Lock()
		inFlight = s.flight
		s.mu.Unlock()
	}
	<-started
	close(fail)
	<-failed
	if _, err := s.Write([]byte("x")); !errors.Is(err, unix.EIO) {
		t.Fatalf("the Write after the chunk failed: %v, want EIO", err)
	}
}

// TestCopyOnWriteStaysInThePageCache: direct mode is for filesystems
// that overwrite in place; copy-on-write and log-structured ones stay in
// the page cache.
func TestCopyOnWriteStaysInThePageCache(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  int64
		want bool
	}{
		{"ext4", unix.EXT4_SUPER_MAGIC, true},
		{"xfs", unix.XFS_SUPER_MAGIC, true},
		{"tmpfs", unix.TMPFS_MAGIC, true},
		{"btrfs", unix.BTRFS_SUPER_MAGIC, false},
		{"zfs", 0x2fc12fc1, false},
		{"bcachefs", unix.BCACHEFS_SUPER_MAGIC, false},
		{"f2fs", unix.F2FS_SUPER_MAGIC, false},
	} {
		if got := inPlaceFS(tc.typ); got != tc.want {
			t.Errorf("%s: direct mode %v, want %v", tc.name, got, tc.want)
		}
	}
}

// failChunk makes the n-th O_DIRECT write of s fail with EIO, and returns
// where that chunk was to go (-1 until then).
func failChunk(s *spoolFile, n int) *int64 {
	write, calls := s.writeDirect, 0
	at := int64(-1)
	s.writeDirect = func(b []byte, off int64) error {
		if calls++; calls == n {
			at = off
			return unix.EIO
		}
		return write(b, off)
	}
	return &at
}
