package evidence

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
)

type memStore struct {
	head      store.AuditEvent
	cps       []store.Checkpoint
	manifests map[string][]byte
}

func (m *memStore) AuditHead(context.Context) (store.AuditEvent, error) {
	if m.head.Seq == 0 {
		return m.head, store.ErrNotFound
	}
	return m.head, nil
}

func (m *memStore) AddCheckpoint(_ context.Context, c store.Checkpoint) error {
	m.cps = append(m.cps, c)
	return nil
}

func (m *memStore) SetManifest(_ context.Context, id string, b []byte, _ time.Time) error {
	m.manifests[id] = b
	return nil
}

func TestNotary(t *testing.T) {
	signer, _ := testKey(t)
	dir := t.TempDir()
	st := &memStore{manifests: map[string][]byte{}}
	n, err := NewNotary(NotaryConfig{Signer: signer, Store: st, Publisher: DirPublisher{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := n.Checkpoint(ctx); err != nil || len(st.cps) != 0 {
		t.Fatalf("an empty trail: %v, %d checkpoints", err, len(st.cps))
	}
	evs := chain(3)
	st.head = evs[2]
	for range 2 { // the second finds the head signed already
		if err := n.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(st.cps) != 1 || st.cps[0].Seq != 3 {
		t.Fatalf("checkpoints %+v", st.cps)
	}
	b, err := os.ReadFile(filepath.Join(dir, CheckpointName(3)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCheckpointFile(b)
	if err != nil || VerifyCheckpoint(signer.PublicKey(), c) != nil || c.Head != evs[2].Hash {
		t.Fatalf("published checkpoint %+v, %v", c, err)
	}
	// A store rolled back to seq 3 with another head: the published
	// checkpoint is kept, and the notary says so.
	st.head = chain(4)[3]
	st.head.Seq, st.head.Hash = 3, "rewritten"
	n2, _ := NewNotary(NotaryConfig{Signer: signer, Store: st, Publisher: DirPublisher{Dir: dir}})
	if err := n2.Checkpoint(ctx); err == nil {
		t.Fatal("a checkpoint replaced a published one")
	}
	if again, _ := os.ReadFile(filepath.Join(dir, CheckpointName(3))); string(again) != string(b) {
		t.Fatal("the published checkpoint changed")
	}
	// Another gateway on the same store signing the same head a moment
	// later: the published checkpoint stands for both, and goes to its
	// store too.
	other := &memStore{head: evs[2], manifests: map[string][]byte{}}
	n3, _ := NewNotary(NotaryConfig{Signer: signer, Store: other, Publisher: DirPublisher{Dir: dir},
		Now: func() time.Time { return time.Now().Add(time.Minute) }})
	if err := n3.Checkpoint(ctx); err != nil || len(other.cps) != 1 || other.cps[0] != c {
		t.Fatalf("the same head signed twice: %v, %+v", err, other.cps)
	}

	m := Manifest{Session: "s1", Size: 1, SHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}
	if err := n.Manifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(dir, "s1.manifest"))
	if err != nil || string(pub) != string(st.manifests["s1"]) {
		t.Fatalf("published manifest %q, %v", pub, err)
	}
	if got, err := OpenManifest(signer.PublicKey(), pub); err != nil || got.Session != "s1" {
		t.Fatalf("%+v, %v", got, err)
	}
}
