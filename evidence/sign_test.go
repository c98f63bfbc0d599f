package evidence

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
	"golang.org/x/crypto/ssh"
)

func testKey(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys", "audit_ed25519")
	s, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("created %v, %v", created, err)
	}
	return s, path
}

func TestLoadOrCreateKey(t *testing.T) {
	s, path := testKey(t)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode(), err)
	}
	again, created, err := LoadOrCreateKey(path)
	if err != nil || created || !bytes.Equal(again.PublicKey().Marshal(), s.PublicKey().Marshal()) {
		t.Fatalf("second load: created %v, %v", created, err)
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(path); err == nil {
		t.Fatal("a broken key file was accepted")
	}
	pub, err := ParsePublicKey([]byte(AllowedSigners(s.PublicKey())))
	if err != nil || !bytes.Equal(pub.Marshal(), s.PublicKey().Marshal()) {
		t.Fatalf("allowed_signers line does not read back: %v", err)
	}
}

func sshKeygen(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen not installed")
	}
	return p
}

// What rr signs, OpenSSH's ssh-keygen verifies; what ssh-keygen signs
// with the audit key, rr verifies: the format is SSHSIG, not ours.
func TestSSHSIGAgainstOpenSSH(t *testing.T) {
	kg := sshKeygen(t)
	signer, keyPath := testKey(t)
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed_signers")
	if err := os.WriteFile(allowed, []byte(AllowedSigners(signer.PublicKey())), 0o644); err != nil {
		t.Fatal(err)
	}
	m := Manifest{Session: "0123456789abcdef", Host: "web-01", Person: "alice", Team: "ops",
		Started: time.Unix(100, 5), Ended: time.Unix(200, 0), State: "closed", Size: 42,
		SHA256: strings.Repeat("ab", 32), ClosedBySeq: 7, ClosedByHash: strings.Repeat("cd", 32)}
	file, err := m.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	body, sig, err := splitSigned(file)
	if err != nil {
		t.Fatal(err)
	}
	sigPath := filepath.Join(dir, "body.sig")
	if err := os.WriteFile(sigPath, sig, 0o644); err != nil {
		t.Fatal(err)
	}
	verify := func(ns string, data []byte) error {
		cmd := exec.Command(kg, "-Y", "verify", "-f", allowed, "-I", Principal, "-n", ns, "-s", sigPath)
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("ssh-keygen: %s", out)
		}
		return err
	}
	if err := verify(NamespaceManifest, body); err != nil {
		t.Fatalf("ssh-keygen refused rr's manifest signature: %v", err)
	}
	if err := verify(NamespaceCheckpoint, body); err == nil {
		t.Fatal("ssh-keygen accepted a manifest signature as a checkpoint's")
	}
	if err := verify(NamespaceManifest, bytes.Replace(body, []byte("size 42"), []byte("size 43"), 1)); err == nil {
		t.Fatal("ssh-keygen accepted a changed manifest")
	}

	// The other way: ssh-keygen signs, rr verifies.
	data := CheckpointBody(store.Checkpoint{Seq: 3, Head: strings.Repeat("ef", 32), At: time.Unix(300, 0)})
	dataPath := filepath.Join(dir, "checkpoint")
	if err := os.WriteFile(dataPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(kg, "-Y", "sign", "-f", keyPath, "-n", NamespaceCheckpoint, dataPath).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v: %s", err, out)
	}
	osig, err := os.ReadFile(dataPath + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(signer.PublicKey(), NamespaceCheckpoint, data, osig); err != nil {
		t.Fatalf("rr refused ssh-keygen's signature: %v", err)
	}
	if err := Verify(signer.PublicKey(), NamespaceManifest, data, osig); err == nil {
		t.Fatal("rr accepted a signature made in another namespace")
	}
}

func TestManifestRoundTrip(t *testing.T) {
	signer, _ := testKey(t)
	other, _ := testKey(t)
	m := Manifest{Session: "s1", Host: "web-01", Person: "alice", Team: "a \"team\"\nwith a newline",
		Started: time.Unix(100, 5).UTC(), Ended: time.Unix(200, 0).UTC(), State: "killed", Size: 3,
		SHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", ClosedBySeq: 9, ClosedByHash: "x"}
	file, err := m.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenManifest(signer.PublicKey(), file)
	if err != nil || got != m {
		t.Fatalf("got %+v, %v", got, err)
	}
	if err := VerifyRecording(got, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	if err := VerifyRecording(got, strings.NewReader("abd")); err == nil {
		t.Fatal("a changed recording verified")
	}
	if _, err := OpenManifest(other.PublicKey(), file); err == nil {
		t.Fatal("a manifest verified with another key")
	}
	forged, err := m.Sign(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenManifest(signer.PublicKey(), forged); err == nil {
		t.Fatal("a manifest signed with another key verified")
	}
	if _, err := OpenManifest(signer.PublicKey(), bytes.Replace(file, []byte("state killed"), []byte("state closed"), 1)); err == nil {
		t.Fatal("a changed manifest verified")
	}
}
