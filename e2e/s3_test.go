package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/internal/testtool"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// s3server is versitygw (POSIX backend) on 127.0.0.1, restartable on the
// same address and folder.
type s3server struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
}

func startS3(t *testing.T, bucket string) *s3server {
	t.Helper()
	bin := gatewaytest.Tool(t, "versitygw", "`make test` installs it")
	s := &s3server{t: t, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), dir: t.TempDir()}
	os.Mkdir(filepath.Join(s.dir, bucket), 0o700)
	s.cmd = exec.Command(bin, "--access", "rr-access", "--secret", "rr-secret-key", "--port", s.addr, "posix", s.dir)
	s.up()
	t.Cleanup(s.down)
	return s
}

func (s *s3server) up() {
	s.t.Helper()
	cmd := exec.Command(s.cmd.Path, s.cmd.Args[1:]...)
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = cmd
	gatewaytest.WaitPort(s.t, s.addr)
}

func (s *s3server) down() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// TestRecordingsGoToS3: closed recordings are uploaded, verified, and
// removed from the spool; with the S3 server down they wait in the spool,
// across a gateway restart, and go up once it is back.
func TestRecordingsGoToS3(t *testing.T) {
	testtool.Need(t, "gzip", "openssl")
	s3 := startS3(t, "rec")
	g, gw := startProcGateway(t, fmt.Sprintf(`recordings:
  spool: '{{dir}}/spool'
  s3: {bucket: rec, endpoint: "http://%s", path_style: true, prefix: "r/", access_key_id: rr-access, secret_access_key_env: RR_TEST_S3_SECRET}
`, s3.addr), "RR_TEST_S3_SECRET=rr-secret-key")
	w, dir := g.w, g.dir

	session := func(word string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := 0; ; i++ { // the agent may still be dialling
			cmd := exec.CommandContext(ctx, "ssh", w.sshArgs("rr+web-01@127.0.0.1", "echo "+word)...)
			cmd.Env = w.answers(t, nil)
			out, _ := cmd.Output()
			if string(out) == word+"\n" {
				return
			}
			if i == 50 {
				t.Fatalf("no session: %q\n%s", out, g.log())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	st, err := sqlite.Open(filepath.Join(dir, "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// uploaded waits until every session's recording is in the bucket and
	// has left the spool, and returns the sessions.
	uploaded := func(n int) []store.Session {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for {
			rows, _ := st.Sessions(context.Background(), store.SessionFilter{})
			spooled, _ := filepath.Glob(filepath.Join(dir, "spool", "*.gz"))
			done := len(rows) == n && len(spooled) == 0
			for _, r := range rows {
				done = done && r.Recording == "s3://rec/r/"+r.ID+".gz"
			}
			if done {
				return rows
			}
			if time.Now().After(deadline) {
				t.Fatalf("not uploaded: rows %+v, spool %v\n%s", rows, spooled, g.log())
			}
			time.Sleep(50 * time.Millisecond) // the gateway is another process
		}
	}
	session("first")
	rows := uploaded(1)
	obj := filepath.Join(s3.dir, "rec", "r", rows[0].ID+".gz")
	plain, err := exec.Command("bash", "-c", `set -o pipefail; gzip -dc "$1" | openssl enc -d -aes-256-ctr -pbkdf2 -k pp-web-01`, "x", obj).Output()
	if err != nil || !strings.Contains(string(plain), `"o", "first\n"`) {
		t.Fatalf("the object does not decrypt to the session: %v %q", err, plain)
	}

	// The S3 server goes away: the next recording waits in the spool, also
	// across a gateway restart, and goes up once the server is back.
	s3.down()
	session("second")
	spooled, _ := filepath.Glob(filepath.Join(dir, "spool", "*.gz"))
	if len(spooled) != 1 {
		t.Fatalf("with S3 down the spool holds %v", spooled)
	}
	gw.Process.Signal(syscall.SIGTERM)
	gw.Wait()
	if _, err := os.Stat(spooled[0]); err != nil {
		t.Fatal("the pending recording was lost at shutdown")
	}
	s3.up()
	g.start()
	rows = uploaded(2)
	for _, r := range rows {
		if r.RecordingSize == 0 || len(r.RecordingSHA256) != 64 {
			t.Fatalf("row %+v", r)
		}
		b, err := os.ReadFile(filepath.Join(s3.dir, "rec", "r", r.ID+".gz"))
		if err != nil || int64(len(b)) != r.RecordingSize {
			t.Fatalf("object of %s: %d bytes, %v", r.ID, len(b), err)
		}
	}

	// Downloads stream from the bucket (the spool is empty), with both
	// scp protocols, byte for byte.
	stored, _ := os.ReadFile(filepath.Join(s3.dir, "rec", "r", rows[0].ID+".gz"))
	alice := someone{"alice", w.alice, aliceMail}
	for _, mode := range [][]string{nil, {"-O"}} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		dst := filepath.Join(t.TempDir(), "got.gz")
		out, err := w.tool(t, ctx, alice, "scp", append(mode, "rr@127.0.0.1:recordings/"+rows[0].ID+".gz", dst)...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("scp %v from S3: %v: %s\n%s", mode, err, out, g.log())
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, stored) {
			t.Fatalf("scp %v from S3: %d bytes, not the object's %d", mode, len(got), len(stored))
		}
	}
	// A tampered object is refused, not served.
	obj = filepath.Join(s3.dir, "rec", "r", rows[1].ID+".gz")
	b, _ := os.ReadFile(obj)
	b[len(b)/2] ^= 1
	os.WriteFile(obj, b, 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := w.tool(t, ctx, alice, "scp", "-O", "rr@127.0.0.1:recordings/"+rows[1].ID+".gz", t.TempDir()+"/bad.gz").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "integrity") {
		t.Fatalf("a tampered object was served: %v %s\n%s", err, out, g.log())
	}
}
