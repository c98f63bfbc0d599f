package recorder

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Sink is a remote store for closed recordings (an S3 bucket). Upload
// returns nil only once the object is verified against size and SHA-256;
// it never overwrites an existing object.
type Sink interface {
	Upload(ctx context.Context, name, path string, size int64, sha256hex string) error
}

// UploaderConfig configures an Uploader.
type UploaderConfig struct {
	Spool *Spool
	Sink  Sink
	// Closed reports whether session id is over, so its file may leave
	// the spool (a live session's file is still being written).
	Closed func(ctx context.Context, id string) (bool, error)
	// Moved records that session id's recording now lives at location;
	// the local file is removed only after it returns nil.
	Moved func(ctx context.Context, id, location string) error
	// Location names where Sink keeps name (e.g. s3://bucket/prefix/name).
	Location func(name string) string
	// AlreadyThere, if set, is how Sink says an object exists (its
	// sentinel error): the upload is then checked as done if the object
	// matches, which is how a crash between upload and Moved heals.
	AlreadyThere error
	// Stat, with AlreadyThere, checks an existing object.
	Stat func(ctx context.Context, name string) (size int64, sha256hex string, err error)

	Rescan     time.Duration // 1m: look for files left behind
	BackoffMin time.Duration // 2s
	BackoffMax time.Duration // 5m
	Logger     *slog.Logger
}

// Uploader moves closed recordings from the spool to the sink, verified,
// and only then deletes them locally. Failures are retried with back-off;
// because the spool itself is the queue, pending uploads survive restarts.
type Uploader struct {
	cfg  UploaderConfig
	kick chan struct{}

	mu    sync.Mutex
	retry map[string]retryState
}

type retryState struct {
	next  time.Time
	delay time.Duration
}

// NewUploader returns an Uploader; start it with Run.
func NewUploader(cfg UploaderConfig) (*Uploader, error) {
	if cfg.Spool == nil || cfg.Sink == nil || cfg.Closed == nil || cfg.Moved == nil || cfg.Location == nil {
		return nil, errors.New("recorder: uploader needs Spool, Sink, Closed, Moved and Location")
	}
	if cfg.Rescan <= 0 {
		cfg.Rescan = time.Minute
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 2 * time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Uploader{cfg: cfg, kick: make(chan struct{}, 1), retry: map[string]retryState{}}, nil
}

// Kick asks for a pass now (a recording was just closed).
func (u *Uploader) Kick() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// Run uploads until ctx is done. Each pass takes every closed recording
// in the spool whose retry time has come.
func (u *Uploader) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.kick:
		case <-t.C:
		}
		next := u.pass(ctx)
		wait := u.cfg.Rescan
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), 10*time.Millisecond))
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

// pass uploads what is due and returns the earliest retry time, if any.
func (u *Uploader) pass(ctx context.Context) time.Time {
	files, err := filepath.Glob(filepath.Join(u.cfg.Spool.cfg.Dir, "*.gz"))
	if err != nil {
		u.cfg.Logger.Error("cannot list the spool", "err", err)
		return time.Time{}
	}
	var earliest time.Time
	for _, f := range files {
		if ctx.Err() != nil {
			return earliest
		}
		id := strings.TrimSuffix(filepath.Base(f), ".gz")
		u.mu.Lock()
		r, waiting := u.retry[id]
		u.mu.Unlock()
		if waiting && time.Now().Before(r.next) {
			if earliest.IsZero() || r.next.Before(earliest) {
				earliest = r.next
			}
			continue
		}
		closed, err := u.cfg.Closed(ctx, id)
		if err != nil || !closed {
			continue
		}
		if err := u.upload(ctx, id, f); err != nil {
			d := u.cfg.BackoffMin
			if waiting {
				d = min(2*r.delay, u.cfg.BackoffMax)
			}
			d = d/2 + rand.N(d/2+1)
			next := time.Now().Add(d)
			u.mu.Lock()
			u.retry[id] = retryState{next: next, delay: max(d, u.cfg.BackoffMin)}
			u.mu.Unlock()
			u.cfg.Logger.Warn("recording upload failed; will retry", "session", id, "err", err, "retry_in", d)
			if earliest.IsZero() || next.Before(earliest) {
				earliest = next
			}
			continue
		}
		u.mu.Lock()
		delete(u.retry, id)
		u.mu.Unlock()
	}
	return earliest
}

func (u *Uploader) upload(ctx context.Context, id, path string) error {
	c, err := hashFile(path)
	if err != nil {
		return err
	}
	name := id + ".gz"
	err = u.cfg.Sink.Upload(ctx, name, path, c.Size, c.SHA256)
	if err != nil && u.cfg.AlreadyThere != nil && errors.Is(err, u.cfg.AlreadyThere) && u.cfg.Stat != nil {
		// Uploaded before, and the gateway stopped before noting it?
		size, sum, serr := u.cfg.Stat(ctx, name)
		if serr == nil && size == c.Size && strings.EqualFold(sum, c.SHA256) {
			err = nil
		} else {
			return errors.Join(err, errors.New("a different object holds that name; the local file is kept"))
		}
	}
	if err != nil {
		return err
	}
	if err := u.cfg.Moved(ctx, id, u.cfg.Location(name)); err != nil {
		return err
	}
	u.cfg.Logger.Info("recording uploaded", "session", id, "location", u.cfg.Location(name), "size", c.Size)
	return os.Remove(path)
}
