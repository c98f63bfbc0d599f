package download

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/internal/testtool"
)

// openSSH is a minimal SSH server in front of a Server, for driving it with
// the real scp and sftp binaries: gliderlabs/ssh, since all it needs is a
// key check, a subsystem and an exec handler.
type openSSH struct {
	addr, port string
	key        string // the client's private key file
}

// startOpenSSH serves f's Server on 127.0.0.1:0: the "sftp" subsystem and
// scp exec requests, for one client key.
func startOpenSSH(t *testing.T, f *fixture) *openSSH {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	clientPub, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	allowed, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}

	// gliderlabs waits for connections, not for their handlers: track them,
	// and start none once the test is over.
	var mu sync.Mutex
	var handlers sync.WaitGroup
	closed := false
	enter := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if !closed {
			handlers.Add(1)
		}
		return !closed
	}
	srv := &gliderssh.Server{
		HostSigners: []gliderssh.Signer{hostKey},
		// Set, so that "none" and every other key are refused: without an
		// auth handler gliderlabs lets everyone in (TestOpenSSHServerRefuses).
		PublicKeyHandler: func(_ gliderssh.Context, key gliderssh.PublicKey) bool {
			return gliderssh.KeysEqual(key, allowed)
		},
		Handler: func(s gliderssh.Session) {
			if !enter() {
				return
			}
			defer handlers.Done()
			if !IsSCP(s.RawCommand()) {
				fmt.Fprintln(s.Stderr(), "scp and sftp only")
				s.Exit(1)
				return
			}
			s.Exit(f.srv.ServeSCP(s.Context(), s.RawCommand(), s, s.Stderr()))
		},
		SubsystemHandlers: map[string]gliderssh.SubsystemHandler{
			"sftp": func(s gliderssh.Session) {
				if !enter() {
					return
				}
				defer handlers.Done()
				if f.srv.ServeSFTP(s.Context(), s) != nil {
					s.Exit(1)
					return
				}
				s.Exit(0)
			},
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-served
		mu.Lock()
		closed = true
		mu.Unlock()
		handlers.Wait()
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &openSSH{addr: "127.0.0.1", port: port, key: keyFile}
}

// run runs an OpenSSH tool against the server and returns its combined output.
func (o *openSSH) run(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	portFlag := "-P"
	common := []string{"-F", "none", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-i", o.key, portFlag, o.port}
	cmd := exec.CommandContext(t.Context(), tool, append(common, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (o *openSSH) remote(p string) string { return "rr@" + o.addr + ":" + p }

// TestOpenSSHServerRefuses: the gliderlabs server above lets in only its
// one key: not "none", not another key, not a password.
func TestOpenSSHServerRefuses(t *testing.T) {
	o := startOpenSSH(t, newFixture(t))
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewSignerFromKey(otherPriv)
	pemKey, err := os.ReadFile(o.key)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := ssh.ParsePrivateKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		auth []ssh.AuthMethod
		ok   bool
	}{
		{"none", nil, false},
		{"unknown key", []ssh.AuthMethod{ssh.PublicKeys(other)}, false},
		{"password", []ssh.AuthMethod{ssh.Password("x")}, false},
		{"its key", []ssh.AuthMethod{ssh.PublicKeys(mine)}, true},
	} {
		c, err := ssh.Dial("tcp", net.JoinHostPort(o.addr, o.port), &ssh.ClientConfig{User: "rr", Auth: tt.auth,
			HostKeyCallback: ssh.InsecureIgnoreHostKey()})
		if err == nil {
			c.Close()
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s: login error %v, want success %v", tt.name, err, tt.ok)
		}
	}
}

func TestOpenSSHClients(t *testing.T) {
	testtool.Need(t, "ssh", "scp", "sftp")
	f := newFixture(t)
	o := startOpenSSH(t, f)
	dir := t.TempDir()

	for _, mode := range []string{"-s", "-O"} { // SFTP, legacy
		t.Run("scp "+mode, func(t *testing.T) {
			dst := filepath.Join(dir, "got"+mode)
			if out, err := o.run(t, "scp", mode, "-p", o.remote("recordings/s1.gz"), dst); err != nil {
				t.Fatalf("scp: %v\n%s", err, out)
			}
			got, err := os.ReadFile(dst)
			if err != nil || !bytes.Equal(got, f.goodData) {
				t.Fatalf("downloaded %d bytes (%v), want the %d stored", len(got), err, len(f.goodData))
			}
			if fi, _ := os.Stat(dst); !fi.ModTime().Equal(f.good.Started) {
				t.Errorf("mtime %v, want %v", fi.ModTime(), f.good.Started)
			}

			out, err := o.run(t, "scp", mode, o.remote("recordings/s9.gz"), dir)
			if err == nil || !strings.Contains(out, legacyOr(mode, liveText, "Permission denied")) {
				t.Errorf("scp of a live session: %v\n%s", err, out)
			}
			out, err = o.run(t, "scp", mode, o.remote("recordings/s3.gz"), dir)
			if err == nil || !strings.Contains(out, legacyOr(mode, "integrity check", "Failure")) {
				t.Errorf("scp of a corrupt recording: %v\n%s", err, out)
			}
			if fi, err := os.Stat(filepath.Join(dir, "s3.gz")); err == nil && fi.Size() > 0 {
				t.Errorf("%d bytes of a corrupt recording reached the client's disk", fi.Size())
			}
			out, err = o.run(t, "scp", mode, filepath.Join(dir, "got"+mode), o.remote("recordings/"))
			if err == nil {
				t.Errorf("scp upload succeeded:\n%s", out)
			}
		})
	}

	t.Run("sftp", func(t *testing.T) {
		batch := filepath.Join(dir, "batch")
		dst := filepath.Join(dir, "small")
		os.WriteFile(batch, []byte("cd recordings\nls -1\nget "+f.small.Name()+" "+dst+"\n"), 0o600)
		out, err := o.run(t, "sftp", "-b", batch, "rr@"+o.addr)
		if err != nil {
			t.Fatalf("sftp: %v\n%s", err, out)
		}
		for _, e := range f.lib.entries {
			if !strings.Contains(out, e.Name()) {
				t.Errorf("ls does not list %s:\n%s", e.Name(), out)
			}
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, f.smallData) {
			t.Errorf("get fetched %q, want %q", got, f.smallData)
		}
	})

	var clean int
	for _, fe := range f.lib.fetches() {
		if fe.err == nil {
			clean++
		}
	}
	if clean != 3 {
		t.Errorf("Fetched reported %d clean downloads, want 3: %+v", clean, f.lib.fetches())
	}
}

// legacyOr is what the client shows: legacy scp prints the gateway's message,
// SFTP only the status code's text.
func legacyOr(mode, legacy, sftp string) string {
	if mode == "-O" {
		return legacy
	}
	return sftp
}
