// Command rr is for people holding a recording: it replays, prints,
// exports and verifies the files rr-gateway writes, exactly as
// `gzip -dc FILE | openssl enc -d -aes-256-ctr -pbkdf2 -k PASSPHRASE` would
// decrypt them.
package main

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/rr-gateway/rr/recorder"
)

const usage = `rr: read rr session recordings.

Usage:
  rr cat [-input] FILE            the session's output, byte for byte (-input: input too, in order)
  rr play [-speed X] [-max-idle D] FILE
                                  replay the output with its timing (X times faster; pauses
                                  longer than D shortened to D)
  rr export FILE > session.cast   the decrypted asciicast v2 (plays in asciinema play)
  rr verify [-sha256 HEX] FILE    check that FILE decrypts, parses and is complete, and (with
                                  -sha256) that it is the file the gateway recorded
  rr verify -manifest ID.manifest -key KEY ID.gz
                                  check that the manifest is signed by the audit key and that
                                  ID.gz is the recording it describes (size and SHA-256); the
                                  contents are decrypted and checked too when a passphrase is
                                  given (RR_PASSPHRASE or -passphrase-file; never asked)
  rr verify-audit -key KEY [-checkpoints DIR] [FILE]
                                  check an audit trail exported with the console's
                                  'audit --json' (FILE, or standard input): the hash chain, the
                                  checkpoints in the export and those published in DIR; says
                                  where the chain first breaks

KEY is the audit public key, as 'rr-gateway audit-key' prints it (an
authorized_keys or allowed_signers line).

The passphrase is the host's passphrase the person typed when the session
began. It is read from RR_PASSPHRASE, from -passphrase-file FILE, or asked on
the terminal without echo. FILE may be - for standard input.
`

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("rr "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	passFile := fs.String("passphrase-file", "", "read the passphrase from `file` (first line)")
	withInput := fs.Bool("input", false, "cat: include the input")
	speed := fs.Float64("speed", 1, "play: speed factor")
	maxIdle := fs.Duration("max-idle", 0, "play: longest pause in the recording, before -speed applies (0: as recorded)")
	sum := fs.String("sha256", "", "verify: the SHA-256 (hex) the gateway recorded for the file")
	manifest := fs.String("manifest", "", "verify: the recording's signed manifest `file`")
	keyFile := fs.String("key", "", "verify -manifest, verify-audit: the audit public key `file`")
	cpDir := fs.String("checkpoints", "", "verify-audit: a `folder` of published checkpoints (*.checkpoint)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cmd == "verify-audit" {
		if fs.NArg() > 1 {
			fs.Usage()
			return 2
		}
		return verifyAudit(*keyFile, *cpDir, fs.Arg(0), stdin, stdout, stderr)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if cmd == "verify" && *manifest != "" {
		return verifyManifest(*keyFile, *manifest, fs.Arg(0), *passFile, stdin, stdout, stderr)
	}
	switch cmd {
	case "cat", "play", "export", "verify":
	default:
		fmt.Fprintf(stderr, "rr: unknown command %q (rr -h)\n", cmd)
		return 2
	}
	if cmd == "play" && !(*speed >= 0.01 && *speed <= 1000) { // NaN too
		fmt.Fprintln(stderr, "rr: -speed must be between 0.01 and 1000")
		return 2
	}
	in, err := openInput(fs.Arg(0), stdin)
	if err != nil {
		return fail(stderr, err)
	}
	defer in.Close()
	pass, err := passphrase(*passFile, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	// Each command reads the file once, as it goes: a recording of many
	// gigabytes takes no more memory than a small one.
	switch cmd {
	case "cat":
		err = cat(in, pass, *withInput, stdout)
	case "play":
		err = play(in, pass, *speed, *maxIdle, stdout)
	case "export":
		err = export(in, pass, stdout)
	case "verify":
		err = verify(in, pass, *sum, stdout)
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "rr: %v\n", err)
	return 1
}

// openInput opens the file named on the command line ("-": standard
// input).
func openInput(name string, stdin io.Reader) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(stdin), nil
	}
	return os.Open(name)
}

// passphrase comes from the file named on the command line, else
// RR_PASSPHRASE, else the terminal (echo off).
func passphrase(file string, stderr io.Writer) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimRight(line, "\r"), nil
	}
	if v := os.Getenv("RR_PASSPHRASE"); v != "" {
		return v, nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", errors.New("no passphrase: set RR_PASSPHRASE, use -passphrase-file, or run on a terminal")
	}
	defer tty.Close()
	fd := int(tty.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return "", err
	}
	// Ctrl-C at the prompt must not leave the terminal without echo.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	type answer struct {
		b   []byte
		err error
	}
	got := make(chan answer, 1)
	fmt.Fprint(tty, "Passphrase: ")
	go func() {
		b, err := term.ReadPassword(fd)
		got <- answer{b, err}
	}()
	select {
	case a := <-got:
		fmt.Fprintln(tty)
		return string(a.b), a.err
	case s := <-sig:
		term.Restore(fd, state)
		fmt.Fprintln(tty)
		os.Exit(128 + int(s.(syscall.Signal)))
		return "", nil
	}
}

