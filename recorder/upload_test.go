package recorder

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

type fakeSink struct {
	mu       sync.Mutex
	failures int               // fail this many uploads first
	objects  map[string]string // name → sha256
	sizes    map[string]int64
}

var errExists = errors.New("exists")

func (f *fakeSink) Upload(_ context.Context, name, path string, _ int64, sum string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
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
	f.sizes[name] = -1
	return nil
}

func (f *fakeSink) Stat(_ context.Context, name string) (int64, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sizes[name], f.objects[name], nil
}

func TestUploaderRetriesAndKeepsFilesUntilVerified(t *testing.T) {
	sp, err := NewSpool(SpoolConfig{Dir: t.TempDir(), FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for _, id := range []string{"done1", "live1"} {
		r, err := sp.Create(id, "pp", Header{SessionID: id})
		if err != nil {
			t.Fatal(err)
		}
		r.Output([]byte("data of " + id))
		if id == "done1" {
			r.Close(End{Reason: "exit 0"})
		} else {
			defer r.Close(End{})
		}
	}
	sink := &fakeSink{failures: 2, objects: map[string]string{}}
	moved := make(chan string, 4)
	u, err := NewUploader(UploaderConfig{
		Spool:      sp,
		Sink:       sink,
		Closed:     func(_ context.Context, id string) (bool, error) { return id != "live1", nil },
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
			Closed:   func(context.Context, string) (bool, error) { return true, nil },
			Moved:    func(_ context.Context, _, loc string) error { movedTo = loc; return nil },
			Location: func(n string) string { return "s3://b/" + n }, AlreadyThere: errExists, Stat: sink.Stat})
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
