package download

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/google/shlex"
)

// scpChunk is how many bytes a legacy scp download reads and writes at a time.
const scpChunk = 32 << 10

// IsSCP reports whether an exec command line is a legacy scp invocation
// ("scp" followed by options).
func IsSCP(command string) bool {
	args, err := shlex.Split(command)
	return err == nil && len(args) > 1 && args[0] == "scp" && strings.HasPrefix(args[1], "-")
}

// scpCommand is a parsed "scp -f …" or "scp -t …" command line.
type scpCommand struct {
	from      bool // -f: the gateway is the source
	to        bool // -t: the gateway would be the sink (an upload)
	recursive bool // -r
	preserve  bool // -p: send times first
	paths     []string
}

// parseSCP parses the command line OpenSSH's scp runs remotely in legacy
// mode: "scp [-dfprtv] [--] path…", options possibly grouped, paths unquoted
// or shell-quoted.
func parseSCP(command string) (scpCommand, error) {
	var c scpCommand
	args, err := shlex.Split(command)
	if err != nil {
		return c, fmt.Errorf("cannot parse the scp command: %v", err)
	}
	if len(args) == 0 || args[0] != "scp" {
		return c, errors.New("not an scp command")
	}
	args = args[1:]
	for len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' {
		opt := args[0]
		args = args[1:]
		if opt == "--" {
			break
		}
		for _, o := range opt[1:] {
			switch o {
			case 'f':
				c.from = true
			case 't':
				c.to = true
			case 'r':
				c.recursive = true
			case 'p':
				c.preserve = true
			case 'd', 'v':
			default:
				return c, fmt.Errorf("scp: unknown option -%c", o)
			}
		}
	}
	c.paths = args
	switch {
	case c.from && c.to:
		return c, errors.New("scp: -f and -t together")
	case c.to:
		return c, nil
	case !c.from:
		return c, errors.New("scp: neither -f nor -t")
	case len(c.paths) == 0:
		return c, errors.New("scp: no recording named")
	}
	return c, nil
}

// ServeSCP runs one legacy scp exec (command is the whole exec string) on rw,
// with diagnostics on stderr; it returns the exit status to send to the
// client. Only downloads ("scp -f") are served, one path after another; an
// upload ("scp -t") is refused. ServeSCP cannot interrupt a blocked read or
// write on rw: when ctx is done the caller closes the channel.
func (s *Server) ServeSCP(ctx context.Context, command string, rw io.ReadWriter, stderr io.Writer) (exitStatus int) {
	cmd, err := parseSCP(command)
	switch {
	case err != nil:
		fmt.Fprintf(rw, "\x01rr: %v\n", err)
		return 1
	case cmd.to:
		io.WriteString(rw, "\x01rr: recordings are read-only\n")
		return 1
	}
	src := &scpSource{s: s, ctx: ctx, w: rw, r: bufio.NewReader(rw), stderr: stderr, cmd: cmd}
	if err := src.ack(); err != nil { // the client's go-ahead
		return 1
	}
	status := 0
	for _, p := range cmd.paths {
		ok, err := src.send(p)
		if err != nil {
			return 1
		}
		if !ok {
			status = 1
		}
	}
	return status
}

// scpSource is the source side of one legacy scp session.
type scpSource struct {
	s      *Server
	ctx    context.Context
	w      io.Writer
	r      *bufio.Reader
	stderr io.Writer
	cmd    scpCommand
}

// clientError is the client's refusal of one file (a "\x01message" answer):
// the session goes on with the next.
type clientError struct{ msg string }

func (e clientError) Error() string { return "download: scp client: " + e.msg }

// ack reads the client's answer: nil for "\0", a clientError for "\x01…";
// any other error ends the session.
func (src *scpSource) ack() error {
	b, err := src.r.ReadByte()
	if err != nil {
		return fmt.Errorf("download: scp: %w", err)
	}
	switch b {
	case 0:
		return nil
	case 1, 2:
		msg, err := src.r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("download: scp: %w", err)
		}
		msg = strings.TrimSuffix(msg, "\n")
		if b == 2 {
			return fmt.Errorf("download: scp client gave up: %s", msg)
		}
		return clientError{msg}
	}
	return fmt.Errorf("download: scp: unexpected answer %q", b)
}

