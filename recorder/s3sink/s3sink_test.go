package s3sink

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/internal/testtool"
)

// versitygw is a real S3-compatible server (POSIX backend) on 127.0.0.1.
type versitygw struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
}

const (
	testAccess = "rr-test-access"
	testSecret = "rr-test-secret-key"
	testBucket = "recordings"
)

func binary(t *testing.T) string {
	t.Helper()
	return testtool.Path(t, "versitygw", "`make test` installs it (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
}

func startVersity(t *testing.T) *versitygw {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	v := &versitygw{t: t, addr: addr, dir: t.TempDir()}
	if err := os.Mkdir(filepath.Join(v.dir, testBucket), 0o700); err != nil {
		t.Fatal(err)
	}
	v.start()
	t.Cleanup(v.stop)
	return v
}

func (v *versitygw) start() {
	v.t.Helper()
	v.cmd = exec.Command(binary(v.t), "--access", testAccess, "--secret", testSecret, "--port", v.addr, "posix", v.dir)
	logf, _ := os.OpenFile(filepath.Join(v.t.TempDir(), "versitygw.log"), os.O_CREATE|os.O_WRONLY, 0o600)
	v.cmd.Stdout, v.cmd.Stderr = logf, logf
	if err := v.cmd.Start(); err != nil {
		v.t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", v.addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			v.t.Fatalf("versitygw did not start:\n%s", b)
		}
	}
}

func (v *versitygw) stop() {
	if v.cmd != nil && v.cmd.Process != nil {
		v.cmd.Process.Kill()
		v.cmd.Wait()
		v.cmd = nil
	}
}

func newSink(t *testing.T, v *versitygw, mod func(*Config)) *Sink {
	t.Helper()
	cfg := Config{Endpoint: "http://" + v.addr, Region: "us-east-1", Bucket: testBucket, Prefix: "rec/", PathStyle: true,
		AccessKeyID: testAccess, SecretAccessKey: testSecret, Timeout: 10 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// file writes n random bytes and returns the path and its SHA-256.
func file(t *testing.T, n int) (string, string) {
	b := make([]byte, n)
	rand.Read(b)
	p := filepath.Join(t.TempDir(), "f.gz")
	os.WriteFile(p, b, 0o600)
	sum := sha256.Sum256(b)
	return p, hex.EncodeToString(sum[:])
}

func roundTrip(t *testing.T, s *Sink, name string, n int) {
	t.Helper()
	ctx := context.Background()
	path, sum := file(t, n)
	if err := s.Upload(ctx, name, path, int64(n), sum); err != nil {
		t.Fatalf("upload %d bytes: %v", n, err)
	}
	// Found again (the check after a crash between upload and Moved).
	if err := s.Verify(ctx, name, path, int64(n), sum); err != nil {
		t.Fatalf("verify: %v", err)
	}
	body, size, err := s.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	got, _ := io.ReadAll(body)
	want, _ := os.ReadFile(path)
	if size != int64(n) || !bytes.Equal(got, want) {
		t.Fatalf("downloaded %d bytes differ from the %d uploaded", len(got), n)
	}
}

func TestUploadVerifyDownload(t *testing.T) {
	v := startVersity(t)
	s := newSink(t, v, func(c *Config) { c.MultipartThreshold = 5 << 20; c.PartSize = 5 << 20 })
	ctx := context.Background()
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s, "small.gz", 1000)
	roundTrip(t, s, "large.gz", 12<<20) // multipart: three parts
	if _, err := os.Stat(filepath.Join(v.dir, testBucket, "rec", "large.gz")); err != nil {
		t.Fatalf("not stored under the prefix: %v", err)
	}

	// Never overwritten.
	path, sum := file(t, 500)
	if err := s.Upload(ctx, "small.gz", path, 500, sum); !errors.Is(err, ErrExists) {
		t.Fatalf("second upload under a name: %v", err)
	}
	if err := s.Verify(ctx, "small.gz", path, 500, sum); !errors.Is(err, ErrMismatch) {
		t.Fatalf("another file verified as the object: %v", err)
	}
	if r, size, err := s.Open(ctx, "small.gz"); err != nil || size != 1000 {
		t.Fatalf("the object was replaced: %d bytes, %v", size, err)
	} else {
		r.Close()
	}
	// A multipart object is told from another file of its size.
	path, sum = file(t, 12<<20)
	if err := s.Verify(ctx, "large.gz", path, 12<<20, sum); !errors.Is(err, ErrMismatch) {
		t.Fatalf("another file verified as a multipart object: %v", err)
	}
	if err := s.Verify(ctx, "missing.gz", path, 12<<20, sum); !errors.Is(err, ErrNotFound) {
		t.Fatalf("verify a missing object: %v", err)
	}
	// A wrong digest is caught.
	path, _ = file(t, 300)
	if err := s.Upload(ctx, "bad.gz", path, 300, strings.Repeat("0", 64)); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong digest: %v", err)
	}
	if _, _, err := s.Open(ctx, "missing.gz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing object: %v", err)
	}

	// Downloads stream a location from an offset (a ranged GET).
	r, _, err := s.Open(ctx, "large.gz")
	if err != nil {
		t.Fatal(err)
	}
	whole, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1, 7 << 20, 12<<20 - 1} {
		r, err := s.OpenLocation(ctx, s.Location("large.gz"), off)
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, whole[off:]) {
			t.Fatalf("offset %d: %d bytes, err %v; want the last %d", off, len(got), err, len(whole)-int(off))
		}
	}
	if _, err := s.OpenLocation(ctx, s.Location("missing.gz"), 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing location: %v", err)
	}
	if _, err := s.OpenLocation(ctx, "s3://other-bucket/rec/large.gz", 0); err == nil {
		t.Fatal("a location in another bucket was opened")
	}
}

