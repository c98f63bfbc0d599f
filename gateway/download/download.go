package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Entry is one recording a person may fetch.
type Entry struct {
	ID       string
	Host     string
	Started  time.Time
	Size     int64  // bytes, as recorded when the file was finalized
	SHA256   string // hex, as recorded when the file was finalized
	Location string // what the Opener is given, opaque here (the gateway's session ID)
	Event    string // the security event the session was opened from, "" if none
	// Manifest, when set, makes the entry the recording's signed manifest
	// (ID.manifest) rather than the recording: these bytes, served as
	// they are (Size and SHA256 are theirs).
	Manifest []byte
}

// Manifests is a Library that also has the recordings' signed manifests.
type Manifests interface {
	// Manifest returns session id's manifest file; any error reads as no
	// such file.
	Manifest(ctx context.Context, id string) ([]byte, error)
}

// Name is how the entry is listed under recordings/:
// "ID_HOST_20261125T211000Z.gz" (UTC start), with the event between host
// and time for a session opened from one: "ID_HOST_e-7f3a9c_….gz".
func (e Entry) Name() string {
	ev := ""
	if e.Event != "" {
		ev = e.Event + "_"
	}
	if e.Manifest != nil {
		return e.ID + manifestSuffix
	}
	return e.ID + "_" + e.Host + "_" + ev + e.Started.UTC().Format("20060102T150405Z") + ".gz"
}

// manifestSuffix names a recording's manifest: "ID.manifest" (the only
// form; manifests are not listed).
const manifestSuffix = ".manifest"

// Library answers for the person connected: only what they may see.
type Library interface {
	// List returns the closed-session recordings the person may download,
	// newest first. Both List and Lookup answer for the person as they are
	// now: ErrNotAllowed once they may no longer download at all (removed
	// from their team, demoted) on a connection opened before.
	List(ctx context.Context) ([]Entry, error)
	// Lookup returns one by session id. ErrNotFound when unknown or not
	// visible (the two read the same), ErrLive when the session is still live
	// (its recording is not final yet).
	Lookup(ctx context.Context, id string) (Entry, error)
	// Fetched is called once per download attempt that got as far as opening
	// the file (even if the open failed), when it ends: how ("sftp" or
	// "scp"), the bytes sent, and err (nil if the whole file was sent and
	// verified; wraps ErrIntegrity on a mismatch). The gateway audits it.
	Fetched(e Entry, via string, sent int64, err error)
	// Refused is called when a request to read a recording is refused
	// because it does not resolve (ErrNotFound: no such recording, not
	// theirs to see, or a path outside recordings/), its session is live
	// (ErrLive), or the person may no longer download (ErrNotAllowed): name is the path as the client asked for it, via "sftp" or
	// "scp". An SFTP stat of a name in recordings/ that does not resolve
	// counts (OpenSSH stats before it opens, and stops there); listings and
	// other stats do not. The gateway audits it.
	Refused(name, via string, err error)
}

const (
	liveText       = "the session is still live; its recording can be downloaded once it is closed"
	notAllowedText = "you may no longer download recordings (your role or team changed)"
	unsealedText   = "the session is over but its recording is not finalized yet; the gateway seals it at its next start"
)

// ElsewhereError is what Library.Lookup returns for a finalized recording
// that is still only in another gateway's spool (not uploaded yet: the
// bucket was down, or there is none): the person is told which gateway
// has it, not "no such recording".
type ElsewhereError struct {
	Gateway   string // its name
	Advertise string // where people reach it directly; "" if unknown
}

func (e *ElsewhereError) Error() string {
	where := e.Gateway
	if e.Advertise != "" {
		where += " (" + e.Advertise + ")"
	}
	return "the recording is still in the spool of gateway " + where +
		", not uploaded yet; download it from that gateway, or here once it is uploaded"
}

func (e *ElsewhereError) Unwrap() error { return ErrElsewhere }

