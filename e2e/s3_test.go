package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/internal/rrtest"
	"github.com/rr-gateway/rr/internal/sshkit"
	"github.com/rr-gateway/rr/store"
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
	bin := ""
	if p, err := exec.LookPath("versitygw"); err == nil {
		bin = p
	} else if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		bin = filepath.Join(strings.TrimSpace(string(out)), "bin", "versitygw")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatal("versitygw is not installed; `make test` installs it")
	}
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
	waitPort(s.t, s.addr)
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
	bin := buildBinaries(t)
	mp := startMailpit(t)
	s3 := startS3(t, "rec")
	dir := t.TempDir()
	alice := rrtest.NewKey(t, "alice")
	agentKey := rrtest.NewKey(t, "agent")
	verifier, _ := auth.HashSecret("pp-web-01")
	people, agents := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfgPath := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`listen: %s
agent_listen: %s
host_key: %s/host_key
database: %s/rr.db
log: {format: text, level: debug}
recordings:
  spool: %s/spool
  s3: {bucket: rec, endpoint: "http://%s", path_style: true, prefix: "r/", access_key_id: rr-access, secret_access_key_env: RR_TEST_S3_SECRET}
mail: {mode: smtp, from: rr@gateway.test, smtp: {host: 127.0.0.1, port: %d, tls: none}}
people: [{name: alice, email: %s, role: advanced, key_files: [%s.pub]}]
teams: [{name: ops_RR, rapid_response: true, members: [alice], hosts: ["*"]}]
hosts: [{name: web-01, passphrase_verifier: '%s', agent_key_file: %s.pub}]
`, people, agents, dir, dir, dir, s3.addr, mp.SMTPPort, aliceMail, alice.Path, verifier, agentKey.Path)), 0o600)
	logPath := filepath.Join(dir, "gateway.log")
	start := func() *exec.Cmd {
		g := exec.Command(filepath.Join(bin, "rr-gateway"), "-config", cfgPath)
		g.Env = append(os.Environ(), "RR_TEST_S3_SECRET=rr-secret-key")
		logf, _ := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		g.Stdout, g.Stderr = logf, logf
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Process.Kill(); g.Wait(); logf.Close() })
		waitPort(t, people)
		return g
	}
	gw := start()
	fp, _ := exec.Command(filepath.Join(bin, "rr-gateway"), "fingerprint", "-config", cfgPath).Output()
	rrtest.StartAgent(t, &rrtest.Gateway{AgentAddr: agents, Fingerprint: strings.TrimSpace(string(fp))}, "web-01", agentKey, nil)
	hostKey, _ := sshkit.LoadOrCreateKey(filepath.Join(dir, "host_key"))
	host, port, _ := net.SplitHostPort(people)
	known := filepath.Join(dir, "known_hosts")
	os.WriteFile(known, []byte(fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(hostKey.PublicKey()))), 0o644)
	w := &world{mail: mp, alice: alice, log: filepath.Join(dir, "askpass.log"), logLevel: "ERROR",
		gw: &rrtest.Gateway{PeopleAddr: people, KnownHosts: known}}

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
				b, _ := os.ReadFile(logPath)
				t.Fatalf("no session: %q\n%s", out, b)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	st, err := store.Open(filepath.Join(dir, "rr.db"))
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
				b, _ := os.ReadFile(logPath)
				t.Fatalf("not uploaded: rows %+v, spool %v\n%s", rows, spooled, b)
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
	start()
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
}
