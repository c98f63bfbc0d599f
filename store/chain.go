package store

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// ChainVersion names the canonical form ChainHash hashes.
const ChainVersion = "rr-audit-v1"

// ChainHash returns the hex SHA-256 of e's canonical form, which covers
// e.Seq, every field of e and prev (the previous event's hash, "" for the
// first). The canonical form is a sequence of netstrings ("LEN:BYTES,"),
// so no field's content can be mistaken for another's boundary:
//
//	rr-audit-v1, seq, at, actor, action, target, outcome, detail,
//	source, session_id, prev
//
// seq and at are decimal integers (at in nanoseconds since the Unix
// epoch, 0 for no time). Changing, deleting, inserting or reordering an
// event changes a hash that a later event, or a signed checkpoint, names.
func ChainHash(prev string, e AuditEvent) string {
	var at int64
	if !e.Time.IsZero() {
		at = e.Time.UnixNano()
	}
	b := make([]byte, 0, 256)
	for _, f := range [...]string{ChainVersion, strconv.FormatInt(e.Seq, 10), strconv.FormatInt(at, 10),
		e.Actor, e.Action, e.Target, e.Outcome, e.Detail, e.Source, e.SessionID, prev} {
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ':')
		b = append(b, f...)
		b = append(b, ',')
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Checkpoint is a signed statement that the audit chain's event Seq has
// hash Head: published outside the store, it pins every event up to Seq.
type Checkpoint struct {
	Seq       int64
	Head      string    // hex SHA-256 of event Seq
	At        time.Time // when it was signed
	Signature string    // armored SSHSIG over the checkpoint's body
}
