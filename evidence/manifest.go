package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

const manifestKind = "rr-recording-manifest v1"

// Manifest describes one finalized recording: what it is, who made it,
// and the audit event that closed its session. Signed, it is the
// recording's certificate: anyone with the audit public key checks the
// file against it.
type Manifest struct {
	Session string
	Host    string
	Person  string
	Team    string
	Event   string // the security event responded to, if any
	Started time.Time
	Ended   time.Time
	State   string // closed, killed, interrupted
	Size    int64
	SHA256  string // hex, of the .gz file as downloaded
	// ClosedBySeq and ClosedByHash name the audit event that recorded
	// the session's end: the manifest ties the recording into the chain.
	ClosedBySeq  int64
	ClosedByHash string
}

// Body is the statement the manifest's signature covers.
func (m Manifest) Body() []byte {
	return statement(manifestKind, []field{
		{"session", m.Session},
		{"host", m.Host},
		{"person", m.Person},
		{"team", m.Team},
		{"event", m.Event},
		{"started", stamp(m.Started)},
		{"ended", stamp(m.Ended)},
		{"state", m.State},
		{"size", strconv.FormatInt(m.Size, 10)},
		{"sha256", m.SHA256},
		{"audit-seq", strconv.FormatInt(m.ClosedBySeq, 10)},
		{"audit-hash", m.ClosedByHash},
	})
}

// Sign returns the manifest file: the statement, then its signature.
func (m Manifest) Sign(signer ssh.Signer) ([]byte, error) {
	body := m.Body()
	sig, err := Sign(signer, NamespaceManifest, body)
	if err != nil {
		return nil, err
	}
	return append(body, sig...), nil
}

// ManifestName is the name of session id's manifest, beside its
// recording (id.gz).
func ManifestName(id string) string { return id + ".manifest" }

// Sentinel errors of VerifyRecording, for callers that branch.
var (
	ErrRecordingChanged = errors.New("the recording is not the one the manifest describes")
)

// OpenManifest checks a manifest file's signature against pub and returns
// what it says.
func OpenManifest(pub ssh.PublicKey, file []byte) (Manifest, error) {
	body, sig, err := splitSigned(file)
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	if err := Verify(pub, NamespaceManifest, body, sig); err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	return parseManifest(body)
}

func parseManifest(body []byte) (Manifest, error) {
	f, err := parseStatement(manifestKind, body)
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	m := Manifest{Session: f["session"], Host: f["host"], Person: f["person"], Team: f["team"],
		Event: f["event"], State: f["state"], SHA256: f["sha256"], ClosedByHash: f["audit-hash"]}
	var errs []error
	var e error
	if m.Started, e = parseStamp(f["started"]); e != nil {
		errs = append(errs, fmt.Errorf("started: %w", e))
	}
	if m.Ended, e = parseStamp(f["ended"]); e != nil {
		errs = append(errs, fmt.Errorf("ended: %w", e))
	}
	if m.Size, e = strconv.ParseInt(f["size"], 10, 64); e != nil {
		errs = append(errs, fmt.Errorf("size: %w", e))
	}
	if m.ClosedBySeq, e = strconv.ParseInt(f["audit-seq"], 10, 64); e != nil {
		errs = append(errs, fmt.Errorf("audit-seq: %w", e))
	}
	if len(m.SHA256) != 64 {
		errs = append(errs, errors.New("sha256: want 64 hex digits"))
	}
	if err := errors.Join(errs...); err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	return m, nil
}

// VerifyRecording checks that r (the .gz file) is the recording m
// describes: its size and SHA-256.
func VerifyRecording(m Manifest, r io.Reader) error {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return fmt.Errorf("read recording: %w", err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if n != m.Size || !strings.EqualFold(got, m.SHA256) {
		return fmt.Errorf("%w: it is %d bytes with SHA-256 %s; the manifest says %d bytes with SHA-256 %s",
			ErrRecordingChanged, n, got, m.Size, m.SHA256)
	}
	return nil
}
