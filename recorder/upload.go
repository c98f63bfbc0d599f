package recorder

import (
	"context"
	"errors"
	"fmt"
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
// it never overwrites an existing object. Verify checks an object already
// there against the file the same way: the store's own checksum of what it
// holds, never a label we stored beside it.
type Sink interface {
	Upload(ctx context.Context, name, path string, size int64, sha256hex string) error
	Verify(ctx context.Context, name, path string, size int64, sha256hex string) error
}

// BesideSink is a Sink that also takes the small files that travel with
// a recording (its signed manifest, ID.manifest): Put stores data as
// name, never over different content.
type BesideSink interface {
	Put(ctx context.Context, name string, data []byte) error
}

// besideSuffix names the file that travels with recording ID.gz.
const besideSuffix = ".manifest"

// UploaderConfig configures an Uploader.
type UploaderConfig struct {
	Spool *Spool
	Sink  Sink
	// Final reports session id's recording as the store noted it when it
	// was finalized: its size and SHA-256, which the file and its upload
	// are checked against. over is false while the session is live (its
	// file is still being written) or unknown (not ours to move). A
	// session that is over but has no SHA-256 noted yet (a crash came
	// before its file was sealed; the next start seals it) keeps its file.
	Final func(ctx context.Context, id string) (c Closed, over bool, err error)
	// Moved records that session id's recording now lives at location;
	// the local file is removed only after it returns nil.
	Moved func(ctx context.Context, id, location string) error
	// Location names where Sink keeps name (e.g. s3://bucket/prefix/name).
	Location func(name string) string
	// AlreadyThere, if set, is how Sink says an object exists (its
	// sentinel error): Sink.Verify then says whether it is this recording,
	// which is how a crash between upload and Moved heals. One that is
	// not is left alone, and so is the local file.
	AlreadyThere error
	// Mismatch, if set, is how Sink says an object is not the file (its
	// sentinel error). An object stays once put, so a name whose object
	// does not verify stays taken: that is logged as an error, for someone
	// to look at, and the local file is kept.
	Mismatch error

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

	mu       sync.Mutex
	retry    map[string]retryState
	unsealed map[string]bool // over, no SHA-256 noted: said once
}

type retryState struct {
	next  time.Time
	delay time.Duration
}

// NewUploader returns an Uploader; start it with Run.
func NewUploader(cfg UploaderConfig) (*Uploader, error) {
	if cfg.Spool == nil || cfg.Sink == nil || cfg.Final == nil || cfg.Moved == nil || cfg.Location == nil {
		return nil, errors.New("recorder: uploader needs Spool, Sink, Final, Moved and Location")
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
	return &Uploader{cfg: cfg, kick: make(chan struct{}, 1), retry: map[string]retryState{}, unsealed: map[string]bool{}}, nil
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
	ids, err := u.cfg.Spool.IDs()
	if err != nil {
		u.cfg.Logger.Error("cannot list the spool", "err", err)
		return time.Time{}
	}
	var earliest time.Time
	for _, id := range ids {
		if ctx.Err() != nil {
			return earliest
		}
		u.mu.Lock()
		r, waiting := u.retry[id]
		u.mu.Unlock()
		if waiting && time.Now().Before(r.next) {
			if earliest.IsZero() || r.next.Before(earliest) {
				earliest = r.next
			}
			continue
		}
		fin, over, err := u.cfg.Final(ctx, id)
		if err != nil || !over || !u.sealed(id, fin) {
			continue
		}
		if err := u.upload(ctx, id, u.cfg.Spool.Path(id), fin); err != nil {
			d := u.cfg.BackoffMin
			if waiting {
				d = min(2*r.delay, u.cfg.BackoffMax)
			}
			d = d/2 + rand.N(d/2+1)
			next := time.Now().Add(d)
			u.mu.Lock()
			u.retry[id] = retryState{next: next, delay: max(d, u.cfg.BackoffMin)}
			u.mu.Unlock()
			if errors.As(err, new(keepError)) || (u.cfg.Mismatch != nil && errors.Is(err, u.cfg.Mismatch)) {
				u.cfg.Logger.Error("recording not uploaded; the local file is kept", "session", id, "err", err, "retry_in", d)
			} else {
				u.cfg.Logger.Warn("recording upload failed; will retry", "session", id, "err", err, "retry_in", d)
			}
			if earliest.IsZero() || next.Before(earliest) {
				earliest = next
			}
			continue
		}
		u.mu.Lock()
		delete(u.retry, id)
		u.mu.Unlock()
	}
	u.sweepBeside(ctx)
	return earliest
}

// besidePath is where the file travelling with session id's recording is
// in the spool.
func (u *Uploader) besidePath(id string) string {
	return strings.TrimSuffix(u.cfg.Spool.Path(id), ".gz") + besideSuffix
}

// carryBeside puts session id's manifest, if the spool has one, in the
// sink (when it takes such files) before its recording goes.
func (u *Uploader) carryBeside(ctx context.Context, id string) error {
	bs, ok := u.cfg.Sink.(BesideSink)
	if !ok {
		return nil
	}
	data, err := os.ReadFile(u.besidePath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := bs.Put(ctx, id+besideSuffix, data); err != nil {
		return fmt.Errorf("recorder: %s: %w", id+besideSuffix, err)
	}
	return nil
}

// sweepBeside carries the manifests whose recordings left the spool
// without them (the manifest was written after the upload began) and
// removes each once it is in the sink.
func (u *Uploader) sweepBeside(ctx context.Context) {
	if _, ok := u.cfg.Sink.(BesideSink); !ok {
		return
	}
	files, _ := filepath.Glob(strings.TrimSuffix(u.cfg.Spool.Path("*"), "*.gz") + "*" + besideSuffix)
	for _, f := range files {
		id := strings.TrimSuffix(filepath.Base(f), besideSuffix)
		if _, err := os.Stat(u.cfg.Spool.Path(id)); err == nil || ctx.Err() != nil {
			continue // it goes with its recording
		}
		if err := u.carryBeside(ctx, id); err != nil {
			u.cfg.Logger.Warn("manifest upload failed; will retry", "session", id, "err", err)
			continue
		}
		os.Remove(f)
	}
}

// sealed reports whether a session that is over has its recording's
// SHA-256 noted; the first time one has not, it says so.
func (u *Uploader) sealed(id string, fin Closed) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if fin.SHA256 != "" {
		delete(u.unsealed, id)
		return true
	}
	if !u.unsealed[id] {
		u.unsealed[id] = true
		u.cfg.Logger.Warn("recording not uploaded: its session has no size and SHA-256 noted (the next start seals it); the local file is kept", "session", id)
	}
	return false
}

// keepError marks a failure that retrying alone will not mend: someone
// must look. The local file stays.
type keepError struct{ err error }

func (e keepError) Error() string { return e.err.Error() }
func (e keepError) Unwrap() error { return e.err }

// upload puts the file of session id up, checked against fin, the size
// and SHA-256 the store noted for it, and removes it once the store says
// where it went.
func (u *Uploader) upload(ctx context.Context, id, path string, fin Closed) error {
	c, err := hashFile(path)
	if err != nil {
		return err
	}
	if c.Size != fin.Size || !strings.EqualFold(c.SHA256, fin.SHA256) {
		return keepError{fmt.Errorf("recorder: the spool file (%d bytes, SHA-256 %s) is not the recording its session noted (%d bytes, SHA-256 %s)",
			c.Size, c.SHA256, fin.Size, fin.SHA256)}
	}
	if err := u.carryBeside(ctx, id); err != nil {
		return err
	}
	name := id + ".gz"
	err = u.cfg.Sink.Upload(ctx, name, path, fin.Size, fin.SHA256)
	if err != nil && u.cfg.AlreadyThere != nil && errors.Is(err, u.cfg.AlreadyThere) {
		// Uploaded before, and the gateway stopped before noting it? Only
		// the store's own checksum of what it holds can say.
		err = u.cfg.Sink.Verify(ctx, name, path, fin.Size, fin.SHA256)
		if u.cfg.Mismatch != nil && errors.Is(err, u.cfg.Mismatch) {
			return keepError{fmt.Errorf("recorder: %s holds a different or damaged object, which is never overwritten: %w",
				u.cfg.Location(name), err)}
		}
		if err != nil {
			return fmt.Errorf("recorder: %s exists and could not be checked: %w", u.cfg.Location(name), err)
		}
	}
	if err != nil {
		return err
	}
	if err := u.cfg.Moved(ctx, id, u.cfg.Location(name)); err != nil {
		return err
	}
	u.cfg.Logger.Info("recording uploaded", "session", id, "location", u.cfg.Location(name), "size", fin.Size)
	if _, ok := u.cfg.Sink.(BesideSink); ok {
		os.Remove(u.besidePath(id)) // in the sink now, and in the store
	}
	return os.Remove(path)
}