// each calls f for every event, and says at the end whether the file was
// complete.
func each(in io.Reader, pass string, f func(recorder.Event) error) (*recorder.Reader, error) {
	r, err := recorder.NewReader(in, pass)
	if err != nil {
		return nil, err
	}
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r, nil
		}
		if err != nil {
			return r, err
		}
		if err := f(ev); err != nil {
			return r, err
		}
	}
}

func cat(in io.Reader, pass string, withInput bool, w io.Writer) error {
	bw := bufio.NewWriter(w)
	_, err := each(in, pass, func(ev recorder.Event) error {
		if ev.Code == "o" || (withInput && ev.Code == "i") {
			_, err := bw.Write(ev.Data)
			return err
		}
		return nil
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// clock is play's time (the tests' is simulated).
var clock = struct {
	now   func() time.Time
	sleep func(time.Duration)
}{time.Now, time.Sleep}

// play writes the output with its original timing: each event is due at
// its time in the recording (pauses over maxIdle cut to maxIdle, as
// asciinema does, then divided by speed) after the start, and waits only
// if it is early, so that the overshoot of many short sleeps does not add
// up. Events already due go out together.
func play(in io.Reader, pass string, speed float64, maxIdle time.Duration, w io.Writer) error {
	bw := bufio.NewWriter(w)
	start := clock.now()
	var last, at float64 // the last event's time in the recording; its time in the replay, before speed
	_, err := each(in, pass, func(ev recorder.Event) error {
		if ev.Code != "o" {
			return nil
		}
		gap := ev.Time - last
		last = ev.Time
		if maxIdle > 0 && gap > maxIdle.Seconds() {
			gap = maxIdle.Seconds()
		}
		at += max(gap, 0)
		if wait := start.Add(time.Duration(at / speed * float64(time.Second))).Sub(clock.now()); wait > 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
			clock.sleep(wait)
		}
		_, err := bw.Write(ev.Data)
		return err
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// export writes the decrypted asciicast as it is in the file, like the
// openssl command line does, once its first line has shown the passphrase
// right (garbage is never written). A cut or damaged file's export ends
// at its last whole line, so that it still parses (asciinema cat stops at
// a torn line).
func export(in io.Reader, pass string, w io.Writer) error {
	plain, err := recorder.Plaintext(in, pass)
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(plain, 64<<10)
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte // a line longer than br's buffer, gathered
	for first := true; ; {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line = append(line, chunk...)
			continue
		}
		if len(line) > 0 {
			chunk = append(line, chunk...)
			line = line[:0]
		}
		if first {
			if _, herr := recorder.ParseHeader(chunk); herr != nil {
				if err != nil && len(chunk) == 0 {
					return recorder.ErrTruncated
				}
				return herr
			}
			first = false
		}
		if err != nil && err != io.EOF {
			// chunk is the torn line: left out.
			if ferr := bw.Flush(); ferr != nil {
				return ferr
			}
			if errors.Is(err, gzip.ErrChecksum) {
				return recorder.ErrDamaged
			}
			return fmt.Errorf("%w (the complete lines before the cut were written)", recorder.ErrTruncated)
		}
		if _, werr := bw.Write(chunk); werr != nil {
			return werr
		}
		if err == io.EOF {
			return bw.Flush()
		}
	}
}

// countingHash hashes and counts what is read through it.
type countingHash struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (c *countingHash) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// verify reads the file once, parsing its events and hashing its bytes;
// the summary is written only when the file is the one asked for (with
// -sha256).
func verify(file io.Reader, pass, want string, w io.Writer) error {
	src := &countingHash{r: file, h: sha256.New()}
	events, out, in := 0, 0, 0
	var lastT float64
	r, err := each(src, pass, func(ev recorder.Event) error {
		events++
		lastT = ev.Time
		switch ev.Code {
		case "o":
			out += len(ev.Data)
		case "i":
			in += len(ev.Data)
		}
		return nil
	})
	// What the parse did not read (after a cut or a failure) is still
	// part of the file.
	if _, rerr := io.Copy(io.Discard, src); rerr != nil {
		return rerr
	}
	gotHex := hex.EncodeToString(src.h.Sum(nil))
	if want != "" && !strings.EqualFold(want, gotHex) {
		return fmt.Errorf("SHA-256 %s is not the recorded %s: this is not the file the gateway wrote", gotHex, want)
	}
	if r == nil {
		return err
	}
	h := r.Header()
	fmt.Fprintf(w, "session  %s\nhost     %s\nperson   %s\nteam     %s\ncommand  %s\nstarted  %s\nduration %.1fs\nevents   %d (output %d bytes, input %d bytes)\nsize     %d bytes\nsha256   %s\n",
		h.SessionID, h.Host, h.Person, h.Team, h.Command, time.Unix(h.Timestamp, 0).UTC().Format(time.RFC3339),
		lastT, events, out, in, src.n, gotHex)
	if err != nil {
		return fmt.Errorf("incomplete: %w", err)
	}
	if r.End != nil {
		fmt.Fprintf(w, "ended    %s\n", r.End.Reason)
	}
	fmt.Fprintln(w, "ok")
	return nil
}
