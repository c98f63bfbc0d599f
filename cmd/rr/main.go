// Command rr is for people holding a recording: it replays, prints,
// exports and verifies the files rr-gateway writes, exactly as
// `gzip -dc FILE | openssl enc -d -aes-256-ctr -pbkdf2 -k PASSPHRASE` would
// decrypt them.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
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
	maxIdle := fs.Duration("max-idle", 0, "play: longest pause (0: as recorded)")
	sum := fs.String("sha256", "", "verify: the SHA-256 (hex) the gateway recorded for the file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	switch cmd {
	case "cat", "play", "export", "verify":
	default:
		fmt.Fprintf(stderr, "rr: unknown command %q (rr -h)\n", cmd)
		return 2
	}
	if cmd == "play" && *speed <= 0 {
		fmt.Fprintln(stderr, "rr: -speed must be positive")
		return 2
	}
	data, err := readInput(fs.Arg(0), stdin)
	if err != nil {
		return fail(stderr, err)
	}
	pass, err := passphrase(*passFile, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	switch cmd {
	case "cat":
		err = cat(data, pass, *withInput, stdout)
	case "play":
		err = play(data, pass, *speed, *maxIdle, stdout)
	case "export":
		err = export(data, pass, stdout)
	case "verify":
		err = verify(data, pass, *sum, stdout)
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

func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}

// passphrase comes from RR_PASSPHRASE, a file, or the terminal.
func passphrase(file string, stderr io.Writer) (string, error) {
	if v := os.Getenv("RR_PASSPHRASE"); v != "" {
		return v, nil
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimRight(line, "\r"), nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", errors.New("no passphrase: set RR_PASSPHRASE, use -passphrase-file, or run on a terminal")
	}
	defer tty.Close()
	fmt.Fprint(tty, "Passphrase: ")
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return string(b), err
}

func open(data []byte, pass string) (*recorder.Reader, error) {
	return recorder.NewReader(bytes.NewReader(data), pass)
}

// each calls f for every event, and says at the end whether the file was
// complete.
func each(data []byte, pass string, f func(recorder.Event) error) (*recorder.Reader, error) {
	r, err := open(data, pass)
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

func cat(data []byte, pass string, withInput bool, w io.Writer) error {
	bw := bufio.NewWriter(w)
	_, err := each(data, pass, func(ev recorder.Event) error {
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

func play(data []byte, pass string, speed float64, maxIdle time.Duration, w io.Writer) error {
	last := 0.0
	_, err := each(data, pass, func(ev recorder.Event) error {
		if ev.Code != "o" {
			return nil
		}
		d := time.Duration((ev.Time - last) / speed * float64(time.Second))
		last = ev.Time
		if maxIdle > 0 && d > maxIdle {
			d = maxIdle
		}
		time.Sleep(d)
		_, err := w.Write(ev.Data)
		return err
	})
	return err
}

// export writes the decrypted asciicast as it is in the file, like the
// openssl command line does.
func export(data []byte, pass string, w io.Writer) error {
	if _, err := open(data, pass); err != nil { // refuse a wrong passphrase before writing garbage
		return err
	}
	plain, err := recorder.Plaintext(bytes.NewReader(data), pass)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, plain)
	if err != nil {
		return fmt.Errorf("%w (the prefix was written)", recorder.ErrTruncated)
	}
	return nil
}

func verify(data []byte, pass, want string, w io.Writer) error {
	got := sha256.Sum256(data)
	gotHex := hex.EncodeToString(got[:])
	if want != "" && !strings.EqualFold(want, gotHex) {
		return fmt.Errorf("SHA-256 %s is not the recorded %s: this is not the file the gateway wrote", gotHex, want)
	}
	events, out, in := 0, 0, 0
	var lastT float64
	r, err := each(data, pass, func(ev recorder.Event) error {
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
	if r == nil {
		return err
	}
	h := r.Header()
	fmt.Fprintf(w, "session  %s\nhost     %s\nperson   %s\nteam     %s\ncommand  %s\nstarted  %s\nduration %.1fs\nevents   %d (output %d bytes, input %d bytes)\nsize     %d bytes\nsha256   %s\n",
		h.SessionID, h.Host, h.Person, h.Team, h.Command, time.Unix(h.Timestamp, 0).UTC().Format(time.RFC3339),
		lastT, events, out, in, len(data), gotHex)
	if err != nil {
		return fmt.Errorf("incomplete: %w", err)
	}
	if r.End != nil {
		fmt.Fprintf(w, "ended    %s\n", r.End.Reason)
	}
	fmt.Fprintln(w, "ok")
	return nil
}
