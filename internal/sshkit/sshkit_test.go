package sshkit

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stalled, released, served := make(chan struct{}), make(chan struct{}), make(chan struct{})
	defer func() { close(released); <-served }() // the server side ends with the test
	go func() {
		defer close(served)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		cfg := &ssh.ServerConfig{NoClientAuth: true}
		cfg.AddHostKey(srvKey)
		sc, chans, reqs, err := ssh.NewServerConn(&stallConn{Conn: nc, stalled: stalled, released: released}, cfg)
		if err != nil {
			return
		}
		defer sc.Wait()
		go ssh.DiscardRequests(reqs)
		for range chans {
		}
	}()
	cc, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
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
