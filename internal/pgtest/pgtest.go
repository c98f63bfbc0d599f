// Package pgtest runs a throwaway PostgreSQL server for tests, the load
// run and `make demo-ha`: initdb in a fresh folder, postgres on 127.0.0.1
// on a port the OS picked, as an unprivileged user when run as root
// (PostgreSQL refuses root: the postgres user Debian's package creates),
// with a password login for one superuser. One server per test binary
// (TestMain), a fresh database per test (DB).
//
// Must not: install PostgreSQL (scripts/test.sh does), or import rr's own
// packages.
package pgtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running throwaway PostgreSQL.
type Server struct {
	Dir      string // the cluster's folder (data/ and the log)
	Port     int
	User     string
	Password string

	bin    string
	cred   *syscall.Credential
	cmd    *exec.Cmd
	done   chan struct{} // closed when the server process has exited
	ownDir bool

	mu  sync.Mutex
	dbs int
}

// Bin returns the folder of PostgreSQL's server programs (initdb,
// postgres): the newest under /usr/lib/postgresql, else the folder of
// initdb on PATH.
func Bin() (string, error) {
	if vs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(vs) > 0 {
		sort.Slice(vs, func(i, j int) bool { return version(vs[i]) < version(vs[j]) })
		return filepath.Dir(vs[len(vs)-1]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL's server is not installed (Debian: apt-get install postgresql)")
}

func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// Start creates a cluster in dir ("" for a new temporary folder, removed
// by Stop) and starts it. A dir that holds a cluster already is started
// as it is (the demo's state survives).
func Start(ctx context.Context, dir string) (*Server, error) {
	bin, err := Bin()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, User: "rr"}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("pgtest: running as root needs the postgres user (Debian's postgresql package makes it)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if dir == "" {
		// Under /tmp, not a test's TempDir: the server's user must reach it.
		if dir, err = os.MkdirTemp("", "rr-pg-"); err != nil {
			return nil, err
		}
		s.ownDir = true
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s.Dir = dir
	if err := s.init(ctx); err != nil {
		s.remove()
		return nil, err
	}
	if err := s.start(ctx, 0); err != nil {
		s.remove()
		return nil, err
	}
	return s, nil
}

func (s *Server) init(ctx context.Context) error {
	pwFile := filepath.Join(s.Dir, "password")
	if b, err := os.ReadFile(pwFile); err == nil {
		s.Password = strings.TrimSpace(string(b))
		return nil // initialized before
	}
	b := make([]byte, 16)
	rand.Read(b)
	s.Password = hex.EncodeToString(b)
	if err := os.WriteFile(pwFile, []byte(s.Password+"\n"), 0o600); err != nil {
		return err
	}
	if err := s.chown(s.Dir, pwFile); err != nil {
		return err
	}
	cmd := s.command(ctx, "initdb", "-D", filepath.Join(s.Dir, "data"), "-U", s.User, "--pwfile="+pwFile,
		"--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	return nil
}

// start starts the server on port (0: one the OS picks) and waits until
// it accepts connections.
func (s *Server) start(ctx context.Context, port int) error {
	for attempt := 0; ; attempt++ {
		p := port
		if p == 0 {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			p = ln.Addr().(*net.TCPAddr).Port
			ln.Close()
		}
		err := s.run(ctx, p)
		if err == nil {
			s.Port = p
			return nil
		}
		// Another process may have taken the port between our close and
		// the server's bind: pick again.
		if port != 0 || attempt == 3 {
			return err
		}
	}
}

func (s *Server) run(ctx context.Context, port int) error {
	// Durability off: a test server is thrown away (never for the demo's
	// data, which is thrown away too).
	cmd := s.command(context.WithoutCancel(ctx), "postgres", "-D", filepath.Join(s.Dir, "data"),
		"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port), "-c", "unix_socket_directories="+s.Dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300")
	// Its own process group: a Ctrl-C to the terminal's group must not
	// stop it before the gateways on it (it stops when Stop, or its
	// parent's death, says so).
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	logf, err := os.OpenFile(filepath.Join(s.Dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = logf, pw
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("pgtest: postgres: %w", err)
	}
	ready := make(chan struct{})
	var mu sync.Mutex
	var tail []string // the log until ready, for the error if it never is
	go func() {       // copies the log until the server exits; says when it is ready
		sc := bufio.NewScanner(pr)
		waiting := true
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if waiting {
				mu.Lock()
				tail = append(tail, line)
				mu.Unlock()
				if strings.Contains(line, "ready to accept connections") {
					close(ready)
					waiting = false
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		pw.Close()
		logf.Close()
		close(done)
	}()
	select {
	case <-ready:
		s.cmd, s.done = cmd, done
		return nil
	case <-done:
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("pgtest: postgres exited: %s", strings.Join(tail, "\n"))
	case <-ctx.Done():
		cmd.Process.Signal(syscall.SIGQUIT)
		<-done
		return ctx.Err()
	}
}

func (s *Server) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, prog), args...)
	cmd.Dir = s.Dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

func (s *Server) chown(paths ...string) error {
	if s.cred == nil {
		return nil
	}
	for _, p := range paths {
		if err := os.Chown(p, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return err
		}
	}
	return nil
}

// DSN returns the URL of database db on the server (password included).
func (s *Server) DSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(s.User, s.Password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateDB creates a new, empty database and returns its DSN.
func (s *Server) CreateDB(ctx context.Context) (string, error) {
	s.mu.Lock()
	s.dbs++
	name := fmt.Sprintf("rr_%d", s.dbs)
	s.mu.Unlock()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.DSN(name), nil
}

// Stop shuts the server down (fast: sessions are cut) and waits for it.
func (s *Server) Stop() error {
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	<-s.done
	s.cmd = nil
	return nil
}

// Restart starts the stopped server again on the same port.
func (s *Server) Restart(ctx context.Context) error {
	if s.cmd != nil {
		return errors.New("pgtest: the server is running")
	}
	return s.start(ctx, s.Port)
}

// Close stops the server and removes its folder if Start made it.
func (s *Server) Close() error {
	err := s.Stop()
	s.remove()
	return err
}

func (s *Server) remove() {
	if s.ownDir {
		os.RemoveAll(s.Dir)
	}
}

// deadline bounds a test binary's wait for its server.
const deadline = 60 * time.Second
