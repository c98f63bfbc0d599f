package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
)

// TestOpenerRefusesLinksAndFIFOs: a local location opens a regular file
// only, not through a symbolic link.
func TestOpenerRefusesLinksAndFIFOs(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.gz")
	os.WriteFile(real, []byte("data"), 0o600)
	link := filepath.Join(dir, "link.gz")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.gz")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if rc, err := (Opener{}).Open(context.Background(), real, 1); err != nil {
		t.Fatalf("a regular file: %v", err)
	} else {
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "ata" {
			t.Fatalf("read %q from offset 1", b)
		}
	}
	for _, p := range []string{link, fifo} {
		if rc, err := (Opener{}).Open(context.Background(), p, 0); err == nil {
			rc.Close()
			t.Errorf("%s opened", filepath.Base(p))
		}
	}
}

// remote is a sink's reader for the tests: each location holds its text,
// and "bad" fails at the end as a checksum mismatch would.
type remote map[string]string

var errRemoteMismatch = errors.New("remote: checksum mismatch")

func (r remote) OpenLocation(_ context.Context, location string, offset int64) (io.ReadCloser, error) {
	text, ok := r[location]
	if !ok {
		return nil, fmt.Errorf("remote: no %s", location)
	}
	var tail io.Reader = strings.NewReader("")
	if strings.HasSuffix(location, "bad") {
		tail = iotest.ErrReader(errRemoteMismatch)
	}
	return io.NopCloser(io.MultiReader(strings.NewReader(text[offset:]), tail)), nil
}

// TestOpenerRoutesByScheme: one Opener reads a recording wherever the
// store says it is: a local path, or a remote's location by its scheme
// (from an offset on); a scheme with no remote is refused, and a remote's
// checksum failure reads as ErrCorrupt.
func TestOpenerRoutesByScheme(t *testing.T) {
	ctx := context.Background()
	local := filepath.Join(t.TempDir(), "s1.gz")
	os.WriteFile(local, []byte("local bytes"), 0o600)
	o := Opener{Remote: map[string]RemoteOpener{"s3": remote{"s3://rec/s2.gz": "remote bytes", "s3://rec/bad": "x"}},
		Corrupt: errRemoteMismatch}
	for loc, offset := range map[string]int64{local: 6, "s3://rec/s2.gz": 7} {
		rc, err := o.Open(ctx, loc, offset)
		if err != nil {
			t.Fatalf("%s: %v", loc, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != "bytes" {
			t.Errorf("%s: read %q %v", loc, b, err)
		}
	}
	if rc, err := o.Open(ctx, "gs://rec/s2.gz", 0); err == nil {
		rc.Close()
		t.Error("a location with no opener for its scheme opened")
	}
	if rc, err := (Opener{}).Open(ctx, "s3://rec/s2.gz", 0); err == nil {
		rc.Close()
		t.Error("the zero Opener opened a remote location")
	}
	rc, err := o.Open(ctx, "s3://rec/bad", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a remote's checksum failure read as %v, want ErrCorrupt", err)
	}
}
