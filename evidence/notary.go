package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rr-gateway/rr/store"
	"golang.org/x/crypto/ssh"
)

// Publisher keeps evidence outside the store: the recordings bucket, or
// the spool folder when there is none. Put never replaces an object with
// different content (it returns an error), so what was published stays.
type Publisher interface {
	Put(ctx context.Context, name string, data []byte) error
}

// NotaryStore is the subset of the store the Notary uses.
type NotaryStore interface {
	AuditHead(ctx context.Context) (store.AuditEvent, error)
	AddCheckpoint(ctx context.Context, c store.Checkpoint) error
	SetManifest(ctx context.Context, id string, body []byte, at time.Time) error
}

// NotaryConfig configures a Notary. Signer, Store and Publisher are
// required.
type NotaryConfig struct {
	Signer    ssh.Signer
	Store     NotaryStore
	Publisher Publisher // checkpoints
	// Manifests is where manifests go (default Publisher): the spool, on
	// a session's way out, from where the uploader carries each to the
	// bucket with its recording.
	Manifests Publisher
	Interval  time.Duration // between checkpoints (10m)
	Now       func() time.Time
	Logger    *slog.Logger
}

// Notary signs the gateway's evidence: a checkpoint of the audit chain's
// head every Interval (and when asked, at shutdown), and a manifest for
// each finalized recording. Each goes to the store and to the Publisher.
type Notary struct {
	cfg  NotaryConfig
	mu   sync.Mutex // one checkpoint at a time
	last int64      // the seq last checkpointed
}

// NewNotary checks cfg and fills its defaults.
func NewNotary(cfg NotaryConfig) (*Notary, error) {
	if cfg.Signer == nil || cfg.Store == nil || cfg.Publisher == nil {
		return nil, errors.New("evidence: the notary needs Signer, Store and Publisher")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Minute
	}
	if cfg.Manifests == nil {
		cfg.Manifests = cfg.Publisher
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Notary{cfg: cfg}, nil
}

// PublicKey is the audit key's public half.
func (n *Notary) PublicKey() ssh.PublicKey { return n.cfg.Signer.PublicKey() }

// Checkpoint signs the chain's head unless it was signed already, keeps
// the checkpoint in the store and publishes it.
func (n *Notary) Checkpoint(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	head, err := n.cfg.Store.AuditHead(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil // nothing to sign yet
	}
	if err != nil {
		return fmt.Errorf("evidence: checkpoint: %w", err)
	}
	if head.Seq == n.last {
		return nil
	}
	c, err := SignCheckpoint(n.cfg.Signer, head.Seq, head.Hash, n.cfg.Now())
	if err != nil {
		return err
	}
	// Published first: a store that lost it (rolled back) is caught by
	// the copy outside.
	if err := n.cfg.Publisher.Put(ctx, CheckpointName(c.Seq), CheckpointFile(c)); err != nil {
		// Another gateway on the same store may have signed this head
		// first: its checkpoint stands for ours. Any other is a trail
		// that is not the one published, and is said so.
		other, ok := n.published(ctx, c.Seq)
		if !ok || other.Head != c.Head {
			return fmt.Errorf("evidence: publish checkpoint %d: %w", c.Seq, err)
		}
		c = other
	}
	if err := n.cfg.Store.AddCheckpoint(ctx, c); err != nil {
		return fmt.Errorf("evidence: checkpoint %d: %w", c.Seq, err)
	}
	n.last = c.Seq
	n.cfg.Logger.Info("audit checkpoint signed", "seq", c.Seq, "head", c.Head)
	return nil
}

// getter is a Publisher that reads back what it holds (both do).
type getter interface {
	Get(ctx context.Context, name string, limit int64) ([]byte, error)
}

// published returns the valid checkpoint published for seq, if any.
func (n *Notary) published(ctx context.Context, seq int64) (store.Checkpoint, bool) {
	g, ok := n.cfg.Publisher.(getter)
	if !ok {
		return store.Checkpoint{}, false
	}
	b, err := g.Get(ctx, CheckpointName(seq), 64<<10)
	if err != nil {
		return store.Checkpoint{}, false
	}
	c, err := ParseCheckpointFile(b)
	if err != nil || c.Seq != seq || VerifyCheckpoint(n.PublicKey(), c) != nil {
		return store.Checkpoint{}, false
	}
	return c, true
}

// Run checkpoints every Interval until ctx is done; the caller
// checkpoints once more at shutdown, after the last event.
func (n *Notary) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := n.Checkpoint(ctx); err != nil {
				n.cfg.Logger.Error("audit checkpoint failed", "err", err)
			}
		}
	}
}

// Manifest signs m, keeps it in the store and publishes it beside the
// recording (m.Session + ".manifest").
func (n *Notary) Manifest(ctx context.Context, m Manifest) error {
	file, err := m.Sign(n.cfg.Signer)
	if err != nil {
		return err
	}
	if err := n.cfg.Store.SetManifest(ctx, m.Session, file, n.cfg.Now()); err != nil {
		return err
	}
	if err := n.cfg.Manifests.Put(ctx, ManifestName(m.Session), file); err != nil {
		return fmt.Errorf("evidence: publish manifest of %s: %w", m.Session, err)
	}
	return nil
}

// DirPublisher publishes into a folder (the spool, when there is no
// bucket): each file written whole (a temporary name, synced, renamed),
// mode 0600 like the recordings, never replaced by different content.
type DirPublisher struct{ Dir string }

// Put writes name under the folder.
func (d DirPublisher) Put(_ context.Context, name string, data []byte) error {
	path := filepath.Join(d.Dir, filepath.FromSlash(name))
	if old, err := os.ReadFile(path); err == nil {
		if bytes.Equal(old, data) {
			return nil
		}
		return fmt.Errorf("%s exists with other content: kept", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".publish-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Link, not rename: it fails when the name exists, so a race with
	// another writer keeps the first.
	if err := os.Link(f.Name(), path); err != nil {
		return err
	}
	return nil
}

// Get reads name back (at most limit bytes).
func (d DirPublisher) Get(_ context.Context, name string, limit int64) ([]byte, error) {
	f, err := os.Open(filepath.Join(d.Dir, filepath.FromSlash(name)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}
