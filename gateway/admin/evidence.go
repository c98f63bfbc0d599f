package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/evidence"
	"github.com/rr-gateway/rr/store"
)

// EvidenceStore is the subset of the store audit verify and show read.
type EvidenceStore interface {
	AuditChain(ctx context.Context, from int64, fn func(store.AuditEvent) error) error
	Checkpoints(ctx context.Context) ([]store.Checkpoint, error)
	Manifest(ctx context.Context, id string) ([]byte, error)
}

// Evidence is the store's chain, checkpoints and manifests, with the audit
// public key that checks them.
type Evidence struct {
	Store EvidenceStore
	Key   ssh.PublicKey
}

// errNoEvidence is what audit verify says on a gateway built without it.
var errNoEvidence = errors.New("this gateway has no audit key configured: nothing to verify against")

// auditVerify checks the live trail: every event's hash and link, and
// every checkpoint the store holds. It says where the chain first broke.
func (c *Console) auditVerify(x *call) error {
	if _, err := x.parse(x.flags(), 0, 0); err != nil {
		return err
	}
	ev := c.cfg.Evidence
	if ev == nil {
		return errNoEvidence
	}
	cps, err := ev.Store.Checkpoints(x.ctx)
	if err != nil {
		return c.storeErr(err)
	}
	v := evidence.NewVerifier(ev.Key, cps)
	if err := ev.Store.AuditChain(x.ctx, 1, func(e store.AuditEvent) error { v.Add(e); return x.ctx.Err() }); err != nil {
		return c.storeErr(err)
	}
	r := v.Report()
	res := verifyJSON{OK: r.OK(), Events: r.Events, First: r.First, Last: r.Last, Checkpoints: r.Checkpoints,
		SignedUpTo: r.Signed, Key: ssh.FingerprintSHA256(ev.Key)}
	if !r.SignedAt.IsZero() {
		res.SignedAt = r.SignedAt.UTC().Format(time.RFC3339)
	}
	for _, p := range r.Problems {
		res.Problems = append(res.Problems, problemJSON{Seq: p.Seq, Problem: p.Msg})
	}
	if x.json {
		return writeJSON(x.out, res)
	}
	fmt.Fprintf(x.out, "events:      %d (seq %d to %d)\ncheckpoints: %d, signed up to seq %d %s\naudit key:   %s\n",
		res.Events, res.First, res.Last, res.Checkpoints, res.SignedUpTo, res.SignedAt, res.Key)
	if r.OK() {
		fmt.Fprintln(x.out, "ok: the chain is unbroken and matches every checkpoint")
		return nil
	}
	fmt.Fprintf(x.out, "BROKEN at seq %d: %s\n", r.Problems[0].Seq, cell(r.Problems[0].Msg))
	if n := len(r.Problems) - 1; n > 0 {
		fmt.Fprintf(x.out, "(%d more problems; --json lists them)\n", n)
	}
	return nil
}

type verifyJSON struct {
	OK          bool          `json:"ok"`
	Events      int           `json:"events"`
	First       int64         `json:"first_seq"`
	Last        int64         `json:"last_seq"`
	Checkpoints int           `json:"checkpoints"`
	SignedUpTo  int64         `json:"signed_up_to"`
	SignedAt    string        `json:"signed_at,omitempty"`
	Key         string        `json:"audit_key"`
	Problems    []problemJSON `json:"problems,omitempty"`
}

type problemJSON struct {
	Seq     int64  `json:"seq"`
	Problem string `json:"problem"`
}

// manifestState says whether session id's recording has a manifest that
// verifies with the audit key.
func (c *Console) manifestState(ctx context.Context, s store.Session) string {
	ev := c.cfg.Evidence
	switch {
	case ev == nil:
		return "no audit key configured"
	case !Downloadable(s):
		return "none (the recording is not finalized)"
	}
	b, err := ev.Store.Manifest(ctx, s.ID)
	if errors.Is(err, store.ErrNotFound) {
		return "none"
	}
	if err != nil {
		return "unknown: " + err.Error()
	}
	m, err := evidence.OpenManifest(ev.Key, b)
	switch {
	case err != nil:
		return "INVALID: " + err.Error()
	case m.SHA256 != s.RecordingSHA256 || m.Size != s.RecordingSize:
		return "INVALID: it describes another file than the session row"
	}
	return fmt.Sprintf("signed (audit event %d); download %s", m.ClosedBySeq, evidence.ManifestName(s.ID))
}

// exportCheckpoints follows audit --json's events with the checkpoints
// that cover them: those within their seqs, and, when the listing runs to
// the newest event (whole), those past it too, which rr verify-audit
// reads as a trail cut short.
func (c *Console) exportCheckpoints(x *call, evs []store.AuditEvent, whole bool) error {
	ev := c.cfg.Evidence
	if ev == nil || len(evs) == 0 {
		return nil
	}
	cps, err := ev.Store.Checkpoints(x.ctx)
	if err != nil {
		return c.storeErr(err)
	}
	first, last := evs[0].Seq, evs[len(evs)-1].Seq
	for _, e := range evs {
		first, last = min(first, e.Seq), max(last, e.Seq)
	}
	for _, cp := range cps {
		if cp.Seq < first || cp.Seq > last && !whole {
			continue
		}
		if err := writeJSON(x.out, struct {
			Checkpoint evidence.CheckpointJSON `json:"checkpoint"`
		}{evidence.CheckpointToJSON(cp)}); err != nil {
			return err
		}
	}
	return nil
}