func TestWrongCredentials(t *testing.T) {
	v := startVersity(t)
	s := newSink(t, v, func(c *Config) { c.SecretAccessKey = "not-the-secret" })
	ctx := context.Background()
	if err := s.Check(ctx); err == nil {
		t.Fatal("wrong secret accepted by Check")
	}
	path, sum := file(t, 100)
	if err := s.Upload(ctx, "x.gz", path, 100, sum); err == nil || errors.Is(err, ErrExists) {
		t.Fatalf("upload with a wrong secret: %v", err)
	}
}

func TestServerDownThenBack(t *testing.T) {
	v := startVersity(t)
	s := newSink(t, v, func(c *Config) { c.Timeout = 3 * time.Second })
	v.stop()
	path, sum := file(t, 2000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Upload(ctx, "later.gz", path, 2000, sum); err == nil {
		t.Fatal("upload succeeded with the server down")
	}
	if d := time.Since(start); d > 25*time.Second {
		t.Fatalf("a down server took %v to fail", d)
	}
	v.start()
	if err := s.Upload(ctx, "later.gz", path, 2000, sum); err != nil {
		t.Fatalf("upload after the server came back: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := New(context.Background(), Config{Endpoint: "ftp://x", AccessKeyID: "a", PartSize: 1})
	for _, want := range []string{"region", "bucket", "access key", "endpoint", "part size"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %q", err, want)
		}
	}
	_ = fmt.Sprint
}

// TestMultipartUploadMemory: a multipart upload holds a few parts in
// memory, not the file nor a threshold's worth of it: transfermanager
// copies each part into a buffer (the old manager read parts straight
// from the file), so its threshold is kept at one part.
func TestMultipartUploadMemory(t *testing.T) {
	v := startVersity(t)
	const part = 5 << 20
	s := newSink(t, v, func(c *Config) { c.MultipartThreshold = 4 * part; c.PartSize = part })
	path, sum := file(t, 10*part)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	done, peak := make(chan struct{}), make(chan uint64, 1)
	go func() {
		var m runtime.MemStats
		var top uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				peak <- top
				return
			case <-tick.C:
				runtime.ReadMemStats(&m)
				top = max(top, m.HeapInuse)
			}
		}
	}()
	err := s.Upload(context.Background(), "big.gz", path, 10*part, sum)
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	top := <-peak
	if grew := top - min(base.HeapInuse, top); grew > 8*part {
		t.Fatalf("the heap grew by %d MiB uploading a %d MiB file in %d MiB parts; want at most 8 parts",
			grew>>20, 10*part>>20, part>>20)
	}
}
