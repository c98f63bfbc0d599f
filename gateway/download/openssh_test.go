package download

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// openSSH is a minimal SSH server in front of a Server, for driving it with
// the real scp and sftp binaries.
type openSSH struct {
	addr, port string
	key        string // the client's private key file
}

// startOpenSSH serves f's Server on 127.0.0.1:0: the "sftp" subsystem and
// scp exec requests, for one client key. It fails the test when scp, sftp
// or ssh is missing (make test installs them; a skip would hide that).
func startOpenSSH(t *testing.T, f *fixture) *openSSH {
	t.Helper()
	for _, bin := range []string{"ssh", "scp", "sftp"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed: make test (scripts/test.sh) installs it", bin)
		}
	}
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
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), allowed.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(hostKey)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { serveSSHConn(ctx, f.srv, c, cfg) })
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &openSSH{addr: "127.0.0.1", port: port, key: keyFile}
}

// serveSSHConn serves one connection's session channels.
func serveSSHConn(ctx context.Context, srv *Server, c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Go(func() { serveSession(ctx, srv, ch, reqs) })
	}
}

// serveSession hands the "sftp" subsystem or an scp exec to srv.
func serveSession(ctx context.Context, srv *Server, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		var arg struct{ Value string }
		ssh.Unmarshal(req.Payload, &arg)
		status := 0
		switch {
		case req.Type == "subsystem" && arg.Value == "sftp":
			req.Reply(true, nil)
			if srv.ServeSFTP(ctx, ch) != nil {
				status = 1
			}
		case req.Type == "exec" && IsSCP(arg.Value):
			req.Reply(true, nil)
			status = srv.ServeSCP(ctx, arg.Value, ch, ch.Stderr())
		default:
			req.Reply(false, nil)
			continue
		}
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
		go ssh.DiscardRequests(reqs)
		return
	}
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

func TestOpenSSHClients(t *testing.T) {
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
