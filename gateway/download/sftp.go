package download

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"

	"github.com/pkg/sftp"
)

// ServeSFTP serves the "sftp" subsystem on rw until the client ends it or ctx
// is done; when ctx is done it closes rw. A client ending the session is not
// an error.
func (s *Server) ServeSFTP(ctx context.Context, rw io.ReadWriteCloser) error {
	h := &sftpHandler{s: s, ctx: ctx}
	srv := sftp.NewRequestServer(rw, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	err := srv.Serve()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// sftpHandler answers one SFTP session's requests from the virtual tree.
type sftpHandler struct {
	s   *Server
	ctx context.Context
}

// statusError carries a message for the client and the SFTP status code
// pkg/sftp sends with it.
type statusError struct {
	msg  string
	code error // one of sftp.ErrSSHFx*
}

func (e statusError) Error() string   { return e.msg }
func (e statusError) Unwrap() []error { return []error{e.code} }

var (
	errReadOnly    = statusError{"rr: recordings are read-only", sftp.ErrSSHFxPermissionDenied}
	errNoSuchFile  = statusError{"rr: no such recording", sftp.ErrSSHFxNoSuchFile}
	errLiveStatus  = statusError{"rr: " + liveText, sftp.ErrSSHFxPermissionDenied}
	errNotAllowed  = statusError{"rr: " + notAllowedText, sftp.ErrSSHFxPermissionDenied}
	errUnsealed    = statusError{"rr: " + unsealedText, sftp.ErrSSHFxFailure}
	errIsDir       = statusError{"rr: not a regular file", sftp.ErrSSHFxFailure}
	errBusy        = statusError{"rr: too many recordings open at once", sftp.ErrSSHFxFailure}
	errIntegrity   = statusError{"rr: recording failed its integrity check", sftp.ErrSSHFxFailure}
	errUnavailable = statusError{"rr: recordings are unavailable right now; try again later", sftp.ErrSSHFxFailure}
)

// status turns a resolution or read error into what the client is told,
// logging what it must not be told.
func (h *sftpHandler) status(err error, p string) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return errNoSuchFile
	case errors.Is(err, ErrLive):
		return errLiveStatus
	case errors.Is(err, ErrNotAllowed):
		return errNotAllowed
	case errors.Is(err, ErrUnsealed):
		return errUnsealed
	case errors.Is(err, ErrIntegrity):
		return errIntegrity
	}
	if e, ok := errors.AsType[*ElsewhereError](err); ok {
		return statusError{"rr: " + e.Error(), sftp.ErrSSHFxFailure}
	}
	h.s.log.Error("download: sftp", "path", p, "err", err)
	return errUnavailable
}

// Fileread opens a recording for reading.
func (h *sftpHandler) Fileread(req *sftp.Request) (io.ReaderAt, error) {
	n, err := h.s.resolve(h.ctx, req.Filepath)
	if err != nil {
		if _, ok := refusal(err); ok {
			h.s.lib.Refused(req.Filepath, "sftp", err)
		}
		return nil, h.status(err, req.Filepath)
	}
	if n.isDir() {
		return nil, errIsDir
	}
	if !h.s.acquire() {
		return nil, errBusy
	}
	ctx, cancel := context.WithCancel(h.ctx)
	f := &sftpFile{h: h, r: h.s.newReader(ctx, n.entry), cancel: cancel}
	if err := f.r.start(); err != nil {
		f.err = err
		f.Close()
		return nil, h.status(err, req.Filepath)
	}
	return f, nil
}

// Filewrite refuses: recordings are read-only.
func (h *sftpHandler) Filewrite(*sftp.Request) (io.WriterAt, error) { return nil, errReadOnly }

// Filecmd refuses every change: setstat, rename, remove, mkdir, rmdir, link, symlink.
func (h *sftpHandler) Filecmd(*sftp.Request) error { return errReadOnly }

// Readlink refuses: the tree has no links.
func (h *sftpHandler) Readlink(string) (string, error) { return "", errReadOnly }

