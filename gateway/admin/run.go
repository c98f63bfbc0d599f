package admin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"
)

// prompt is what the console prints before each line.
const prompt = "rr-admin> "

// Run serves one console: reads lines from in until EOF, "quit"/"exit" or
// ctx done (noticed between lines: to interrupt a read, close in), runs
// each, writes output to out and one-line errors to errOut.
//
// tty=true means the client has a PTY in raw mode: Run echoes what is
// typed (backspace and DEL erase, Ctrl-C clears the line, Ctrl-D on an
// empty line ends), writes "\r\n" line ends, and prints the prompt and
// errors on out. Without a tty there is no echo, lines end in "\n", and the
// prompt goes to errOut, so that piped output stays clean.
//
// A change's second factor is asked where the prompt goes (the terminal,
// or errOut), its answer read as the next line (not echoed on a tty).
//
// Errors print as "rr-admin: MESSAGE", or as {"error":"MESSAGE"} on out
// when the command asked for --json. Run returns the number of commands
// that failed.
func (c *Console) Run(ctx context.Context, who Caller, in io.Reader, out, errOut io.Writer, tty bool) (failed int) {
	return c.RunAs(ctx, func(context.Context) (Caller, error) { return who, nil }, in, out, errOut, tty)
}

// RunAs is Run with the caller looked up before every command (their
// role and team as they are now: a demotion or a removal takes effect at
// the next command). An error from who ends the console, its message
// told.
func (c *Console) RunAs(ctx context.Context, who func(context.Context) (Caller, error), in io.Reader, out, errOut io.Writer, tty bool) (failed int) {
	rawOut := out
	if tty {
		out = crlfWriter{out}
		errOut = out
	}
	lines := &lineReader{r: bufio.NewReader(in), tty: tty, echo: out}
	done := make(chan struct{})
	defer close(done)
	t := term{ask: &linePrompter{lines: lines, w: errOut}, raw: rawOut, lines: lines, tty: tty, done: done}
	for ctx.Err() == nil {
		fmt.Fprint(errOut, prompt)
		line, readErr := lines.next()
		if readErr != nil && !errors.Is(readErr, io.EOF) && !errors.Is(readErr, errLineTooLong) {
			return failed // the channel is gone
		}
		if errors.Is(readErr, io.EOF) && line == "" {
			if tty {
				fmt.Fprint(out, "\n")
			}
			return failed
		}
		asJSON, err := false, readErr
		if err == nil || errors.Is(err, io.EOF) {
			caller, werr := who(ctx)
			if werr != nil {
				fmt.Fprintf(errOut, "rr-admin: %s\n", oneLine(werr.Error()))
				return failed + 1
			}
			asJSON, err = c.exec(ctx, caller, line, out, t)
		}
		if errors.Is(err, errQuit) {
			return failed
		}
		if err != nil {
			failed++
			if asJSON {
				writeJSON(out, struct {
					Error string `json:"error"`
				}{oneLine(err.Error())})
			} else {
				fmt.Fprintf(errOut, "rr-admin: %s\n", oneLine(err.Error()))
			}
		}
		if errors.Is(readErr, io.EOF) {
			return failed
		}
	}
	return failed
}

// lineReader reads lines of at most maxLine bytes, discarding the rest of
// longer ones, and on a tty echoes and edits them as they are typed.
type lineReader struct {
	r      io.ByteReader
	pumped *pumpedReader // set once a watch reads the input on a goroutine
	tty    bool
	echo   io.Writer // where a tty's echo goes
	lastCR bool      // the last byte was '\r', so a '\n' now ends nothing (CRLF)
	hide   bool      // a secret is typed: no echo
}

// next returns the next line without its end. A line cut short by EOF
// comes with io.EOF; a too long one is errLineTooLong.
func (lr *lineReader) next() (string, error) {
	var buf []byte
	tooLong := false
	for {
		b, err := lr.r.ReadByte()
		if err != nil {
			if len(buf) == 0 && !tooLong {
				return "", err
			}
			if tooLong {
				return "", errLineTooLong
			}
			return string(buf), err
		}
		skipLF := lr.lastCR && b == '\n'
		lr.lastCR = b == '\r'
		switch {
		case skipLF:
			continue
		case b == '\n' || b == '\r':
			lr.write("\n")
			if tooLong {
				return "", errLineTooLong
			}
			return string(buf), nil
		case lr.tty && b == 0x03: // Ctrl-C: start over
			lr.write("^C\n")
			return "", nil
		case lr.tty && b == 0x04: // Ctrl-D: end on an empty line
			if len(buf) == 0 && !tooLong {
				return "", io.EOF
			}
		case lr.tty && (b == 0x7f || b == 0x08): // DEL, backspace
			if len(buf) > 0 && !tooLong {
				_, n := utf8.DecodeLastRune(buf)
				buf = buf[:len(buf)-n]
				if !lr.hide {
					lr.write("\b \b")
				}
			}
		case tooLong:
		case len(buf) >= maxLine:
			tooLong = true
		default:
			buf = append(buf, b)
			lr.echoTail(buf)
		}
	}
}

// echoTail echoes the rune that byte just completed at the end of buf:
// printable ones as typed, anything else as '?' or ^X, so that the echo
// never drives the terminal.
func (lr *lineReader) echoTail(buf []byte) {
	if !lr.tty || lr.hide {
		return
	}
	start := len(buf) - 1
	for start > 0 && len(buf)-start < utf8.UTFMax && !utf8.RuneStart(buf[start]) {
		start--
	}
	tail := buf[start:]
	if !utf8.FullRune(tail) {
		return // wait for the rest of the rune
	}
	r, n := utf8.DecodeRune(tail)
	switch {
	case n != len(tail) || r == utf8.RuneError:
		lr.write("?")
	case r == '\t' || unicode.IsPrint(r):
		lr.write(string(tail))
	case r < 0x20:
		lr.write("^" + string(r+'@'))
	default:
		lr.write("?")
	}
}

func (lr *lineReader) write(s string) {
	if lr.tty {
		io.WriteString(lr.echo, s)
	}
}

// crlfWriter turns "\n" into "\r\n", as a terminal in raw mode needs.
type crlfWriter struct{ w io.Writer }

func (c crlfWriter) Write(p []byte) (int, error) {
	if _, err := c.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}
