package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/recorder"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// logWatch is a logger's handler that keeps every message and tells
// waiters when one arrives.
type logWatch struct {
	mu      sync.Mutex
	msgs    []string
	changed chan struct{}
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

func (l *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (l *logWatch) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.Key + "=" + a.Value.String()
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, msg)
	close(l.changed)
	l.changed = make(chan struct{})
	return nil
}
func (l *logWatch) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logWatch) WithGroup(string) slog.Handler      { return l }

// wait returns the first message logged that holds every one of words,
// failing the test after 30 seconds.
func (l *logWatch) wait(t *testing.T, words ...string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		l.mu.Lock()
		for _, m := range l.msgs {
			all := true
			for _, w := range words {
				all = all && strings.Contains(m, w)
			}
			if all {
				l.mu.Unlock()
				return m
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("never logged %q; logged:\n%s", words, strings.Join(l.msgs, "\n"))
		}
	}
}

// startS3 starts versitygw (POSIX backend) with bucket "rec" and returns
// its address and folder.
func startS3(t *testing.T) (addr, dir string) {
	t.Helper()
	bin := gatewaytest.Tool(t, "versitygw", "`make test` installs it")
	addr, dir = gatewaytest.FreeAddr(t), t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rec"), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--access", "rr-access", "--secret", "rr-secret-key", "--port", addr, "posix", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	gatewaytest.WaitPort(t, addr)
	return addr, dir
}

// TestUploadWaitsForRecovery: a gateway that died during start-up
// recovery, after marking its sessions interrupted but before sealing
// their files, left rows with no size or SHA-256. The uploader leaves such
// a file alone; once the next start has recovered (gateway's
// TestRecoverSessions checks what that does to rows and files), it goes
// up, checked against the row, and so does the file of a session still
// marked live.
func TestUploadWaitsForRecovery(t *testing.T) {
	s3addr, s3dir := startS3(t)
	t.Setenv("RR_TEST_S3_SECRET", "rr-secret-key")
	c := defaultConfig()
	c.Recordings.Spool = filepath.Join(t.TempDir(), "spool")
	c.Recordings.S3 = fileS3{Bucket: "rec", Endpoint: "http://" + s3addr, Region: "us-east-1", Prefix: "r/", PathStyle: true,
		AccessKeyID: "rr-access", SecretAccessKeyEnv: "RR_TEST_S3_SECRET"}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	spool, err := recorder.NewSpool(recorder.SpoolConfig{Dir: c.Recordings.Spool, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	ctx := context.Background()

	// Two sessions recorded by a run that was killed: "cut" was marked
	// interrupted by the next start, which died before sealing its file;
	// "live" is still marked live.
	for _, id := range []string{"cut", "live"} {
		if err := st.CreateSession(ctx, store.Session{ID: id, Person: "alice", Host: "web-01", State: store.StateLive, Started: time.Now()}); err != nil {
			t.Fatal(err)
		}
		rec, err := spool.Create(id, "pp", recorder.Header{SessionID: id})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetSessionRecording(ctx, id, spool.Path(id), 0, ""); err != nil {
			t.Fatal(err)
		}
		rec.Output([]byte("output of " + id))
		rec.Close(recorder.End{})
		if id == "cut" {
			if _, err := st.InterruptLiveSessions(ctx, "gw", time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}

	// upload runs the uploader until it has logged, for each of waits, a
	// message holding every one of its words, and returns the last.
	upload := func(waits ...[]string) (msg string) {
		t.Helper()
		logs := newLogWatch()
		up, _, _, err := c.uploader(ctx, spool, st, slog.New(logs))
		if err != nil {
			t.Fatal(err)
		}
		uctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); up.Run(uctx) }()
		defer func() { cancel(); <-done }()
		for _, words := range waits {
			msg = logs.wait(t, words...)
		}
		return msg
	}

	// Before recovery: "cut" is over but has no digest: it stays.
	if msg := upload([]string{"session=cut"}); !strings.Contains(msg, "no size and SHA-256 noted") {
		t.Errorf("before recovery, the uploader logged %q", msg)
	}
	if _, err := os.Stat(spool.Path("cut")); err != nil {
		t.Fatalf("a recording with no SHA-256 in its row left the spool: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s3dir, "rec", "r", "cut.gz")); !os.IsNotExist(err) {
		t.Fatalf("a recording with no SHA-256 in its row was uploaded: %v", err)
	}

	// The next start.
	if err := gateway.RecoverSessions(ctx, "gw", st, spool, nil, slog.New(newLogWatch())); err != nil {
		t.Fatal(err)
	}

	// Now both go up, checked against their rows, and leave the spool.
	upload([]string{"recording uploaded", "session=cut"}, []string{"recording uploaded", "session=live"})
	for _, id := range []string{"cut", "live"} {
		sess, _ := st.Session(ctx, id)
		obj, err := os.ReadFile(filepath.Join(s3dir, "rec", "r", id+".gz"))
		sum := sha256.Sum256(obj)
		if err != nil || sess.Recording != "s3://rec/r/"+id+".gz" || hex.EncodeToString(sum[:]) != sess.RecordingSHA256 {
			t.Fatalf("%s: row %+v, object %d bytes (%v)", id, sess, len(obj), err)
		}
		if _, err := os.Stat(spool.Path(id)); !os.IsNotExist(err) {
			t.Fatalf("%s still in the spool: %v", id, err)
		}
	}
}

// TestBucketCheckedAtStart: a wrong bucket, key or endpoint stops the
// start with an error naming it, before any session; the right ones pass.
func TestBucketCheckedAtStart(t *testing.T) {
	s3addr, _ := startS3(t)
	t.Setenv("RR_TEST_S3_SECRET", "rr-secret-key")
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	spool, err := recorder.NewSpool(recorder.SpoolConfig{Dir: t.TempDir(), FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	good := fileS3{Bucket: "rec", Endpoint: "http://" + s3addr, Region: "us-east-1", Prefix: "r/", PathStyle: true,
		AccessKeyID: "rr-access", SecretAccessKeyEnv: "RR_TEST_S3_SECRET"}
	for _, tc := range []struct {
		name string
		edit func(*fileS3)
	}{
		{"the right bucket", func(*fileS3) {}},
		{"no such bucket", func(s *fileS3) { s.Bucket = "nope" }},
		{"a wrong key", func(s *fileS3) { s.AccessKeyID = "someone-else" }},
		{"nothing listening", func(s *fileS3) { s.Endpoint = "http://" + gatewaytest.FreeAddr(t) }},
	} {
		c := defaultConfig()
		c.Recordings.S3 = good
		tc.edit(&c.Recordings.S3)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		up, _, _, err := c.uploader(ctx, spool, st, slog.New(slog.DiscardHandler))
		cancel()
		if ok := tc.name == "the right bucket"; (err == nil) != ok || (ok && up == nil) {
			t.Errorf("%s: uploader %v, err %v", tc.name, up != nil, err)
		}
	}
}
