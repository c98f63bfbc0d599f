package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/store"
)

// checkLine enforces the console's input hygiene: bounded, UTF-8, and no
// control characters but tab.
func checkLine(line string) error {
	if len(line) > maxLine {
		return errLineTooLong
	}
	if !utf8.ValidString(line) {
		return errors.New("line is not valid UTF-8")
	}
	for _, r := range line {
		if r != '\t' && unicode.IsControl(r) {
			return fmt.Errorf("line contains control character %U", r)
		}
	}
	return nil
}

// call is one command being run.
type call struct {
	ctx  context.Context
	who  Caller
	out  io.Writer
	cmd  *command
	args []string // the words after the command's name
	json bool     // --json
	// target and detail describe a change for its audit event (parse sets
	// target to the first positional argument; never a flag, which may
	// carry a secret).
	target, detail string
	declared       func(kind, name string) bool // Config.Declared
	term           term
}

// flags returns a flag set for the command, --json already defined.
func (x *call) flags() *flag.FlagSet {
	fs := flag.NewFlagSet(x.cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&x.json, "json", false, "print JSON")
	return fs
}

// parse parses x.args with fs, flags anywhere among the positional
// arguments ("--" ends the flags), and checks that there are between min
// and max positional ones (max < 0: no limit). -h and --help return
// flag.ErrHelp.
func (x *call) parse(fs *flag.FlagSet, min, max int) ([]string, error) {
	var pos []string
	args := x.args
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos, args = append(pos, a), args[1:]
			continue
		}
		n := 1
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if f := fs.Lookup(name); f != nil && !hasValue && !isBool(f) && len(args) > 1 {
			n = 2 // the flag's value is the next word
		}
		if err := fs.Parse(args[:n]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%v; usage: %s", err, x.cmd.usage())
		}
		args = args[n:]
	}
	if len(pos) > 0 && x.target == "" {
		x.target = pos[0]
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return nil, fmt.Errorf("usage: %s", x.cmd.usage())
	}
	if kind := x.cmd.edits; kind != "" && len(pos) > 0 && x.declared != nil && x.declared(kind, pos[0]) {
		return nil, fmt.Errorf("%s %s is declared in the gateway's configuration file, which is applied at every start; change it there",
			kind, pos[0])
	}
	return pos, nil
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// jsonRequested reports whether args carry --json before any "--", so that
// even a command that fails to parse answers in JSON.
func jsonRequested(args []string) bool {
	for _, a := range args {
		switch {
		case a == "--":
			return false
		case a == "-json" || a == "--json":
			return true
		case strings.HasPrefix(a, "-json=") || strings.HasPrefix(a, "--json="):
			_, v, _ := strings.Cut(a, "=")
			b, err := strconv.ParseBool(v)
			return err == nil && b
		}
	}
	return false
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// timeFlag is a point in time given as a duration before now ("2h"),
// RFC 3339, or a UTC date ("2006-01-02").
type timeFlag struct {
	now func() time.Time
	t   time.Time
}

func (f *timeFlag) String() string {
	if f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(v string) error {
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		f.t = f.now().Add(-d)
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			f.t = t
			return nil
		}
	}
	return errors.New(`want a duration ago ("2h"), RFC 3339 or YYYY-MM-DD`)
}

// checkName returns an error unless s is a valid name for what.
func checkName(what, s string) error {
	if !store.ValidName(s) {
		return fmt.Errorf("bad %s name %q: want 1 to 64 letters, digits, '.', '_' or '-'", what, s)
	}
	return nil
}

// checkLabel returns an error unless l is a host label "K=V".
func checkLabel(l string) error {
	if !store.ValidLabel(l) {
		return fmt.Errorf("bad label %q: want K=V (no commas)", l)
	}
	return nil
}

// checkPattern returns an error unless p names hosts for a team: a host
// name, "label:K=V" or "*".
func checkPattern(p string) error {
	if l, ok := strings.CutPrefix(p, "label:"); ok {
		return checkLabel(l) // says what is wrong with the label
	}
	if !store.ValidHostPattern(p) {
		return fmt.Errorf("bad host pattern %q: want a host name, label:K=V or *", p)
	}
	return nil
}

// checkVerifier returns an error unless v is an argon2id or bcrypt hash:
// the console takes only hashes, never a secret.
func checkVerifier(v string) error {
	if !auth.ValidVerifier(v) {
		return errors.New("not an argon2id or bcrypt hash (make one with: rr-gateway passphrase-hash)")
	}
	return nil
}
