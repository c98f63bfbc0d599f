package download

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"strings"
	"time"
)

// dirName is the one directory under the root.
const dirName = "recordings"

// node is what a path resolves to: the root, the recordings directory, or one
// recording (file true).
type node struct {
	path  string // cleaned, absolute
	file  bool
	entry Entry // when file
}

// isDir reports whether n is one of the two directories.
func (n node) isDir() bool { return !n.file }

// resolve maps a path as a client sends it (relative to "/" or absolute) to a
// node. Anything that is not "/", "/recordings" or "/recordings/<name>" is
// ErrNotFound; a name resolves if it is an entry's Name(), exactly "ID.gz",
// or "ID.manifest" (its signed manifest, when it has one).
// Lookup's ErrLive and other errors pass through.
func (s *Server) resolve(ctx context.Context, p string) (node, error) {
	p = path.Clean("/" + p)
	switch dir, name := path.Split(p); {
	case p == "/" || p == "/"+dirName:
		return node{path: p}, nil
	case dir != "/"+dirName+"/":
		return node{}, ErrNotFound
	case strings.HasSuffix(name, manifestSuffix) && !strings.Contains(name, "_"):
		e, err := s.manifestEntry(ctx, strings.TrimSuffix(name, manifestSuffix))
		if err != nil {
			return node{}, err
		}
		return node{path: p, file: true, entry: e}, nil
	default:
		id, short := recordingID(name)
		if id == "" {
			return node{}, ErrNotFound
		}
		e, err := s.lib.Lookup(ctx, id)
		if err != nil {
			return node{}, err
		}
		if !short && name != e.Name() {
			return node{}, ErrNotFound
		}
		return node{path: p, file: true, entry: e}, nil
	}
}

// namesRecording reports whether p is a file name in the recordings
// directory, one that could name a recording.
func namesRecording(p string) bool {
	dir, name := path.Split(path.Clean("/" + p))
	id, _ := recordingID(name)
	return dir == "/"+dirName+"/" && id != ""
}

// recordingID returns the session id a file name refers to, and whether the
// name is the short form "ID.gz". It returns "" when the name can be neither.
func recordingID(name string) (id string, short bool) {
	if id, _, ok := strings.Cut(name, "_"); ok {
		return id, false
	}
	if id, ok := strings.CutSuffix(name, ".gz"); ok {
		return id, true
	}
	return "", false
}

// fileInfo is the fs.FileInfo of a node, as listed and stat'ed.
type fileInfo struct {
	name    string
	size    int64
	modTime time.Time
	mode    fs.FileMode
}

func dirInfo(name string) fileInfo {
	return fileInfo{name: name, modTime: time.Unix(0, 0), mode: fs.ModeDir | 0o555}
}

func entryInfo(name string, e Entry) fileInfo {
	return fileInfo{name: name, size: e.Size, modTime: e.Started, mode: 0o444}
}

// liveInfo stands for a live session's recording when it is stat'ed: an
// unreadable empty file. Stat succeeding lets OpenSSH's scp and sftp go on to
// open it and show "Permission denied" rather than "No such file".
func liveInfo(name string) fileInfo {
	return fileInfo{name: name, modTime: time.Unix(0, 0)}
}

func (fi fileInfo) Name() string       { return fi.name }
func (fi fileInfo) Size() int64        { return fi.size }
func (fi fileInfo) ModTime() time.Time { return fi.modTime }
func (fi fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi fileInfo) Sys() any           { return nil }

// refusals are the Library's answers that refuse a read it hears of
// (Refused), with what the client is told of each.
var refusals = []struct {
	err  error
	text string
}{
	{ErrNotFound, "no such recording"},
	{ErrLive, liveText},
	{ErrNotAllowed, notAllowedText},
	{ErrUnsealed, unsealedText},
}

// refusal reports whether err refuses a read (a name that does not
// resolve, a live session, a person who may no longer download, a
// recording not finalized) and what the client is told.
func refusal(err error) (text string, ok bool) {
	if e, ok := errors.AsType[*ElsewhereError](err); ok {
		return e.Error(), true
	}
	for _, r := range refusals {
		if errors.Is(err, r.err) {
			return r.text, true
		}
	}
	return "", false
}
