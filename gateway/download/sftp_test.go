package download

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/pkg/sftp"
)

// startSFTP serves f's Server over a loopback TCP pair and returns a client
// and a function that waits for ServeSFTP's result.
func startSFTP(t *testing.T, ctx context.Context, f *fixture) (*sftp.Client, func() error) {
	t.Helper()
	cc, sc := tcpPair(t)
	done := make(chan error, 1)
	go func() { done <- f.srv.ServeSFTP(ctx, sc) }()
	wait := sync.OnceValue(func() error { return <-done })
	c, err := sftp.NewClientPipe(cc, cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if err := wait(); err != nil && ctx.Err() == nil {
			t.Errorf("ServeSFTP: %v", err)
		}
	})
	return c, wait
}

func TestSFTPList(t *testing.T) {
	f := newFixture(t)
	c, _ := startSFTP(t, context.Background(), f)

	root, err := c.ReadDir("/")
	if err != nil || len(root) != 1 || root[0].Name() != "recordings" || !root[0].IsDir() {
		t.Fatalf("ReadDir(/) = %v, %v; want the recordings directory", root, err)
	}
	for _, dir := range []string{"/recordings", "recordings", "./recordings/"} {
		list, err := c.ReadDir(dir)
		if err != nil {
			t.Fatalf("ReadDir(%q): %v", dir, err)
		}
		var names []string
		for _, fi := range list {
			names = append(names, fi.Name())
			if fi.Mode() != 0o444 {
				t.Errorf("%s: mode %v, want 0444", fi.Name(), fi.Mode())
			}
		}
		want := []string{f.small.Name(), f.good.Name(), f.bad.Name()}
		if len(names) != len(want) || names[0] != want[0] || names[1] != want[1] || names[2] != want[2] {
			t.Errorf("ReadDir(%q) = %v, want %v", dir, names, want)
		}
	}

	wd, err := c.Getwd()
	if err != nil || wd != "/" {
		t.Errorf("Getwd() = %q, %v; want /", wd, err)
	}
	for _, p := range []string{"recordings/s1.gz", "/recordings/" + f.good.Name()} {
		fi, err := c.Stat(p)
		if err != nil {
			t.Fatalf("Stat(%q): %v", p, err)
		}
		if fi.Size() != f.good.Size || fi.Mode() != 0o444 || !fi.ModTime().Equal(f.good.Started) {
			t.Errorf("Stat(%q) = size %d, mode %v, mtime %v", p, fi.Size(), fi.Mode(), fi.ModTime())
		}
	}
	if fi, err := c.Stat("/recordings"); err != nil || fi.Mode() != os.ModeDir|0o555 {
		t.Errorf("Stat(/recordings) = %v, %v; want a 0555 directory", fi, err)
	}
}

func TestSFTPDownload(t *testing.T) {
	f := newFixture(t)
	c, _ := startSFTP(t, context.Background(), f)

	for _, p := range []string{"recordings/s1.gz", "/recordings/" + f.good.Name()} {
		src, err := c.Open(p)
		if err != nil {
			t.Fatalf("Open(%q): %v", p, err)
		}
		var got bytes.Buffer
		if _, err := io.Copy(&got, src); err != nil {
			t.Fatalf("copy %q: %v", p, err)
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), f.goodData) {
			t.Fatalf("%s: downloaded %d bytes, not the %d stored", p, got.Len(), len(f.goodData))
		}
	}
	got := f.lib.fetches()
	if len(got) != 2 {
		t.Fatalf("Fetched called %d times, want 2: %v", len(got), got)
	}
	for _, fe := range got {
		if fe.id != "s1" || fe.via != "sftp" || fe.sent != f.good.Size || fe.err != nil {
			t.Errorf("Fetched(%+v), want s1 via sftp, %d bytes, nil", fe, f.good.Size)
		}
	}
}

func TestSFTPIntegrityFailure(t *testing.T) {
	f := newFixture(t)
	c, _ := startSFTP(t, context.Background(), f)
	// Refused at the open: no byte of it goes out.
	if src, err := c.Open("recordings/s3.gz"); err == nil || !strings.Contains(err.Error(), "integrity") {
		if err == nil {
			src.Close()
		}
		t.Fatalf("opening a corrupt recording: %v, want the integrity error", err)
	}
	got := f.lib.fetches()
	if len(got) != 1 || !errors.Is(got[0].err, ErrIntegrity) || got[0].sent != 0 {
		t.Errorf("Fetched = %+v, want one call with ErrIntegrity and nothing sent", got)
	}
}

