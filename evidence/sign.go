package evidence

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// The SSHSIG namespaces: a signature made for one kind of statement never
// verifies as another.
const (
	NamespaceCheckpoint = "rr-audit-checkpoint"
	NamespaceManifest   = "rr-recording-manifest"
)

// Principal is the name the audit key goes by in an OpenSSH
// allowed_signers file (`ssh-keygen -Y verify -I rr-audit`).
const Principal = "rr-audit"

// ErrBadSignature is returned when a signature does not verify against
// the audit key.
var ErrBadSignature = errors.New("signature does not verify with the audit key")

// LoadOrCreateKey reads the Ed25519 audit key at path (an OpenSSH private
// key), creating it with mode 0600 (and its folder 0700) when the file
// does not exist. created says whether it did. Any other failure, or a key
// that is not Ed25519, is an error: the caller fails to start rather than
// run without checkpoints.
func LoadOrCreateKey(path string) (signer ssh.Signer, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := createKey(path); err != nil {
			return nil, false, err
		}
		created = true
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("audit key: %w", err)
	}
	signer, err = ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, false, fmt.Errorf("audit key %s: %w", path, err)
	}
	if signer.PublicKey().Type() != ssh.KeyAlgoED25519 {
		return nil, false, fmt.Errorf("audit key %s: is %s; it must be ssh-ed25519", path, signer.PublicKey().Type())
	}
	return signer, created, nil
}

func createKey(path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("audit key: %w", err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "rr audit key")
	if err != nil {
		return fmt.Errorf("audit key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("audit key: %w", err)
	}
	// O_EXCL: two processes starting at once keep one key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit key: %w", err)
	}
	if _, err := f.Write(pem.EncodeToMemory(blk)); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("audit key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("audit key: %w", err)
	}
	return f.Close()
}

// AllowedSigners is the line of an OpenSSH allowed_signers file that
// lets `ssh-keygen -Y verify -I rr-audit` check rr's signatures.
func AllowedSigners(pub ssh.PublicKey) string {
	return Principal + " " + string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(pub))) + "\n"
}

// Sign returns data's SSHSIG signature (armored, as `ssh-keygen -Y sign`
// writes it) in namespace.
func Sign(signer ssh.Signer, namespace string, data []byte) ([]byte, error) {
	sig, err := sshsig.Sign(bytes.NewReader(data), signer, sshsig.HashSHA512, namespace)
	if err != nil {
		return nil, fmt.Errorf("evidence: sign: %w", err)
	}
	return sshsig.Armor(sig), nil
}

// Verify checks an armored SSHSIG signature of data in namespace against
// pub; it returns ErrBadSignature (wrapped) when it does not hold.
func Verify(pub ssh.PublicKey, namespace string, data, armored []byte) error {
	sig, err := sshsig.Unarmor(armored)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if err := sshsig.Verify(bytes.NewReader(data), sig, pub, sig.HashAlgorithm, namespace); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

// ParsePublicKey reads the audit public key from an authorized_keys or
// allowed_signers line (what `rr-gateway audit-key` prints).
func ParsePublicKey(b []byte) (ssh.PublicKey, error) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if f := bytes.Fields(line); len(f) >= 3 && !bytes.HasPrefix(f[0], []byte("ssh-")) {
			line = bytes.Join(f[1:], []byte(" ")) // allowed_signers: principal first
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("audit public key: %w", err)
		}
		return pub, nil
	}
	return nil, errors.New("audit public key: no key in the file")
}
