package download

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fetch is one Library.Fetched call.
type fetch struct {
	id, via string
	sent    int64
	err     error
}

// fakeLibrary is a Library over a fixed set of entries.
type fakeLibrary struct {
	entries   []Entry
	live      map[string]bool
	manifests map[string][]byte

	mu      sync.Mutex
	fetched []fetch
	refused []string // "via name: err"
}

func (l *fakeLibrary) List(context.Context) ([]Entry, error) { return l.entries, nil }

func (l *fakeLibrary) Lookup(_ context.Context, id string) (Entry, error) {
	if l.live[id] {
		return Entry{}, ErrLive
	}
	for _, e := range l.entries {
		if e.ID == id {
			return e, nil
		}
	}
	return Entry{}, ErrNotFound
}

func (l *fakeLibrary) Manifest(_ context.Context, id string) ([]byte, error) {
	if m, ok := l.manifests[id]; ok {
		return m, nil
	}
	return nil, ErrNotFound
}

func (l *fakeLibrary) Fetched(e Entry, via string, sent int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fetched = append(l.fetched, fetch{e.ID, via, sent, err})
}

func (l *fakeLibrary) Refused(name, via string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused = append(l.refused, via+" "+name+": "+err.Error())
}

// refusals returns the Refused calls so far.
func (l *fakeLibrary) refusals() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.refused...)
}

// fetches returns the Fetched calls so far.
func (l *fakeLibrary) fetches() []fetch {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]fetch(nil), l.fetched...)
}

// memStore is an Opener over in-memory files that counts opens and the
// largest read asked of a stream.
type memStore struct {
	files map[string][]byte

	mu      sync.Mutex
	opens   []int64 // offsets, in order
	maxRead int
}

func newMemStore() *memStore { return &memStore{files: map[string][]byte{}} }

func (m *memStore) open(_ context.Context, loc string, off int64) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.files[loc]
	if !ok || off > int64(len(data)) {
		return nil, fmt.Errorf("memstore: no %s at %d", loc, off)
	}
	m.opens = append(m.opens, off)
	return io.NopCloser(&measuredReader{m: m, r: bytes.NewReader(data[off:])}), nil
}

func (m *memStore) openCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.opens)
}

type measuredReader struct {
	m *memStore
	r io.Reader
}

func (r *measuredReader) Read(p []byte) (int, error) {
	r.m.mu.Lock()
	r.m.maxRead = max(r.m.maxRead, len(p))
	r.m.mu.Unlock()
	return r.r.Read(p)
}

// randomBytes returns n random bytes.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// entryFor returns an entry recording data as it is, stored at location id.
func entryFor(id, host string, data []byte) Entry {
	sum := sha256.Sum256(data)
	return Entry{
		ID:       id,
		Host:     host,
		Started:  time.Date(2026, 11, 25, 21, 10, 0, 0, time.UTC),
		Size:     int64(len(data)),
		SHA256:   hex.EncodeToString(sum[:]),
		Location: id,
	}
}

// fixture is a Server over temp files: "good" (5 MiB), "small", "bad"
// (stored bytes differ from the recorded hash) and "live".
type fixture struct {
	srv              *Server
	lib              *fakeLibrary
	good, small, bad Entry
	goodData         []byte
	smallData        []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{goodData: randomBytes(t, 5<<20), smallData: []byte("a small recording\n")}
	badData := randomBytes(t, 100_000)
	store := func(e Entry, data []byte) Entry {
		e.Location = filepath.Join(dir, e.ID)
		if err := os.WriteFile(e.Location, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return e
	}
	f.good = store(entryFor("s1", "web-01", f.goodData), f.goodData)
	f.small = store(entryFor("s2", "db-01", f.smallData), f.smallData)
	corrupt := append([]byte(nil), badData...)
	corrupt[len(corrupt)/2] ^= 1 // in the middle: a prefix that went out would hold it
	f.bad = store(entryFor("s3", "web-02", badData), corrupt)
	f.small.Started = f.small.Started.Add(time.Hour)
	f.lib = &fakeLibrary{entries: []Entry{f.small, f.good, f.bad}, live: map[string]bool{"s9": true}}
	srv, err := New(Config{Library: f.lib, Open: openFile, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	return f
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		accepted <- result{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-accepted
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}

func TestNewRequiresLibraryAndOpener(t *testing.T) {
	_, err := New(Config{})
	if err == nil {
		t.Fatal("New(Config{}) succeeded")
	}
	for _, want := range []string{"Library", "Open"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("New(Config{}) = %v, want it to name %s", err, want)
		}
	}
}

func TestEntryName(t *testing.T) {
	e := Entry{ID: "abc123", Host: "web-01", Started: time.Date(2026, 11, 25, 22, 10, 0, 0, time.FixedZone("CET", 3600))}
	if got, want := e.Name(), "abc123_web-01_20261125T211000Z.gz"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	e.Event = "e-7f3a9c"
	if got, want := e.Name(), "abc123_web-01_e-7f3a9c_20261125T211000Z.gz"; got != want {
		t.Errorf("Name() of a session opened from an event = %q, want %q", got, want)
	}
}

// errReset stands for a stream that broke mid-way (a reset connection, an
// S3 GET cut short).
var errReset = errors.New("connection reset by peer")

// flaky wraps an Opener: the first breaks[location] streams it opens there
// fail with errReset after `after` bytes.
type flaky struct {
	open  Opener
	after int64

	mu     sync.Mutex
	breaks map[string]int
	offs   []int64 // every open's offset, in order
}

func (f *flaky) Open(ctx context.Context, loc string, off int64) (io.ReadCloser, error) {
	rc, err := f.open(ctx, loc, off)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offs = append(f.offs, off)
	if f.breaks[loc] == 0 {
		return rc, nil
	}
	f.breaks[loc]--
	return &breaking{ReadCloser: rc, left: f.after}, nil
}

func (f *flaky) opens() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.offs...)
}

type breaking struct {
	io.ReadCloser
	left int64
}

func (b *breaking) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errReset
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// quickResumes makes re-opening a broken stream wait 1 ms, not 100.
func quickResumes(t *testing.T) {
	old := resumePause
	resumePause = time.Millisecond
	t.Cleanup(func() { resumePause = old })
}

// openFile is the Opener of the tests' recordings, plain local files.
func openFile(_ context.Context, path string, offset int64) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
