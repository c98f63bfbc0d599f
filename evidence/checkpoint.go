package evidence

import (
	"fmt"
	"strconv"
	"time"

	"github.com/rr-gateway/rr/store"
	"golang.org/x/crypto/ssh"
)

const checkpointKind = "rr-audit-checkpoint v1"

// CheckpointBody is the statement a checkpoint's signature covers.
func CheckpointBody(c store.Checkpoint) []byte {
	return statement(checkpointKind, []field{
		{"seq", strconv.FormatInt(c.Seq, 10)},
		{"head", c.Head},
		{"at", stamp(c.At)},
	})
}

// SignCheckpoint signs that event seq of the chain has hash head.
func SignCheckpoint(signer ssh.Signer, seq int64, head string, at time.Time) (store.Checkpoint, error) {
	c := store.Checkpoint{Seq: seq, Head: head, At: at.UTC()}
	sig, err := Sign(signer, NamespaceCheckpoint, CheckpointBody(c))
	if err != nil {
		return store.Checkpoint{}, err
	}
	c.Signature = string(sig)
	return c, nil
}

// VerifyCheckpoint checks c's signature against pub.
func VerifyCheckpoint(pub ssh.PublicKey, c store.Checkpoint) error {
	return Verify(pub, NamespaceCheckpoint, CheckpointBody(c), []byte(c.Signature))
}

// CheckpointFile is a checkpoint as published: its statement, then its
// signature.
func CheckpointFile(c store.Checkpoint) []byte {
	return append(CheckpointBody(c), c.Signature...)
}

// CheckpointName is the name a checkpoint is published under: sortable,
// one per seq.
func CheckpointName(seq int64) string {
	return fmt.Sprintf("checkpoints/%016d.checkpoint", seq)
}

// ParseCheckpointFile reads a published checkpoint (it does not verify
// its signature: VerifyCheckpoint does).
func ParseCheckpointFile(b []byte) (store.Checkpoint, error) {
	body, sig, err := splitSigned(b)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	m, err := parseStatement(checkpointKind, body)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	c := store.Checkpoint{Head: m["head"], Signature: string(sig)}
	if c.Seq, err = strconv.ParseInt(m["seq"], 10, 64); err != nil {
		return store.Checkpoint{}, fmt.Errorf("checkpoint: seq: %w", err)
	}
	if c.At, err = parseStamp(m["at"]); err != nil {
		return store.Checkpoint{}, fmt.Errorf("checkpoint: at: %w", err)
	}
	return c, nil
}
