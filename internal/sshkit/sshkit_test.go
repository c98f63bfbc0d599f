package sshkit

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode(), err)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(k1.PublicKey().Marshal()) != string(k2.PublicKey().Marshal()) {
		t.Fatal("second load made a new key")
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, err := LoadOrCreateKey(bad); err == nil {
		t.Fatal("garbage key accepted")
	}
	if b, _ := os.ReadFile(bad); string(b) != "not a key" {
		t.Fatal("a bad key file was overwritten")
	}
}

func TestPinnedHostKey(t *testing.T) {
	k, _ := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"))
	other, _ := LoadOrCreateKey(filepath.Join(t.TempDir(), "o"))
	cb := PinnedHostKey(ssh.FingerprintSHA256(k.PublicKey()))
	if err := cb("h", nil, k.PublicKey()); err != nil {
		t.Fatalf("pinned key refused: %v", err)
	}
	if err := cb("h", nil, other.PublicKey()); !errors.Is(err, ErrHostKeyMismatch) {
		t.Fatalf("other key: %v", err)
	}
	// Rotation: either of two pinned keys.
	both := PinnedHostKey("SHA256:nope", ssh.FingerprintSHA256(other.PublicKey()))
	if err := both("h", nil, other.PublicKey()); err != nil {
		t.Fatalf("second pinned key refused: %v", err)
	}
	if err := both("h", nil, k.PublicKey()); !errors.Is(err, ErrHostKeyMismatch) {
		t.Fatalf("unpinned key: %v", err)
	}
}

// stallConn stops reading (and so answering) once stalled is closed,
// until released: the peer looks dead but TCP stays up.
type stallConn struct {
	net.Conn
	stalled, released chan struct{}
}

func (c *stallConn) Read(p []byte) (int, error) {
	select {
	case <-c.stalled:
		<-c.released
		return 0, net.ErrClosed
	default:
	}
	return c.Conn.Read(p)
}

// TestKeepalive: answered keepalives keep a connection; a peer that stops
// answering is closed after maxMissed intervals.
func TestKeepalive(t *testing.T) {
	srvKey, _ := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"))
	clientKey, _ := LoadOrCreateKey(filepath.Join(t.TempDir(), "c"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stalled, released, served := make(chan struct{}), make(chan struct{}), make(chan struct{})
	srv := &gliderssh.Server{
		HostSigners: []gliderssh.Signer{srvKey},
		PublicKeyHandler: func(_ gliderssh.Context, k gliderssh.PublicKey) bool {
			return gliderssh.KeysEqual(k, clientKey.PublicKey())
		},
		ConnCallback: func(_ gliderssh.Context, nc net.Conn) net.Conn {
			return &stallConn{Conn: nc, stalled: stalled, released: released}
		},
	}
	go func() { defer close(served); srv.Serve(ln) }()
	defer func() { // the server side ends with the test
		close(released)
		srv.Shutdown(context.Background())
		<-served
	}()
	// gliderlabs lets everyone in unless an auth handler says otherwise.
	for _, auth := range [][]ssh.AuthMethod{nil, {ssh.PublicKeys(srvKey)}} {
		if c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{Auth: auth, HostKeyCallback: ssh.InsecureIgnoreHostKey()}); err == nil {
			c.Close()
			t.Fatalf("logged in with %d auth methods and no known key", len(auth))
		}
	}
	cc, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(clientKey)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	done := make(chan struct{})
	go func() { Keepalive(context.Background(), cc, 100*time.Millisecond, 5); close(done) }()
	select {
	case <-done:
		t.Fatal("keepalive gave up on a healthy connection")
	case <-time.After(time.Second):
	}
	close(stalled)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("keepalive did not close a dead connection")
	}
	if _, _, err := cc.SendRequest("x", true, nil); err == nil {
		t.Fatal("connection still open")
	}
}
