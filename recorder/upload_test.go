package recorder

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeSink struct {
	mu       sync.Mutex
	failures int               // fail this many uploads first
	objects  map[string]string // name → sha256
	sizes    map[string]int64
	uploads  int
}

var (
	errExists   = errors.New("exists")
	errMismatch = errors.New("mismatch")
)

func (f *fakeSink) Upload(_ context.Context, name, path string, size int64, sum string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploads++
	if f.failures > 0 {
		f.failures--
		return errors.New("connection refused")
	}
	if _, ok := f.objects[name]; ok {
		return errExists
	}
	f.objects[name] = sum
	if f.sizes == nil {
		f.sizes = map[string]int64{}
	}
	f.sizes[name] = size
	return nil
}

// Verify stands for the server's checksum of what it holds.
func (f *fakeSink) Verify(_ context.Context, name, _ string, size int64, sum string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.objects[name] != sum || f.sizes[name] != size {
		return errMismatch
	}
	return nil
}

func TestUploaderRetriesAndKeepsFilesUntilVerified(t *testing.T) {
	sp, err := NewSpool(SpoolConfig{Dir: t.TempDir(), FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var done1 Closed
	for _, id := range []string{"done1", "live1"} {
		r, err := sp.Create(id, "pp", Header{SessionID: id})
		if err != nil {
			t.Fatal(err)
		}
		r.Output([]byte("data of " + id))
		if id == "done1" {
			done1, _ = r.Close(End{Reason: "exit 0"})
		} else {
			defer r.Close(End{})
		}
	}
	sink := &fakeSink{failures: 2, objects: map[string]string{}}
	moved := make(chan string, 4)
	u, err := NewUploader(UploaderConfig{
		Spool:      sp,
		Sink:       sink,
		Final:      func(_ context.Context, id string) (Closed, bool, error) { return done1, id == "done1", nil },
		Moved:      func(_ context.Context, id, loc string) error { moved <- id + " " + loc; return nil },
		Location:   func(name string) string { return "s3://b/" + name },
		BackoffMin: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Rescan: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); u.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case got := <-moved:
		if got != "done1 s3://b/done1.gz" {
			t.Fatalf("moved %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("never uploaded after the sink came back")
	}
	// The file goes right after Moved returns, on the uploader's goroutine.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(sp.Path("done1")); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("local file kept after a verified upload")
		}
	}
	if _, err := os.Stat(sp.Path("live1")); err != nil {
		t.Fatal("a live recording left the spool")
	}
	if sink.failures != 0 {
		t.Fatal("the failures were not retried")
	}
}

func TestUploaderHealsAfterCrashBetweenUploadAndMove(t *testing.T) {
	sp, _ := NewSpool(SpoolConfig{Dir: t.TempDir()})
	defer sp.Close()
	r, _ := sp.Create("s1", "pp", Header{SessionID: "s1"})
	r.Close(End{Reason: "x"})
	c, _ := sp.Seal("s1")
	for _, tc := range []struct {
		remote string
		kept   bool
	}{{"other-sum", true}, {c.SHA256, false}} {
		sink := &fakeSink{objects: map[string]string{"s1.gz": tc.remote}, sizes: map[string]int64{"s1.gz": c.Size}}
		var movedTo string
		u, _ := NewUploader(UploaderConfig{Spool: sp, Sink: sink,
			Final:    func(context.Context, string) (Closed, bool, error) { return c, true, nil },
			Moved:    func(_ context.Context, _, loc string) error { movedTo = loc; return nil },
			Location: func(n string) string { return "s3://b/" + n }, AlreadyThere: errExists, Mismatch: errMismatch})
		u.pass(context.Background())
		_, err := os.Stat(sp.Path("s1"))
		if kept := err == nil; kept != tc.kept || (movedTo != "") == tc.kept {
			t.Fatalf("remote %s: local kept %v, moved to %q", tc.remote, kept, movedTo)
		}
	}
}

// TestClosedDigestMatchesFile: the size and SHA-256 taken while writing
// are those of the file on disk.
func TestClosedDigestMatchesFile(t *testing.T) {
	sp, _ := NewSpool(SpoolConfig{Dir: t.TempDir()})
	defer sp.Close()
	r, err := sp.Create("d1", "pp", Header{SessionID: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		r.Output(bytes.Repeat([]byte{byte(i)}, 1000))
		r.Flush()
	}
	got, err := r.Close(End{Reason: "exit 0"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := sp.Seal("d1")
	if got != want {
		t.Fatalf("closed %+v, file %+v", got, want)
	}
}

// logRecords keeps the messages of a logger's records.
type logRecords struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

func (l *logRecords) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// TestUploaderWaitsForTheSessionsDigest: a session that is over but whose
// row has no SHA-256 yet (a crash came between marking it interrupted and
// sealing its file) keeps its file, and says so once; once the row has
// its digest, the file goes up, checked against it.
func TestUploaderWaitsForTheSessionsDigest(t *testing.T) {
	sp, _ := NewSpool(SpoolConfig{Dir: t.TempDir()})
	defer sp.Close()
	r, _ := sp.Create("u1", "pp", Header{SessionID: "u1"})
	r.Output([]byte("cut short"))
	r.Close(End{}) // and its size and SHA-256 never reached the row
	sink := &fakeSink{objects: map[string]string{}}
	var (
		row   Closed // what the store noted: nothing yet
		moved []string
		logs  logRecords
	)
	u, _ := NewUploader(UploaderConfig{Spool: sp, Sink: sink, Logger: slog.New(&logs),
		Final:    func(context.Context, string) (Closed, bool, error) { return row, true, nil },
		Moved:    func(_ context.Context, id, _ string) error { moved = append(moved, id); return nil },
		Location: func(n string) string { return "s3://b/" + n }, AlreadyThere: errExists, Mismatch: errMismatch})
	for range 2 {
		u.pass(context.Background())
	}
	if _, err := os.Stat(sp.Path("u1")); err != nil || sink.uploads != 0 || len(moved) != 0 {
		t.Fatalf("a recording with no digest noted: file %v, %d uploads, moved %v", err, sink.uploads, moved)
	}
	if n := logs.count("WARN recording not uploaded: its session has no size and SHA-256"); n != 1 {
		t.Fatalf("said %d times, want once: %q", n, logs.msgs)
	}

	row, _ = sp.Seal("u1") // the next start
	u.pass(context.Background())
	if _, err := os.Stat(sp.Path("u1")); !os.IsNotExist(err) || sink.objects["u1.gz"] != row.SHA256 || len(moved) != 1 {
		t.Fatalf("after sealing: file %v, object %q, moved %v", err, sink.objects["u1.gz"], moved)
	}
}

// TestUploaderChecksTheFileAgainstTheRow: a spool file that is not the
// recording its row noted (changed on disk since) is not uploaded.
func TestUploaderChecksTheFileAgainstTheRow(t *testing.T) {
	sp, _ := NewSpool(SpoolConfig{Dir: t.TempDir()})
	defer sp.Close()
	r, _ := sp.Create("m1", "pp", Header{SessionID: "m1"})
	r.Output([]byte("original"))
	row, _ := r.Close(End{Reason: "exit 0"})
	f, _ := os.OpenFile(sp.Path("m1"), os.O_WRONLY, 0)
	f.WriteAt([]byte{'X'}, row.Size-1)
	f.Close()
	sink := &fakeSink{objects: map[string]string{}}
	var logs logRecords
	u, _ := NewUploader(UploaderConfig{Spool: sp, Sink: sink, Logger: slog.New(&logs),
		Final:    func(context.Context, string) (Closed, bool, error) { return row, true, nil },
		Moved:    func(context.Context, string, string) error { t.Error("moved"); return nil },
		Location: func(n string) string { return "s3://b/" + n }})
	u.pass(context.Background())
	if _, err := os.Stat(sp.Path("m1")); err != nil || sink.uploads != 0 {
		t.Fatalf("a file that is not its row's recording: file %v, %d uploads", err, sink.uploads)
	}
	if logs.count("ERROR recording not uploaded; the local file is kept") != 1 {
		t.Fatalf("not logged as an error: %q", logs.msgs)
	}
}

// besideSink is a fakeSink that also takes manifests.
type besideSink struct {
	fakeSink
	put map[string][]byte
}

func (b *besideSink) Put(_ context.Context, name string, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.put[name] = data
	return nil
}

// A recording's manifest goes up with it and leaves the spool with it;
// one written after its recording left is carried on the next pass.
func TestUploaderCarriesManifests(t *testing.T) {
	sp, err := NewSpool(SpoolConfig{Dir: t.TempDir(), FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	r, err := sp.Create("s1", "pp", Header{SessionID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	closed, _ := r.Close(End{})
	manifest := strings.TrimSuffix(sp.Path("s1"), ".gz") + ".manifest"
	os.WriteFile(manifest, []byte("signed s1"), 0o600)
	orphan := strings.TrimSuffix(sp.Path("s0"), ".gz") + ".manifest"
	os.WriteFile(orphan, []byte("signed s0"), 0o600)
	sink := &besideSink{fakeSink: fakeSink{objects: map[string]string{}}, put: map[string][]byte{}}
	u, err := NewUploader(UploaderConfig{Spool: sp, Sink: sink,
		Final:    func(context.Context, string) (Closed, bool, error) { return closed, true, nil },
		Moved:    func(context.Context, string, string) error { return nil },
		Location: func(name string) string { return "s3://b/" + name }})
	if err != nil {
		t.Fatal(err)
	}
	u.pass(context.Background())
	if string(sink.put["s1.manifest"]) != "signed s1" || string(sink.put["s0.manifest"]) != "signed s0" || sink.objects["s1.gz"] == "" {
		t.Fatalf("sink holds %v and %v", sink.objects, sink.put)
	}
	for _, f := range []string{sp.Path("s1"), manifest, orphan} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left in the spool", f)
		}
	}
}
