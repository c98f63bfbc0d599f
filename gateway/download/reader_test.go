package download

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
)

const (
	testRing = 64 << 10
	testSkip = 256 << 10
	testRead = 32 << 10 // what OpenSSH asks per SFTP read
)

// newTestReader returns a reader with a small ring over data stored as
// recorded by e.
func newTestReader(t *testing.T, e Entry, stored []byte) (*reader, *memStore) {
	t.Helper()
	m := newMemStore()
	m.files[e.Location] = stored
	r := newReader(context.Background(), m.open, e)
	r.ringSize, r.maxSkip = testRing, testSkip
	t.Cleanup(func() { r.Close() })
	return r, m
}

// readChunks reads data's chunks of size testRead in the given order and
// returns what it got, failing on any error.
func readChunks(t *testing.T, r io.ReaderAt, size int, order []int) []byte {
	t.Helper()
	got := make([]byte, size)
	for _, i := range order {
		if err := readChunk(r, got, i); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	return got
}

// readChunk reads chunk i into its place in got.
func readChunk(r io.ReaderAt, got []byte, i int) error {
	off := i * testRead
	end := min(off+testRead, len(got))
	p := make([]byte, testRead)
	n, err := r.ReadAt(p, int64(off))
	if err != nil && !(err == io.EOF && end == len(got)) {
		return err
	}
	if n != end-off {
		return errors.New("short read")
	}
	copy(got[off:], p[:n])
	return nil
}

func chunks(size int) int { return (size + testRead - 1) / testRead }

func sequence(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestReaderSequential(t *testing.T) {
	data := randomBytes(t, 1<<20+12345)
	r, m := newTestReader(t, entryFor("x", "h", data), data)
	got := readChunks(t, r, len(data), sequence(chunks(len(data))))
	if !bytes.Equal(got, data) {
		t.Fatal("reassembled bytes differ")
	}
	if n := m.openCount(); n != 1 {
		t.Errorf("opens = %d, want 1 (one stream, verified as read)", n)
	}
	if m.maxRead > testRing {
		t.Errorf("largest stream read = %d, want at most the ring (%d)", m.maxRead, testRing)
	}
	if n, err := r.ReadAt(make([]byte, 10), int64(len(data))); n != 0 || err != io.EOF {
		t.Errorf("ReadAt(Size) = %d, %v; want 0, EOF", n, err)
	}
	if n, err := r.ReadAt(make([]byte, 10), int64(len(data))+100); n != 0 || err != io.EOF {
		t.Errorf("ReadAt(past Size) = %d, %v; want 0, EOF", n, err)
	}
}

func TestReaderOutOfOrderWithinRing(t *testing.T) {
	data := randomBytes(t, 1<<20)
	r, m := newTestReader(t, entryFor("x", "h", data), data)
	// Swap neighbours: 1 0 3 2 5 4 …, as concurrent SFTP reads arrive.
	order := sequence(chunks(len(data)))
	for i := 0; i+1 < len(order); i += 2 {
		order[i], order[i+1] = order[i+1], order[i]
	}
	if got := readChunks(t, r, len(data), order); !bytes.Equal(got, data) {
		t.Fatal("reassembled bytes differ")
	}
	if n := m.openCount(); n != 1 {
		t.Errorf("opens = %d (%v), want 1", n, m.opens)
	}
}

func TestReaderFarJumps(t *testing.T) {
	data := randomBytes(t, 1<<20)
	r, m := newTestReader(t, entryFor("x", "h", data), data)
	got := make([]byte, len(data))
	last := chunks(len(data)) - 1
	// Far ahead: re-open there. Behind the ring but near the start: re-open
	// at 0. Far ahead again, so the last chunk needs a verifying pass.
	for _, i := range []int{0, 20, 1, last} {
		if err := readChunk(r, got, i); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	m.mu.Lock()
	opens := append([]int64(nil), m.opens...)
	m.mu.Unlock()
	want := []int64{0, 20 * testRead, 0, int64(last) * testRead, 0}
	if !equal(opens, want) {
		t.Errorf("opens at %v, want %v", opens, want)
	}
	for _, i := range []int{0, 20, 1, last} {
		off := i * testRead
		if !bytes.Equal(got[off:min(off+testRead, len(data))], data[off:min(off+testRead, len(data))]) {
			t.Errorf("chunk %d differs", i)
		}
	}
	// A read a little ahead is reached by reading forward.
	if err := readChunk(r, got, 2); err != nil || m.openCount() != 6 {
		t.Fatalf("chunk 2 after a jump back: %v, opens %d", err, m.openCount())
	}
	if err := readChunk(r, got, 5); err != nil || m.openCount() != 6 {
		t.Errorf("chunk 5, a little ahead: %v, opens %d, want no new open", err, m.openCount())
	}
	// Far behind and far from the start: re-open at the offset.
	if err := readChunk(r, got, last); err != nil {
		t.Fatal(err)
	}
	if err := readChunk(r, got, 10); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if at := m.opens[len(m.opens)-1]; at != 10*testRead {
		t.Errorf("last open at %d, want %d", at, 10*testRead)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReaderConcurrentRandomOrder(t *testing.T) {
	data := randomBytes(t, 2<<20+777)
	r, _ := newTestReader(t, entryFor("x", "h", data), data)
	got := make([]byte, len(data))
	order := sequence(chunks(len(data)))
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	work := make(chan int)
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work { // keep draining after an error, so the sender never blocks
				if err := readChunk(r, got, i); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, i := range order {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("reassembled bytes differ")
	}
}

func TestReaderRefusesMismatch(t *testing.T) {
	data := randomBytes(t, 300_000)
	e := entryFor("x", "h", data)
	flipped := append([]byte(nil), data...)
	flipped[1000] ^= 0x80
	longer := append(append([]byte(nil), data...), "tail"...)
	tests := []struct {
		name   string
		stored []byte
		order  []int
	}{
		{"corrupt, sequential", flipped, sequence(chunks(len(data)))},
		{"corrupt, with a jump", flipped, []int{0, 8, 9}},
		{"longer, sequential", longer, sequence(chunks(len(data)))},
		{"longer, with a jump", longer, []int{0, 8, 9}},
		{"shorter", data[:len(data)-1], sequence(chunks(len(data)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newTestReader(t, e, tt.stored)
			got := make([]byte, len(data))
			last := len(tt.order) - 1
			for _, i := range tt.order[:last] {
				if err := readChunk(r, got, i); err != nil {
					t.Fatalf("chunk %d before the last: %v", i, err)
				}
			}
			p := make([]byte, testRead)
			n, err := r.ReadAt(p, int64(tt.order[last]*testRead))
			if n != 0 || !errors.Is(err, ErrIntegrity) {
				t.Fatalf("last ReadAt = %d, %v; want 0, ErrIntegrity", n, err)
			}
			if _, err := r.ReadAt(p, 0); !errors.Is(err, ErrIntegrity) {
				t.Errorf("ReadAt after the mismatch = %v, want ErrIntegrity", err)
			}
		})
	}
}

func TestReaderEmptyFile(t *testing.T) {
	r, _ := newTestReader(t, entryFor("x", "h", nil), nil)
	if n, err := r.ReadAt(make([]byte, 10), 0); n != 0 || err != io.EOF {
		t.Errorf("ReadAt = %d, %v; want 0, EOF", n, err)
	}
	r, _ = newTestReader(t, entryFor("x", "h", nil), []byte("x"))
	if _, err := r.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrIntegrity) {
		t.Errorf("ReadAt of a recorded-empty, stored-nonempty file = %v, want ErrIntegrity", err)
	}
}

// pattern is a deterministic stream of n bytes that allocates nothing.
type pattern struct{ off, n int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		b[i] = byte((p.off + int64(i)) * 7 >> 3)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func (p *pattern) Close() error { return nil }

func TestReaderMemoryBounded(t *testing.T) {
	const size = 64 << 20
	h := sha256.New()
	io.Copy(h, &pattern{n: size})
	e := Entry{ID: "big", Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}
	open := func(_ context.Context, _ string, off int64) (io.ReadCloser, error) {
		return &pattern{off: off, n: size}, nil
	}
	r := newReader(context.Background(), open, e)
	defer r.Close()
	p := make([]byte, testRead)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for off := int64(0); off < size; off += testRead {
		if _, err := r.ReadAt(p, off); err != nil && err != io.EOF {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2*ringSize {
		t.Errorf("reading %d MiB allocated %d bytes, want at most %d", size>>20, alloc, 2*ringSize)
	}
}

func TestReaderPastEndVerifiesWhenNear(t *testing.T) {
	data := randomBytes(t, 300_000)
	e := entryFor("x", "h", data)
	last := chunks(len(data)) - 1
	flipped := append([]byte(nil), data...)
	flipped[10] ^= 1

	r, _ := newTestReader(t, e, flipped)
	readChunks(t, r, len(data), sequence(last))
	if _, err := r.ReadAt(make([]byte, testRead), e.Size); !errors.Is(err, ErrIntegrity) {
		t.Errorf("ReadAt(Size) near the end of a corrupt file = %v, want ErrIntegrity", err)
	}

	r, m := newTestReader(t, e, data)
	readChunks(t, r, len(data), sequence(last))
	if _, err := r.ReadAt(make([]byte, testRead), e.Size); err != io.EOF {
		t.Errorf("ReadAt(Size) near the end = %v, want EOF", err)
	}
	got := make([]byte, len(data))
	if err := readChunk(r, got, last); err != nil || !bytes.Equal(got[last*testRead:], data[last*testRead:]) {
		t.Errorf("last chunk after EOF: %v", err)
	}
	if n := m.openCount(); n != 1 {
		t.Errorf("opens = %d, want 1", n)
	}
}

func TestReaderClosed(t *testing.T) {
	data := []byte("some bytes")
	r, m := newTestReader(t, entryFor("x", "h", data), data)
	r.Close()
	if _, err := r.ReadAt(make([]byte, 4), 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("ReadAt after Close = %v, want os.ErrClosed", err)
	}
	if n := m.openCount(); n != 0 {
		t.Errorf("opens after Close = %d, want 0", n)
	}
}

// failingBody serves data, then fails with err, as S3's stream does when
// the object no longer matches its stored checksum.
type failingBody struct {
	r   io.Reader
	err error
}

func (b *failingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		err = b.err
	}
	return n, err
}

func (b *failingBody) Close() error { return nil }

// TestReaderIntegrityFromOpenerSticks: a mismatch the opener's stream
// reports fails that read and every later one, without fetching again.
func TestReaderIntegrityFromOpenerSticks(t *testing.T) {
	data := randomBytes(t, 8*testRead)
	sum := sha256.Sum256(data)
	opens := 0
	open := func(_ context.Context, _ string, off int64) (io.ReadCloser, error) {
		opens++
		return &failingBody{r: bytes.NewReader(data[off : 3*testRead]), err: fmt.Errorf("s3: %w", ErrIntegrity)}, nil
	}
	r := newReader(context.Background(), open, Entry{ID: "s1", Location: "x", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	r.ringSize, r.maxSkip = testRing, testSkip
	defer r.Close()
	p := make([]byte, testRead)
	for _, off := range []int64{0, testRead, 2 * testRead} {
		if _, err := r.ReadAt(p, off); err != nil {
			t.Fatalf("read at %d, before the bad part: %v", off, err)
		}
	}
	if _, err := r.ReadAt(p, 3*testRead); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("read over the bad part: %v, want ErrIntegrity", err)
	}
	before := opens
	for _, off := range []int64{0, 5 * testRead} {
		if _, err := r.ReadAt(p, off); !errors.Is(err, ErrIntegrity) {
			t.Fatalf("later read at %d: %v, want ErrIntegrity", off, err)
		}
	}
	if opens != before {
		t.Fatalf("%d more opens after the mismatch, want none", opens-before)
	}
}

// TestReaderResumesABrokenStream: a stream that breaks is re-opened where
// it broke, up to maxResumes times in one fill; the file arrives whole and
// verified from the running hash (no second pass from 0).
func TestReaderResumesABrokenStream(t *testing.T) {
	quickResumes(t)
	data := randomBytes(t, 1<<20)
	e := entryFor("x", "h", data)
	r, m := newTestReader(t, e, data)
	fl := &flaky{open: m.open, after: 100_000, breaks: map[string]int{e.Location: maxResumes}}
	r.open = fl.Open
	got := readChunks(t, r, len(data), sequence(chunks(len(data))))
	if !bytes.Equal(got, data) {
		t.Fatal("reassembled bytes differ")
	}
	want := []int64{0, 100_000, 200_000, 300_000}
	if fmt.Sprint(fl.opens()) != fmt.Sprint(want) {
		t.Errorf("opened at %v, want %v (resumed where it broke, never again from 0)", fl.opens(), want)
	}
}

// TestReaderGivesUpOnAStreamThatKeepsBreaking: one more break than
// maxResumes in a row fails the read with the stream's error, not an
// integrity failure; a later read starts afresh.
func TestReaderGivesUpOnAStreamThatKeepsBreaking(t *testing.T) {
	quickResumes(t)
	data := randomBytes(t, 300_000)
	e := entryFor("x", "h", data)
	r, m := newTestReader(t, e, data)
	fl := &flaky{open: m.open, after: 0, breaks: map[string]int{e.Location: maxResumes + 1}}
	r.open = fl.Open
	_, err := r.ReadAt(make([]byte, testRead), 0)
	if !errors.Is(err, errReset) || errors.Is(err, ErrIntegrity) {
		t.Fatalf("ReadAt = %v, want the reset", err)
	}
	if n := len(fl.opens()); n != maxResumes+1 {
		t.Errorf("%d opens, want %d", n, maxResumes+1)
	}
	got := readChunks(t, r, len(data), sequence(chunks(len(data))))
	if !bytes.Equal(got, data) {
		t.Fatal("after the streams heal, the bytes differ")
	}
}

// failingOpens fails the first n opens, then opens as open does.
type failingOpens struct {
	open Opener
	mu   sync.Mutex
	n    int
	offs []int64
}

func (f *failingOpens) Open(ctx context.Context, loc string, off int64) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offs = append(f.offs, off)
	if f.n > 0 {
		f.n--
		return nil, errors.New("connection refused")
	}
	return f.open(ctx, loc, off)
}

// TestReaderRetriesAFailedOpen: an open that fails (the file moving from
// the spool to S3, S3 briefly away) is tried again like a broken stream,
// at the first open and when re-opening where a stream broke; the file
// arrives whole, checked by the running hash.
func TestReaderRetriesAFailedOpen(t *testing.T) {
	quickResumes(t)
	data := randomBytes(t, 300_000)
	e := entryFor("x", "h", data)
	r, m := newTestReader(t, e, data)
	fl := &flaky{open: m.open, after: 100_000, breaks: map[string]int{e.Location: 1}}
	fo := &failingOpens{open: fl.Open, n: 1}
	r.open = fo.Open
	got := readChunks(t, r, len(data), sequence(chunks(len(data))))
	if !bytes.Equal(got, data) {
		t.Fatal("reassembled bytes differ")
	}
	if want := "[0 0]"; fmt.Sprint(fo.offs[:2]) != want {
		t.Errorf("first opens at %v, want %s (the failed first open tried again)", fo.offs, want)
	}
	// The stream breaks at 100000; its re-open fails once (counted as a
	// break) and works the time after.
	r2, m2 := newTestReader(t, e, data)
	fl2 := &flaky{open: m2.open, after: 100_000, breaks: map[string]int{e.Location: 1}}
	fo2 := &failingOpens{open: fl2.Open}
	r2.open = func(ctx context.Context, loc string, off int64) (io.ReadCloser, error) {
		if off > 0 && len(fo2.offs) == 1 {
			fo2.n = 1 // the first re-open fails
		}
		return fo2.Open(ctx, loc, off)
	}
	got = readChunks(t, r2, len(data), sequence(chunks(len(data))))
	if !bytes.Equal(got, data) {
		t.Fatal("reassembled bytes differ after a failed re-open")
	}
	if want := "[0 100000 100000]"; fmt.Sprint(fo2.offs) != want {
		t.Errorf("opened at %v, want %s (the failed re-open tried again, never from 0)", fo2.offs, want)
	}
	if !r2.checked || r2.verdict != nil || !r2.continuous {
		t.Errorf("checked %v, verdict %v, continuous %v: want verified from the running hash", r2.checked, r2.verdict, r2.continuous)
	}
}