var (
	// ErrNotFound is what Library.Lookup returns for a recording that does not
	// exist or that the person may not see.
	ErrNotFound = errors.New("download: no such recording")
	// ErrLive is what Library.Lookup returns while the session is live.
	ErrLive = errors.New("download: " + liveText)
	// ErrNotAllowed is what Library.List and Lookup return once the person
	// may no longer download recordings at all.
	ErrNotAllowed = errors.New("download: " + notAllowedText)
	// ErrUnsealed is what Library.Lookup returns for a session that is over
	// but whose recording has no size and SHA-256 yet (its finalization
	// failed; the next start seals it).
	ErrUnsealed = errors.New("download: " + unsealedText)
	// ErrElsewhere is what an ElsewhereError wraps.
	ErrElsewhere = errors.New("download: recording is in another gateway's spool")
	// ErrIntegrity is wrapped by the error passed to Library.Fetched when the
	// stored bytes do not match the recorded size and SHA-256.
	ErrIntegrity = errors.New("download: recording failed its integrity check")
)

// Opener opens the bytes stored at location, from offset on (the
// gateway's reads wherever the recording is now: a local file, S3's
// ranged GET).
type Opener func(ctx context.Context, location string, offset int64) (io.ReadCloser, error)

// Config is what a Server needs. Library and Open are required.
type Config struct {
	Library Library
	Open    Opener
	Logger  *slog.Logger // slog.Default() when nil
	// Conn is what the Servers of one connection's channels share (the
	// bound on open handles, the recordings already verified); nil: this
	// Server has its own.
	Conn *Conn
}

// Conn is the download state of one SSH connection, shared by the Servers
// of its channels. The zero value is ready.
type Conn struct {
	// handles counts the recordings and directory listings open at once
	// (at most maxOpen).
	handles atomic.Int32

	mu       sync.Mutex
	verified map[string]bool // entry ID + SHA-256 → checked whole on this connection
}

// checked reports whether e was verified whole on this connection.
func (c *Conn) checked(e Entry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.verified[e.ID+" "+e.SHA256]
}

// passed notes that e was verified whole.
func (c *Conn) passed(e Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.verified == nil {
		c.verified = map[string]bool{}
	}
	c.verified[e.ID+" "+e.SHA256] = true
}

// maxOpen bounds the recordings (each with its read-ahead, up to 1 MiB)
// and directory listings (up to maxListed entries) one connection holds
// open at once, over SFTP and scp together.
const maxOpen = 8

// Server serves one person's recordings over SFTP and legacy scp.
type Server struct {
	lib  Library
	open Opener
	log  *slog.Logger
	conn *Conn
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.Library == nil {
		errs = append(errs, errors.New("download: Config.Library is required"))
	}
	if cfg.Open == nil {
		errs = append(errs, errors.New("download: Config.Open is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Conn == nil {
		cfg.Conn = new(Conn)
	}
	return &Server{lib: cfg.Library, open: cfg.Open, log: cfg.Logger, conn: cfg.Conn}, nil
}

// acquire takes one of the connection's maxOpen handles; false if none is
// left. release gives it back.
func (s *Server) acquire() bool {
	if s.conn.handles.Add(1) > maxOpen {
		s.conn.handles.Add(-1)
		return false
	}
	return true
}

func (s *Server) release() { s.conn.handles.Add(-1) }

// newReader opens e for reading; its start verifies it whole unless this
// connection did already (an open that costs a read of the whole file
// must not be a way to make the gateway read it over and over).
func (s *Server) newReader(ctx context.Context, e Entry) *reader {
	open := s.open
	if m := e.Manifest; m != nil {
		open = func(_ context.Context, _ string, off int64) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(m[min(off, int64(len(m))):])), nil
		}
	}
	r := newReader(ctx, open, e)
	r.conn = s.conn
	return r
}

// manifestEntry is id's manifest as an entry, once the person may see
// the recording (Lookup said so).
func (s *Server) manifestEntry(ctx context.Context, id string) (Entry, error) {
	ml, ok := s.lib.(Manifests)
	if !ok {
		return Entry{}, ErrNotFound
	}
	e, err := s.lib.Lookup(ctx, id)
	if err != nil {
		return Entry{}, err
	}
	b, err := ml.Manifest(ctx, id)
	if err != nil || b == nil {
		return Entry{}, ErrNotFound
	}
	sum := sha256.Sum256(b)
	e.Manifest, e.Size, e.SHA256 = b, int64(len(b)), hex.EncodeToString(sum[:])
	return e, nil
}
