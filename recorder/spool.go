package recorder

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// SpoolConfig configures a Spool.
type SpoolConfig struct {
	Dir           string        // required; created (0700) if absent
	FlushInterval time.Duration // 1s: how often live recordings reach the disk
	Logger        *slog.Logger
}

// Spool keeps recordings as files ID.gz in a local folder and flushes the
// live ones on an interval, so that a crash loses at most that interval.
type Spool struct {
	cfg SpoolConfig

	mu   sync.Mutex
	live map[*Recording]struct{}

	stop chan struct{}
	done chan struct{}
}

// Closed describes a finished recording file.
type Closed struct {
	Path   string
	Size   int64
	SHA256 string // hex
}

// NewSpool opens (creating) the spool folder and starts its flusher.
func NewSpool(cfg SpoolConfig) (*Spool, error) {
	if cfg.Dir == "" {
		return nil, errors.New("recorder: no spool folder")
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("recorder: spool: %w", err)
	}
	s := &Spool{cfg: cfg, live: map[*Recording]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.flusher()
	return s, nil
}

// Path is where the recording of session id lives in the spool.
func (s *Spool) Path(id string) string { return filepath.Join(s.cfg.Dir, id+".gz") }

// IDs returns the ids of the recordings in the spool, live or closed, in
// the order of their file names.
func (s *Spool) IDs() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(s.cfg.Dir, "*.gz"))
	if err != nil {
		return nil, fmt.Errorf("recorder: list spool %s: %w", s.cfg.Dir, err)
	}
	ids := make([]string, len(files))
	for i, f := range files {
		ids[i] = strings.TrimSuffix(filepath.Base(f), ".gz")
	}
	return ids, nil
}

// Create starts the recording of session id. The file must not exist: a
// recording is never appended to.
func (s *Spool) Create(id, passphrase string, h Header) (*Recording, error) {
	if id == "" || filepath.Base(id) != id || id[0] == '.' {
		return nil, fmt.Errorf("recorder: bad session id %q", id)
	}
	path := s.Path(id)
	f, err := createSpoolFile(path)
	if err != nil {
		return nil, fmt.Errorf("recorder: create: %w", err)
	}
	w, err := NewWriter(f, passphrase, h, nil)
	if err != nil {
		f.close()
		os.Remove(path)
		return nil, fmt.Errorf("recorder: start %s: %w", path, err)
	}
	r := &Recording{w: w, file: f, path: path, spool: s}
	s.mu.Lock()
	s.live[r] = struct{}{}
	s.mu.Unlock()
	return r, nil
}

// Seal closes out the file of a session a crash left open: it is not
// appended to (a gzip member after a torn one breaks stock gzip); its size
// and SHA-256 are taken as it stands. The disk blocks a busy recording had
// reserved past its end (see spoolFile) are given back first.
func (s *Spool) Seal(id string) (Closed, error) {
	path := s.Path(id)
	releaseReserve(path)
	return hashFile(path)
}

// releaseReserve drops the blocks allocated past the end of the file at
// path (fallocate with KEEP_SIZE) by truncating it to its own size, which
// changes no byte. It is best effort: a file it cannot open for writing
// keeps them, and is whole either way.
func releaseReserve(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		f.Truncate(fi.Size())
	}
}

// Close stops the flusher. Live recordings stay open (their owners close
// them).
func (s *Spool) Close() error {
	close(s.stop)
	<-s.done
	return nil
}

func (s *Spool) flusher() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		live := make([]*Recording, 0, len(s.live))
		for r := range s.live {
			live = append(live, r)
		}
		s.mu.Unlock()
		for _, r := range live {
			if err := r.Flush(); err != nil && !errors.Is(err, ErrClosed) {
				s.cfg.Logger.Error("recording flush failed", "path", r.path, "err", err)
			}
			r.startWriteback()
		}
	}
}

// Recording is one live recording in the spool.
type Recording struct {
	w     *Writer
	file  *spoolFile
	path  string
	spool *Spool
	// queued is how much of the file the flusher has handed to the disk's
	// writeback (only the flusher touches it).
	queued int64
}

// writebackStep is how much a recording grows before the flusher starts
// writing it back: a busy session's file reaches the disk as it grows, so
// the sync at its close — which the person's exit waits for — is short.
const writebackStep = 1 << 20

// startWriteback starts the disk writing what was written since the last
// call, once that is writebackStep or more. It does not wait for the disk
// (sync_file_range with SYNC_FILE_RANGE_WRITE): durability still comes
// from the sync at Close.
func (r *Recording) startWriteback() {
	n := r.file.n.Load()
	if n-r.queued < writebackStep {
		return
	}
	sc, err := r.file.f.SyscallConn()
	if err != nil {
		return
	}
	from := r.queued
	sc.Control(func(fd uintptr) {
		unix.SyncFileRange(int(fd), from, n-from, unix.SYNC_FILE_RANGE_WRITE)
	})
	r.queued = n
}

// Output records host → person bytes.
func (r *Recording) Output(p []byte) error { return r.w.Output(p) }

// Input records person → host bytes.
func (r *Recording) Input(p []byte) error { return r.w.Input(p) }

// Flush pushes what was recorded so far to the file.
func (r *Recording) Flush() error {
	if err := r.w.Flush(); err != nil {
		return err
	}
	if err := r.file.flush(); err != nil {
		return fmt.Errorf("recorder: flush %s: %w", r.path, err)
	}
	return nil
}

// Resize records a window change and puts it in the file at once.
func (r *Recording) Resize(cols, rows uint32) error {
	if err := r.w.Resize(cols, rows); err != nil {
		return err
	}
	if err := r.file.sync(); err != nil {
		return fmt.Errorf("recorder: resize %s: %w", r.path, err)
	}
	return nil
}

// Close writes the closing event, syncs and closes the file, and returns
// its size and SHA-256.
func (r *Recording) Close(end End) (Closed, error) {
	r.spool.mu.Lock()
	delete(r.spool.live, r)
	r.spool.mu.Unlock()
	werr := r.w.Close(end)
	cerr := r.file.close()
	if err := errors.Join(werr, cerr); err != nil {
		return Closed{Path: r.path}, fmt.Errorf("recorder: close %s: %w", r.path, err)
	}
	return Closed{Path: r.path, Size: r.file.n.Load(), SHA256: hex.EncodeToString(r.file.h.Sum(nil))}, nil
}

func hashFile(path string) (Closed, error) {
	f, err := os.Open(path)
	if err != nil {
		return Closed{Path: path}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Closed{Path: path}, err
	}
	return Closed{Path: path, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