// reject tells the client why a path is not sent.
func (src *scpSource) reject(format string, args ...any) error {
	_, err := fmt.Fprintf(src.w, "\x01rr: "+format+"\n", args...)
	return err
}

// send serves one path. It tells the client itself what went wrong and
// returns false if the path was not sent whole; an error means the session
// cannot go on.
func (src *scpSource) send(p string) (ok bool, err error) {
	n, err := src.s.resolve(src.ctx, p)
	switch {
	case err != nil:
		if text, ok := refusal(err); ok {
			src.s.lib.Refused(p, "scp", err)
			return false, src.reject("%s: %s", p, text)
		}
		src.s.log.Error("download: scp", "path", p, "err", err)
		return false, src.reject("%s: recordings are unavailable right now; try again later", p)
	case n.isDir() && src.cmd.recursive:
		return false, src.reject("%s: is a directory; download one recording at a time: scp rr@gateway:recordings/ID.gz .", p)
	case n.isDir():
		return false, src.reject("%s: not a regular file", p)
	}

	if !src.s.acquire() {
		return false, src.reject("%s: too many recordings open at once on this connection; try again", p)
	}
	defer src.s.release()
	e := n.entry
	rd := src.s.newReader(src.ctx, e)
	defer rd.Close()
	var sent int64
	var outcome error
	defer func() { src.s.lib.Fetched(e, "scp", sent, outcome) }()
	if outcome = rd.start(); outcome != nil { // nothing sent yet: refused whole
		if errors.Is(outcome, ErrIntegrity) {
			src.s.log.Error("download: recording failed its integrity check", "id", e.ID, "via", "scp", "err", outcome)
			return false, src.reject("%s: the recording failed its integrity check; nothing of it was sent", p)
		}
		src.s.log.Error("download: scp", "path", p, "err", outcome)
		return false, src.reject("%s: recordings are unavailable right now; try again later", p)
	}

	if src.cmd.preserve {
		t := e.Started.Unix()
		if outcome = src.command("T%d 0 %d 0\n", t, t); outcome != nil {
			return false, fatal(outcome)
		}
	}
	if outcome = src.command("C0444 %d %s\n", e.Size, path.Base(n.path)); outcome != nil {
		return false, fatal(outcome)
	}

	buf := make([]byte, scpChunk)
	for sent < e.Size {
		if outcome = src.ctx.Err(); outcome != nil {
			return false, outcome
		}
		k, rerr := rd.ReadAt(buf, sent)
		if k > 0 {
			if _, outcome = src.w.Write(buf[:k]); outcome != nil {
				return false, outcome
			}
			sent += int64(k)
		}
		if rerr != nil && rerr != io.EOF {
			outcome = rerr
			break
		}
	}
	if outcome != nil {
		msg := p + ": reading the recording failed; try again later"
		if errors.Is(outcome, ErrIntegrity) {
			src.s.log.Error("download: recording failed its integrity check", "id", e.ID, "via", "scp", "err", outcome)
			msg = "recording failed its integrity check"
		} else {
			src.s.log.Error("download: scp", "path", p, "err", outcome)
		}
		// The client expects Size bytes before the status: pad, then fail
		// this file; the next ones still come.
		if err := src.pad(e.Size - sent); err != nil {
			return false, err
		}
		if err := src.reject("%s", msg); err != nil {
			return false, err
		}
	} else if _, err := src.w.Write([]byte{0}); err != nil {
		outcome = err
		return false, err
	}
	ackErr := src.ack()
	if outcome == nil {
		outcome = ackErr
	}
	return outcome == nil, fatal(ackErr)
}

// command sends one protocol line and reads the client's answer.
func (src *scpSource) command(format string, args ...any) error {
	if _, err := fmt.Fprintf(src.w, format, args...); err != nil {
		return err
	}
	return src.ack()
}

// pad writes n zero bytes.
func (src *scpSource) pad(n int64) error {
	_, err := io.CopyN(src.w, zeros{}, n)
	return err
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// fatal returns err unless it is only the client's refusal of one file.
func fatal(err error) error {
	var ce clientError
	if errors.As(err, &ce) {
		return nil
	}
	return err
}
