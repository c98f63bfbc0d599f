package sshkit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// ErrHostKeyMismatch is returned by a PinnedHostKey callback when the
// server's key is not the pinned one.
var ErrHostKeyMismatch = errors.New("host key does not match the pinned fingerprint")

// LoadOrCreateKey reads the OpenSSH private key at path, or, when the file
// does not exist, creates an ed25519 key there (mode 0600, parent folders
// 0700) and returns it. A key file that exists but cannot be parsed is an
// error: it is never overwritten.
func LoadOrCreateKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("sshkit: parse key %s: %w", path, err)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sshkit: read key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sshkit: generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, fmt.Errorf("sshkit: marshal key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sshkit: create key folder: %w", err)
	}
	// O_EXCL: two processes racing to create the same key must not both win.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sshkit: create key: %w", err)
	}
	if err := pem.Encode(f, block); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("sshkit: write key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("sshkit: write key %s: %w", path, err)
	}
	return ssh.NewSignerFromKey(priv)
}

// WritePublicKey writes the authorized_keys line of s to path (mode 0644).
func WritePublicKey(path string, s ssh.Signer) error {
	return os.WriteFile(path, ssh.MarshalAuthorizedKey(s.PublicKey()), 0o644)
}

// PinnedHostKey returns a HostKeyCallback that accepts only a key whose
// SHA256 fingerprint (as ssh-keygen -l prints it, "SHA256:…") is one of
// fingerprints (several while a host key is rotated). Each comparison is
// constant-time.
func PinnedHostKey(fingerprints ...string) ssh.HostKeyCallback {
	want := make([][]byte, len(fingerprints))
	for i, f := range fingerprints {
		want[i] = []byte(f)
	}
	return func(_ string, _ netAddr, key ssh.PublicKey) error {
		got := []byte(ssh.FingerprintSHA256(key))
		ok := 0
		for _, w := range want {
			ok |= subtle.ConstantTimeCompare(got, w)
		}
		if ok != 1 {
			return fmt.Errorf("%w: got %s", ErrHostKeyMismatch, got)
		}
		return nil
	}
}