func TestSFTPIncomplete(t *testing.T) {
	f := newFixture(t)
	c, _ := startSFTP(t, context.Background(), f)
	src, err := c.Open("recordings/s1.gz")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(src, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	src.Close()
	got := f.lib.fetches()
	if len(got) != 1 || got[0].err == nil || got[0].sent == 0 {
		t.Errorf("Fetched = %+v, want one call with an error and some bytes sent", got)
	}
}

func TestSFTPRefusals(t *testing.T) {
	f := newFixture(t)
	c, _ := startSFTP(t, context.Background(), f)
	denied := map[string]error{}
	_, denied["open live"] = c.Open("recordings/s9.gz")
	_, denied["create"] = c.Create("recordings/new.gz")
	_, denied["open for writing"] = c.OpenFile("recordings/s1.gz", os.O_WRONLY)
	denied["remove"] = c.Remove("recordings/s1.gz")
	denied["rename"] = c.Rename("recordings/s1.gz", "recordings/s2.gz")
	denied["posix rename"] = c.PosixRename("recordings/s1.gz", "recordings/s2.gz")
	denied["mkdir"] = c.Mkdir("recordings/x")
	denied["rmdir"] = c.RemoveDirectory("recordings")
	denied["chmod"] = c.Chmod("recordings/s1.gz", 0o666)
	denied["symlink"] = c.Symlink("recordings/s1.gz", "recordings/l")
	denied["link"] = c.Link("recordings/s1.gz", "recordings/l")
	_, denied["readlink"] = c.ReadLink("recordings/s1.gz")
	for what, err := range denied {
		if !errors.Is(err, os.ErrPermission) {
			t.Errorf("%s: %v, want permission denied", what, err)
		}
	}

	notFound := map[string]error{}
	_, notFound["stat traversal"] = c.Stat("../../etc/passwd")
	_, notFound["open traversal"] = c.Open("recordings/../../etc/passwd")
	_, notFound["open unknown"] = c.Open("/recordings/nope.gz")
	_, notFound["open wrong long name"] = c.Open("/recordings/s1_db-01_20261125T211000Z.gz")
	_, notFound["readdir elsewhere"] = c.ReadDir("/etc")
	_, notFound["stat unknown"] = c.Stat("/recordings/other.gz")
	for what, err := range notFound {
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want not found", what, err)
		}
	}
	// A live recording stats as an unreadable empty file, so that OpenSSH
	// goes on to open it and says "Permission denied", not "No such file".
	if fi, err := c.Stat("/recordings/s9.gz"); err != nil || fi.Mode() != 0 || fi.Size() != 0 {
		t.Errorf("Stat(live) = %v, %v; want an empty file with mode 0", fi, err)
	}
	if _, err := c.Open("recordings"); err == nil {
		t.Error("opening the directory as a file succeeded")
	}
	if got := f.lib.fetches(); len(got) != 0 {
		t.Errorf("Fetched called for refused requests: %+v", got)
	}
	// The refused reads are reported (to be audited), with the paths as
	// the client sent them (absolute, cleaned); a stat of a name in
	// recordings/ that does not resolve counts as one, other stats,
	// listings and writes do not.
	want := []string{
		"sftp /recordings/s9.gz: " + ErrLive.Error(),
		"sftp /etc/passwd: " + ErrNotFound.Error(),
		"sftp /recordings/nope.gz: " + ErrNotFound.Error(),
		"sftp /recordings/s1_db-01_20261125T211000Z.gz: " + ErrNotFound.Error(),
		"sftp /recordings/other.gz: " + ErrNotFound.Error(),
	}
	if got := f.lib.refusals(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Refused = %q, want %q", got, want)
	}
}

func TestSFTPEndsWithContext(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	c, wait := startSFTP(t, ctx, f)
	if _, err := c.Stat("/recordings"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("ServeSFTP after cancel = %v, want context.Canceled", err)
	}
}

// TestOpenHandlesAreBoundedPerConnection: directory listings held open
// and open recordings count together against maxOpen, across the Servers
// (channels) that share one connection's Handles; closing one frees its
// place.
func TestOpenHandlesAreBoundedPerConnection(t *testing.T) {
	f := newFixture(t)
	var conn Conn
	servers := make([]*Server, 2)
	for i := range servers {
		s, err := New(Config{Library: f.lib, Open: openFile, Logger: slog.New(slog.DiscardHandler), Conn: &conn})
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = s
	}
	list := func(s *Server) (sftp.ListerAt, error) {
		h := &sftpHandler{s: s, ctx: context.Background()}
		return h.Filelist(sftp.NewRequest("List", "/recordings"))
	}
	var dirs []sftp.ListerAt
	for i := range maxOpen - 1 {
		d, err := list(servers[i%2])
		if err != nil {
			t.Fatalf("listing %d: %v", i, err)
		}
		dirs = append(dirs, d)
	}
	h := &sftpHandler{s: servers[1], ctx: context.Background()}
	file, err := h.Fileread(sftp.NewRequest("Get", "/recordings/s2.gz"))
	if err != nil {
		t.Fatalf("the last handle, a recording: %v", err)
	}
	if _, err := list(servers[0]); !errors.Is(err, errBusy) {
		t.Fatalf("listing past %d open handles: %v, want errBusy", maxOpen, err)
	}
	if _, err := h.Fileread(sftp.NewRequest("Get", "/recordings/s1.gz")); !errors.Is(err, errBusy) {
		t.Fatalf("a recording past %d open handles: %v, want errBusy", maxOpen, err)
	}
	f.srv = servers[0] // scp on another channel of the connection
	if got, _, _ := runSCP(t, f, "scp -f recordings/s2.gz"); len(got) != 1 || !strings.Contains(got[0].err, "too many recordings open") {
		t.Fatalf("scp past %d open handles: %+v, want refused", maxOpen, got)
	}
	dirs[0].(io.Closer).Close()
	dirs[0].(io.Closer).Close() // twice frees one place only
	if _, err := list(servers[0]); err != nil {
		t.Fatalf("a listing after one was closed: %v", err)
	}
	if _, err := list(servers[1]); !errors.Is(err, errBusy) {
		t.Fatalf("a second listing after one was closed: %v, want errBusy", err)
	}
	file.(io.Closer).Close()
	if n := conn.handles.Load(); n != maxOpen-1 {
		t.Errorf("%d handles counted, want %d", n, maxOpen-1)
	}
}

