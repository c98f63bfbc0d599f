package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/evidence"
	"github.com/rr-gateway/rr/store"
)

func loadKey(file string) (ssh.PublicKey, error) {
	if file == "" {
		return nil, errors.New("no audit key: give -key FILE (what 'rr-gateway audit-key' prints)")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return evidence.ParsePublicKey(b)
}

// verifyManifest checks the manifest's signature, then the recording
// against it, then (with a passphrase at hand) its contents.
func verifyManifest(keyFile, manifestFile, name, passFile string, stdin io.Reader, stdout, stderr io.Writer) int {
	pub, err := loadKey(keyFile)
	if err != nil {
		return fail(stderr, err)
	}
	mb, err := os.ReadFile(manifestFile)
	if err != nil {
		return fail(stderr, err)
	}
	m, err := evidence.OpenManifest(pub, mb)
	if err != nil {
		return fail(stderr, fmt.Errorf("%s: %w", manifestFile, err))
	}
	in, err := openInput(name, stdin)
	if err != nil {
		return fail(stderr, err)
	}
	defer in.Close()
	pass := ""
	if passFile != "" || os.Getenv("RR_PASSPHRASE") != "" {
		if pass, err = passphrase(passFile, stderr); err != nil {
			return fail(stderr, err)
		}
	}
	fmt.Fprintf(stdout, "manifest signed by the audit key %s\nsession  %s\nhost     %s\nperson   %s\nteam     %s\nstarted  %s\nended    %s (%s)\naudit    event %d (%s)\n",
		ssh.FingerprintSHA256(pub), m.Session, m.Host, m.Person, m.Team, stampOf(m.Started), stampOf(m.Ended), m.State,
		m.ClosedBySeq, m.ClosedByHash)
	if m.Event != "" {
		fmt.Fprintf(stdout, "event    %s\n", m.Event)
	}
	if pass == "" {
		if err := evidence.VerifyRecording(m, in); err != nil {
			return fail(stderr, fmt.Errorf("%s: %w", name, err))
		}
		fmt.Fprintf(stdout, "size     %d bytes\nsha256   %s\nok: the recording is the one the manifest describes (contents not decrypted: no passphrase given)\n", m.Size, m.SHA256)
		return 0
	}
	// One pass: verify hashes what it decrypts, and checks the hash.
	if err := verify(in, pass, m.SHA256, stdout); err != nil {
		return fail(stderr, fmt.Errorf("%s: %w", name, err))
	}
	return 0
}

func stampOf(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// verifyAudit checks an exported trail and the checkpoints with it and in
// cpDir. Exit status 1 when anything does not hold.
func verifyAudit(keyFile, cpDir, name string, stdin io.Reader, stdout, stderr io.Writer) int {
	pub, err := loadKey(keyFile)
	if err != nil {
		return fail(stderr, err)
	}
	if name == "" {
		name = "-"
	}
	published, err := readCheckpoints(cpDir)
	if err != nil {
		return fail(stderr, err)
	}
	r, err := checkTrail(pub, published, name, stdin)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "events       %d (seq %d to %d)\ncheckpoints  %d verified (%d from %s)\n",
		r.Events, r.First, r.Last, r.Checkpoints, len(published), orNone(cpDir))
	if r.Signed > 0 {
		fmt.Fprintf(stdout, "signed up to seq %d at %s\n", r.Signed, r.SignedAt.UTC().Format("2006-01-02T15:04:05Z"))
	} else {
		fmt.Fprintln(stdout, "signed up to none: no checkpoint covers these events")
	}
	if r.First > 1 {
		fmt.Fprintf(stdout, "note: the export starts at seq %d; the events before it were not checked\n", r.First)
	}
	if r.Last > r.Signed && r.Signed > 0 {
		fmt.Fprintf(stdout, "note: events after seq %d are chained but not yet signed\n", r.Signed)
	}
	if r.OK() {
		fmt.Fprintln(stdout, "ok")
		return 0
	}
	fmt.Fprintf(stdout, "BROKEN at seq %d: %s\n", r.Problems[0].Seq, r.Problems[0].Msg)
	for _, p := range r.Problems[1:min(len(r.Problems), 20)] {
		fmt.Fprintf(stdout, "also   seq %d: %s\n", p.Seq, p.Msg)
	}
	if len(r.Problems) > 20 {
		fmt.Fprintf(stdout, "and %d more\n", len(r.Problems)-20)
	}
	return 1
}

func orNone(s string) string {
	if s == "" {
		return "no folder"
	}
	return s
}

// checkTrail streams the export through a Verifier, in a few tens of
// MiB whatever its length: the console writes events in seq order. An
// export out of order (merged by hand) is read again whole and sorted,
// which a file allows and standard input does not.
func checkTrail(pub ssh.PublicKey, published []store.Checkpoint, name string, stdin io.Reader) (evidence.Report, error) {
	in, err := openInput(name, stdin)
	if err != nil {
		return evidence.Report{}, err
	}
	defer in.Close()
	v := evidence.NewVerifier(pub, published)
	err = evidence.ScanExport(in, func(e store.AuditEvent) error {
		if !v.InOrder(e) {
			return evidence.ErrOutOfOrder
		}
		v.Add(e)
		return nil
	}, func(c store.Checkpoint) error { v.AddCheckpoint(c); return nil })
	if err == nil {
		return v.Report(), nil
	}
	if !errors.Is(err, evidence.ErrOutOfOrder) {
		return evidence.Report{}, fmt.Errorf("%s: %w", name, err)
	}
	if name == "-" {
		return evidence.Report{}, fmt.Errorf("standard input: %w: save the export to a file and give its name", err)
	}
	f, err := os.Open(name)
	if err != nil {
		return evidence.Report{}, err
	}
	defer f.Close()
	evs, cps, err := evidence.ReadExport(f)
	if err != nil {
		return evidence.Report{}, fmt.Errorf("%s: %w", name, err)
	}
	return evidence.VerifyTrail(pub, evs, append(cps, published...)), nil
}

// readCheckpoints reads every *.checkpoint file in dir ("" for none).
func readCheckpoints(dir string) ([]store.Checkpoint, error) {
	if dir == "" {
		return nil, nil
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.checkpoint"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		if _, err := os.Stat(dir); err != nil {
			return nil, err
		}
	}
	sort.Strings(names)
	var out []store.Checkpoint
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		c, err := evidence.ParseCheckpointFile(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.TrimPrefix(n, dir+"/"), err)
		}
		out = append(out, c)
	}
	return out, nil
}
