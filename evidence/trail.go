package evidence

import (
	"bufio"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/rr-gateway/rr/store"
	"golang.org/x/crypto/ssh"
)

// EventJSON is an audit event as `audit --json` prints it, one per line.
type EventJSON struct {
	Seq       int64  `json:"seq"`
	Time      string `json:"time"`
	Actor     string `json:"actor"`
	Action    string `json:"action"`
	Target    string `json:"target"`
	Outcome   string `json:"outcome"`
	Detail    string `json:"detail"`
	Source    string `json:"source"`
	SessionID string `json:"session_id"`
	Prev      string `json:"prev"`
	Hash      string `json:"hash"`
}

// CheckpointJSON is a checkpoint as `audit --json` prints it after the
// events: {"checkpoint": {...}}.
type CheckpointJSON struct {
	Seq       int64  `json:"seq"`
	Head      string `json:"head"`
	At        string `json:"at"`
	Signature string `json:"signature"`
}

// ToJSON converts an event for export.
func ToJSON(e store.AuditEvent) EventJSON {
	return EventJSON{Seq: e.Seq, Time: stamp(e.Time), Actor: e.Actor, Action: e.Action, Target: e.Target,
		Outcome: e.Outcome, Detail: e.Detail, Source: e.Source, SessionID: e.SessionID, Prev: e.Prev, Hash: e.Hash}
}

// CheckpointToJSON converts a checkpoint for export.
func CheckpointToJSON(c store.Checkpoint) CheckpointJSON {
	return CheckpointJSON{Seq: c.Seq, Head: c.Head, At: stamp(c.At), Signature: c.Signature}
}

// ReadExport reads `audit --json` output: event lines and checkpoint
// lines, in any order.
func ReadExport(r io.Reader) ([]store.AuditEvent, []store.Checkpoint, error) {
	var evs []store.AuditEvent
	var cps []store.Checkpoint
	err := ScanExport(r, func(e store.AuditEvent) error { evs = append(evs, e); return nil },
		func(c store.Checkpoint) error { cps = append(cps, c); return nil })
	return evs, cps, err
}