// TestVerifiedOncePerConnection: a recording is read whole to verify it at
// its first open on a connection, not at every open (which would let a
// client make the gateway read a large file over and over).
func TestVerifiedOncePerConnection(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	var opens []int64
	counting := func(ctx context.Context, loc string, off int64) (io.ReadCloser, error) {
		mu.Lock()
		opens = append(opens, off)
		mu.Unlock()
		return openFile(ctx, loc, off)
	}
	s, err := New(Config{Library: f.lib, Open: counting, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h := &sftpHandler{s: s, ctx: context.Background()}
	for range 3 {
		file, err := h.Fileread(sftp.NewRequest("Get", "/recordings/s1.gz"))
		if err != nil {
			t.Fatal(err)
		}
		file.(io.Closer).Close()
	}
	if want := "[0 0 0 0]"; fmt.Sprint(opens) != want {
		t.Errorf("opened at %v, want %s: one pass to verify, then one stream per open", opens, want)
	}
}

// TestFailedReadIsNotACompleteDownload: a download whose read failed is
// reported failed even if its last bytes were sent afterwards (OpenSSH
// asks for them ahead, and is left with a file with a hole).
func TestFailedReadIsNotACompleteDownload(t *testing.T) {
	quickResumes(t)
	f := newFixture(t)
	var mu sync.Mutex
	opens := 0
	open := func(ctx context.Context, loc string, off int64) (io.ReadCloser, error) {
		rc, err := openFile(ctx, loc, off)
		mu.Lock()
		defer mu.Unlock()
		if opens++; err == nil && opens >= 2 && opens <= 2+maxResumes { // the stream after the check, and its resumes
			return &breaking{ReadCloser: rc}, nil
		}
		return rc, err
	}
	s, err := New(Config{Library: f.lib, Open: open, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h := &sftpHandler{s: s, ctx: context.Background()}
	file, err := h.Fileread(sftp.NewRequest("Get", "/recordings/s1.gz"))
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 32<<10)
	if _, err := file.ReadAt(p, 0); err == nil {
		t.Fatal("the first read did not fail")
	}
	last := f.good.Size - int64(len(p))
	if n, err := file.ReadAt(p, last); n != len(p) || (err != nil && err != io.EOF) {
		t.Fatalf("the last bytes: %d, %v", n, err)
	}
	file.(io.Closer).Close()
	if fe := f.lib.fetches(); len(fe) != 1 || fe[0].err == nil {
		t.Errorf("Fetched = %+v, want the failed read", fe)
	}
}

// ID.manifest is served beside ID.gz, to whoever may fetch the recording,
// as the bytes the Library holds; without one it does not exist.
func TestSFTPManifest(t *testing.T) {
	f := newFixture(t)
	manifest := []byte("rr-recording-manifest v1\nsession s1\n-----BEGIN SSH SIGNATURE-----\nx\n-----END SSH SIGNATURE-----\n")
	f.lib.manifests = map[string][]byte{"s1": manifest, "s9": manifest, "nobody": manifest}
	c, _ := startSFTP(t, context.Background(), f)
	src, err := c.Open("recordings/s1.manifest")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(src)
	src.Close()
	if err != nil || !bytes.Equal(got, manifest) {
		t.Fatalf("got %q, %v", got, err)
	}
	if fe := f.lib.fetches(); len(fe) != 1 || fe[0].id != "s1" || fe[0].sent != int64(len(manifest)) {
		t.Fatalf("fetched %+v", fe)
	}
	// A live session's is there, like its recording, but not to be read.
	if _, err := c.Open("recordings/s9.manifest"); err == nil {
		t.Error("a live session's manifest opened")
	}
	// No manifest, one of a recording not theirs to see (the Library does
	// not know it), a long name: none is there.
	for _, p := range []string{"recordings/s2.manifest", "recordings/nobody.manifest", "recordings/s1_web-01.manifest"} {
		if _, err := c.Stat(p); err == nil {
			t.Errorf("%s exists", p)
		}
	}
	if ls, err := c.ReadDir("recordings"); err != nil || len(ls) != 3 {
		t.Fatalf("listing %v, %v: manifests are not listed", ls, err)
	}
}