// Filelist lists a directory ("List") or stats one path ("Stat").
func (h *sftpHandler) Filelist(req *sftp.Request) (sftp.ListerAt, error) {
	n, err := h.s.resolve(h.ctx, req.Filepath)
	switch {
	case errors.Is(err, ErrLive) && req.Method != "List":
		return lister{liveInfo(path.Base(req.Filepath))}, nil
	case errors.Is(err, ErrNotAllowed):
		h.s.lib.Refused(req.Filepath, "sftp", err)
		return nil, h.status(err, req.Filepath)
	case (errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnsealed) || errors.Is(err, ErrElsewhere)) && req.Method != "List" && namesRecording(req.Filepath):
		// OpenSSH's scp and sftp stat a file before they open it, and stop
		// here: this is the download attempt.
		h.s.lib.Refused(req.Filepath, "sftp", err)
		return nil, h.status(err, req.Filepath)
	case err != nil:
		return nil, h.status(err, req.Filepath)
	case req.Method != "List":
		name := path.Base(n.path)
		if n.file {
			return lister{entryInfo(name, n.entry)}, nil
		}
		return lister{dirInfo(name)}, nil
	case n.file:
		return nil, statusError{"rr: not a directory", sftp.ErrSSHFxFailure}
	}
	// An open directory holds a handle until the client closes it.
	if !h.s.acquire() {
		return nil, errBusy
	}
	if n.path == "/" {
		return &openDir{lister: lister{dirInfo(dirName)}, release: h.s.release}, nil
	}
	entries, err := h.s.lib.List(h.ctx)
	if err != nil {
		h.s.release()
		if errors.Is(err, ErrNotAllowed) {
			h.s.lib.Refused(req.Filepath, "sftp", err)
		}
		return nil, h.status(err, req.Filepath)
	}
	l := make(lister, len(entries))
	for i, e := range entries {
		l[i] = entryInfo(e.Name(), e)
	}
	return &openDir{lister: l, release: h.s.release}, nil
}

// openDir is a directory listing the client holds open; pkg/sftp closes
// it when the client closes its handle (or the session ends).
type openDir struct {
	lister
	once    sync.Once
	release func()
}

func (d *openDir) Close() error {
	d.once.Do(d.release)
	return nil
}

// lister is a directory listing, or one stat.
type lister []os.FileInfo

// ListAt implements sftp.ListerAt.
func (l lister) ListAt(ls []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(ls, l[off:])
	if n < len(ls) {
		return n, io.EOF
	}
	return n, nil
}

// sftpFile is one open recording: a verifying reader that reports the
// download's outcome to Library.Fetched when it is closed.
type sftpFile struct {
	h      *sftpHandler
	r      *reader
	cancel context.CancelFunc

	mu       sync.Mutex
	sent     int64 // bytes returned to the client
	complete bool  // the verified last bytes were returned
	err      error // the first error returned or reported by sftp
	closed   bool
}

// ReadAt implements io.ReaderAt, mapping errors to what the client is told.
func (f *sftpFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.r.ReadAt(p, off)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent += int64(n)
	switch {
	case err == nil || err == io.EOF:
		if off+int64(n) == f.r.entry.Size && (n > 0 || off == 0) {
			f.complete = true
		}
		return n, err
	case f.err == nil, errors.Is(err, ErrIntegrity) && !errors.Is(f.err, ErrIntegrity):
		f.err = err // the first error, unless a mismatch comes after it
	}
	return 0, f.h.status(err, f.r.entry.Name())
}

// TransferError records why the session ended with the file still open.
func (f *sftpFile) TransferError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

// Close ends the download and reports it, once.
func (f *sftpFile) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	sent, err := f.sent, f.err // a read that failed fails the download, even if the last bytes went out later
	if err == nil && !f.complete {
		err = errIncomplete(sent, f.r.entry.Size)
	}
	f.mu.Unlock()

	f.cancel()
	f.r.Close()
	f.h.s.release()
	if errors.Is(err, ErrIntegrity) {
		f.h.s.log.Error("download: recording failed its integrity check", "id", f.r.entry.ID, "via", "sftp", "err", err)
	}
	f.h.s.lib.Fetched(f.r.entry, "sftp", sent, err)
	return nil
}

// errIncomplete is the outcome of a download the client closed early.
func errIncomplete(sent, size int64) error {
	return fmt.Errorf("download: the client stopped after %d of %d bytes", sent, size)
}
