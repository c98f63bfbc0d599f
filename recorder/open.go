package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// ErrCorrupt is wrapped by a read of a stored recording that fails the
// checksum its store keeps of it (S3's, checked at the end of the body).
var ErrCorrupt = errors.New("recorder: stored recording fails its checksum")

// RemoteOpener reads what a sink stored, by the location it gave it
// (s3sink.Sink).
type RemoteOpener interface {
	OpenLocation(ctx context.Context, location string, offset int64) (io.ReadCloser, error)
}

// Opener opens a finalized recording wherever it lives, from offset on,
// by the location the store keeps for it: a path in the local spool, or
// a sink's "scheme://…" once the uploader has moved it. It is the one way
// the gateway reads recordings back. The zero Opener reads local files
// only.
type Opener struct {
	// Remote reads the locations of each scheme ("s3").
	Remote map[string]RemoteOpener
	// Corrupt, if set, is how the remotes say an object fails its stored
	// checksum (s3sink.ErrMismatch); reads report it wrapping ErrCorrupt.
	Corrupt error
}

// Remote reports whether location is in remote storage ("s3://…"), which
// every gateway reads, rather than a file in one gateway's spool.
func Remote(location string) bool {
	_, _, remote := strings.Cut(location, "://")
	return remote
}

// Open opens the recording at location from offset on.
func (o Opener) Open(ctx context.Context, location string, offset int64) (io.ReadCloser, error) {
	scheme, _, remote := strings.Cut(location, "://")
	if !remote {
		return openFile(location, offset)
	}
	r := o.Remote[scheme]
	if r == nil {
		return nil, fmt.Errorf("recording at %s: no opener configured for it", location)
	}
	rc, err := r.OpenLocation(ctx, location, offset)
	if err != nil || o.Corrupt == nil {
		return rc, err
	}
	return corruptErrors{rc, o.Corrupt}, nil
}

// openFile opens a recording in a local file (the spool). Not through a
// link, and only a regular file: the spool is the gateway's own folder,
// but a link or a FIFO put there is not a recording.
func openFile(path string, offset int64) (io.ReadCloser, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("recording at %s: not a regular file", path)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// corruptErrors reports the remote's checksum failure as ErrCorrupt.
type corruptErrors struct {
	io.ReadCloser
	corrupt error
}

func (r corruptErrors) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && errors.Is(err, r.corrupt) {
		err = fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return n, err
}