// ScanExport reads `audit --json` output a line at a time, calling
// event or checkpoint for each; an error from either stops it.
func ScanExport(r io.Reader, event func(store.AuditEvent) error, checkpoint func(store.Checkpoint) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var x struct {
			EventJSON
			Checkpoint *CheckpointJSON `json:"checkpoint"`
		}
		if err := json.Unmarshal(line, &x); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if c := x.Checkpoint; c != nil {
			at, err := parseStamp(c.At)
			if err != nil {
				return fmt.Errorf("line %d: checkpoint at: %w", n, err)
			}
			if err := checkpoint(store.Checkpoint{Seq: c.Seq, Head: c.Head, At: at, Signature: c.Signature}); err != nil {
				return fmt.Errorf("line %d: %w", n, err)
			}
			continue
		}
		e := x.EventJSON
		at, err := parseStamp(e.Time)
		if err != nil {
			return fmt.Errorf("line %d: time: %w", n, err)
		}
		err = event(store.AuditEvent{Seq: e.Seq, Time: at, Actor: e.Actor, Action: e.Action, Target: e.Target,
			Outcome: e.Outcome, Detail: e.Detail, Source: e.Source, SessionID: e.SessionID, Prev: e.Prev, Hash: e.Hash})
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

// Problem is one place where the evidence does not hold.
type Problem struct {
	Seq int64 // the event (or checkpoint's seq) where it broke
	Msg string
}

func (p Problem) String() string { return fmt.Sprintf("seq %d: %s", p.Seq, p.Msg) }

// Report is what VerifyTrail found.
type Report struct {
	Events      int
	First, Last int64 // seqs of the first and last event checked
	Checkpoints int   // checkpoints whose signature verified
	Signed      int64 // the highest seq a valid checkpoint covers
	SignedAt    time.Time
	Problems    []Problem // in seq order; the first is the first broken link
}

// OK reports whether the trail verified.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// VerifyTrail checks a run of audit events (any order; they are taken in
// seq order) and the checkpoints given with them against pub. See
// Verifier for what it checks.
func VerifyTrail(pub ssh.PublicKey, evs []store.AuditEvent, cps []store.Checkpoint) Report {
	slices.SortStableFunc(evs, func(a, b store.AuditEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	v := NewVerifier(pub, cps)
	for _, e := range evs {
		v.Add(e)
	}
	return v.Report()
}

// Verifier checks a trail streamed to it in seq order, keeping 32 bytes
// an event (for checkpoints that come after their events) and nothing
// else of them:
//
//   - every event's hash is the hash of its canonical form (changed rows);
//   - every event names the previous one's hash and follows it by one
//     (deleted, inserted and reordered rows);
//   - every checkpoint's signature verifies, and the event it names has
//     the hash it signed (a chain rewritten with fresh hashes);
//   - no checkpoint names an event past the last (a trail cut short, or a
//     store rolled back to before a checkpoint that was published).
//
// A run that starts past seq 1 (a partial export) is checked from its
// first event on.
type Verifier struct {
	pub   ssh.PublicKey
	r     Report
	heads map[int64]store.Checkpoint // valid checkpoints by seq
	last  store.AuditEvent
	n     int
	// The hashes of the events seen, for checkpoints that come after
	// them (an export lists its checkpoints last): 32 bytes an event,
	// by seq from histBase; the rest (gaps, bad hex) in odd.
	hist     [][32]byte
	histBase int64
	odd      map[int64]string
}

// ErrOutOfOrder is what Add's caller is told when events do not come in
// seq order (Verifier.InOrder).
var ErrOutOfOrder = errors.New("the events are not in seq order")

// NewVerifier checks the checkpoints' signatures and returns a Verifier
// for the events.
func NewVerifier(pub ssh.PublicKey, cps []store.Checkpoint) *Verifier {
	v := &Verifier{pub: pub, heads: map[int64]store.Checkpoint{}, odd: map[int64]string{}}
	for _, c := range cps {
		v.AddCheckpoint(c)
	}
	return v
}

// AddCheckpoint checks c's signature and, when its event was added
// already, that event's hash; else the event is checked when it comes.
func (v *Verifier) AddCheckpoint(c store.Checkpoint) {
	if err := VerifyCheckpoint(v.pub, c); err != nil {
		v.bad(c.Seq, "checkpoint: %v", err)
		return
	}
	if old, dup := v.heads[c.Seq]; dup {
		if old.Head != c.Head {
			v.bad(c.Seq, "two valid checkpoints name different heads for this seq")
		}
		return
	}
	v.heads[c.Seq] = c
	v.r.Checkpoints++
	if c.Seq > v.r.Signed {
		v.r.Signed, v.r.SignedAt = c.Seq, c.At
	}
	if h, ok := v.hashAt(c.Seq); ok && h != c.Head {
		v.bad(c.Seq, "the chain here is not the one checkpointed at %s (rewritten)", stamp(c.At))
	}
}

// InOrder reports whether e may be added next: its seq follows the last
// one's (a gap or a repeat is still in order: Add reports those).
func (v *Verifier) InOrder(e store.AuditEvent) bool { return v.n == 0 || e.Seq >= v.last.Seq }

func (v *Verifier) remember(e store.AuditEvent) {
	var h [32]byte
	if v.n == 0 {
		v.histBase = e.Seq
	}
	if e.Seq == v.histBase+int64(len(v.hist)) && len(e.Hash) == 64 {
		if _, err := hex.Decode(h[:], []byte(e.Hash)); err == nil {
			v.hist = append(v.hist, h)
			return
		}
	}
	v.odd[e.Seq] = e.Hash
}

func (v *Verifier) hashAt(seq int64) (string, bool) {
	if h, ok := v.odd[seq]; ok {
		return h, true
	}
	if i := seq - v.histBase; v.n > 0 && i >= 0 && i < int64(len(v.hist)) {
		return hex.EncodeToString(v.hist[i][:]), true
	}
	return "", false
}

func (v *Verifier) bad(seq int64, f string, a ...any) {
	v.r.Problems = append(v.r.Problems, Problem{seq, fmt.Sprintf(f, a...)})
}

// Add checks the next event.
func (v *Verifier) Add(e store.AuditEvent) {
	if got := store.ChainHash(e.Prev, e); got != e.Hash {
		v.bad(e.Seq, "event changed: its hash is not the hash of its contents")
	}
	if v.n == 0 {
		v.r.First = e.Seq
		if e.Seq == 1 && e.Prev != "" {
			v.bad(e.Seq, "the first event names a predecessor")
		}
	} else {
		p := v.last
		switch {
		case e.Seq == p.Seq:
			v.bad(e.Seq, "two events with this seq (one was inserted)")
		case e.Seq != p.Seq+1:
			v.bad(e.Seq, "events %d to %d are missing (deleted)", p.Seq+1, e.Seq-1)
		case e.Prev != p.Hash:
			v.bad(e.Seq, "broken link: it does not follow event %d (inserted, reordered or changed)", p.Seq)
		}
	}
	if c, ok := v.heads[e.Seq]; ok && c.Head != e.Hash {
		v.bad(e.Seq, "the chain here is not the one checkpointed at %s (rewritten)", stamp(c.At))
	}
	v.remember(e)
	v.n++
	v.last = e
	v.r.Last = e.Seq
}

// Report returns what the checks found, problems in seq order.
func (v *Verifier) Report() Report {
	r := v.r
	r.Events = v.n
	r.Problems = slices.Clone(r.Problems)
	if r.Signed > r.Last {
		c := v.heads[r.Signed]
		if v.n == 0 {
			r.Problems = append(r.Problems, Problem{r.Signed, fmt.Sprintf("the trail is empty but a checkpoint signed at %s covers events up to %d", stamp(c.At), r.Signed)})
		} else {
			r.Problems = append(r.Problems, Problem{r.Signed, fmt.Sprintf("a checkpoint signed at %s covers events up to %d but the trail ends at %d (cut short or rolled back)",
				stamp(c.At), r.Signed, r.Last)})
		}
	}
	slices.SortStableFunc(r.Problems, func(a, b Problem) int { return cmp.Compare(a.Seq, b.Seq) })
	return r
}
