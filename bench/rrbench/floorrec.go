package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash"
	"sync"

	"github.com/rr-gateway/rr/gateway"
)

// Which recorders a gateway role runs (its -recording flag).
const (
	recordSpool = "spool" // rr's recorder into a spool, as rr-gateway runs
	recordOff   = "off"   // gateway.NopRecorders: the relay alone
	recordFloor = "floor" // floorRecorders: the least any recording can do
)

// floorRecorders do, per byte, the least a recording the design allows
// must: encrypt it with AES-256-CTR and take the result into the file's
// SHA-256. Nothing is framed, escaped, written or kept. Measurement only:
// the floor under the bulk target, set against ssh -J in the same run.
// The work runs on the pump's goroutine, where rr's spool hashes on one of
// its own; on a machine whose cores are busy the CPU is the same.
type floorRecorders struct{}

func (floorRecorders) Start(context.Context, gateway.SessionInfo) (gateway.SessionRecorder, error) {
	var key [32 + aes.BlockSize]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key[:32])
	if err != nil {
		return nil, err
	}
	return &floorRecorder{stream: cipher.NewCTR(block, key[32:]), sum: sha256.New()}, nil
}

type floorRecorder struct {
	mu     sync.Mutex
	stream cipher.Stream
	sum    hash.Hash
	buf    [32 << 10]byte // ciphertext on its way into sum
	closed bool
}

// record encrypts p a buffer at a time and hashes the ciphertext.
func (f *floorRecorder) record(p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("rrbench: recording closed")
	}
	for len(p) > 0 {
		n := min(len(p), len(f.buf))
		f.stream.XORKeyStream(f.buf[:n], p[:n])
		f.sum.Write(f.buf[:n])
		p = p[n:]
	}
	return nil
}

func (f *floorRecorder) Input(p []byte) error           { return f.record(p) }
func (f *floorRecorder) Output(p []byte) error          { return f.record(p) }
func (f *floorRecorder) Resize(cols, rows uint32) error { return nil }

func (f *floorRecorder) Close(gateway.SessionEnd) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}
