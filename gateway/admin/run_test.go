package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/shlex"
)

// run feeds input to a console for who and returns what went to out and
// errOut, and the failure count.
func (e *env) run(who Caller, input string, tty bool) (out, errOut string, failed int) {
	var o, eo bytes.Buffer
	failed = e.console.Run(context.Background(), who, strings.NewReader(input), &o, &eo, tty)
	return o.String(), eo.String(), failed
}

func TestRunPiped(t *testing.T) {
	e := newEnv(t)
	out, errOut, failed := e.run(bob, "whoami\r\n# a comment\n\n   \nsessions --live --json\nnope\nwhoami", false)
	want := "PERSON  ROLE      TEAM\nbob     advanced  ops\n" +
		`[{"id":"ops-live",` // the JSON list, on stdout only
	if !strings.HasPrefix(out, want) || strings.Contains(out, "rr-admin") || !strings.HasSuffix(out, "bob     advanced  ops\n") {
		t.Fatalf("stdout %q", out)
	}
	if failed != 1 || errOut != strings.Repeat(prompt, 6)+"rr-admin: unknown command \"nope\"; type help\n"+prompt {
		t.Fatalf("failed %d, stderr %q", failed, errOut)
	}
	// quit and exit end the console at once.
	for _, q := range []string{"quit", "exit", "  exit  "} {
		if out, _, failed := e.run(bob, q+"\nwhoami\n", false); out != "" || failed != 0 {
			t.Fatalf("%s: %q %d", q, out, failed)
		}
	}
	// A JSON command's error is JSON on stdout.
	out, errOut, failed = e.run(bob, "show nope --json\n", false)
	if out != `{"error":"no session \"nope\""}`+"\n" || errOut != prompt+prompt || failed != 1 {
		t.Fatalf("JSON error: %q %q %d", out, errOut, failed)
	}
	// A cancelled context ends the console before the next line.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var o bytes.Buffer
	if n := e.console.Run(ctx, bob, strings.NewReader("whoami\n"), &o, &o, false); n != 0 || o.Len() != 0 {
		t.Fatalf("after cancel: %d %q", n, o.String())
	}
}

func TestRunTTY(t *testing.T) {
	e := newEnv(t)
	// Typing with a correction, a line abandoned with Ctrl-C, an error,
	// then Ctrl-D on an empty line.
	out, errOut, failed := e.run(bob, "wx\x7fhoami\rxyz\x03nope\r\n\x04whoami\r", true)
	want := prompt + "wx\b \bhoami\r\n" +
		"PERSON  ROLE      TEAM\r\nbob     advanced  ops\r\n" +
		prompt + "xyz^C\r\n" +
		prompt + "nope\r\n" +
		"rr-admin: unknown command \"nope\"; type help\r\n" +
		prompt + "\r\n"
	if out != want || errOut != "" || failed != 1 {
		t.Fatalf("tty:\n got %q\nwant %q\nstderr %q failed %d", out, want, errOut, failed)
	}
	// Control characters echo harmlessly, and are refused.
	out, _, failed = e.run(bob, "who\x1b[2Jami\t\r", true)
	if !strings.HasPrefix(out, prompt+"who^[[2Jami\t\r\nrr-admin: line contains control character U+001B\r\n") || failed != 1 {
		t.Fatalf("control characters: %q", out)
	}
	// A UTF-8 rune echoes whole; a stray byte as '?'.
	out, _, _ = e.run(bob, "é\xff\r", true)
	if !strings.HasPrefix(out, prompt+"é?\r\nrr-admin: line is not valid UTF-8\r\n") {
		t.Fatalf("UTF-8 echo: %q", out)
	}
}

func TestInputHygiene(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("a", maxLine+1000)
	for _, tty := range []bool{false, true} {
		nl := "\n"
		if tty {
			nl = "\r"
		}
		out, errOut, failed := e.run(bob, long+nl+"whoami"+nl, tty)
		if tty {
			errOut = out
		}
		if failed != 1 || !strings.Contains(errOut, "rr-admin: line too long (max 4096 bytes)") || !strings.Contains(out, "bob     advanced  ops") {
			t.Fatalf("tty=%v long line: %d %q %q", tty, failed, out, errOut)
		}
		if tty && (strings.Contains(out, long[:maxLine+1]) || !strings.Contains(out, long[:maxLine])) {
			t.Fatal("echo of a too long line: want the first 4096 bytes only")
		}
	}
	// Exactly the limit is a line, if not a command.
	if _, errOut, _ := e.run(bob, strings.Repeat("a", maxLine)+"\n", false); !strings.Contains(errOut, "unknown command") {
		t.Fatalf("a line of exactly %d bytes: %q", maxLine, errOut)
	}
	for line, want := range map[string]string{
		"who\xffami":            "line is not valid UTF-8",
		"whoami\x00":            "line contains control character U+0000",
		"show \u009b31m":        "line contains control character U+009B",
		long:                    "line too long (max 4096 bytes)",
		"nope":                  `unknown command "nope"; type help`,
		"team":                  `unknown command "team"; type help team`,
		"team member frob a b":  `unknown command "team member frob"; type help team`,
		"show 'unterminated":    "bad quoting: EOF found when expecting closing quote",
		"sessions --bogus":      "flag provided but not defined: -bogus; usage: sessions [--live] [--host H] [--user U] [--event ID] [--since S] [--limit N]",
		"sessions extra":        "usage: sessions [--live] [--host H] [--user U] [--event ID] [--since S] [--limit N]",
		"show":                  "usage: show ID",
		"show a b":              "usage: show ID",
		"show -- --json":        `no session "--json"`,
		"show --json -- nope":   `no session "nope"`,
		"sessions --limit 0":    "--limit must be positive",
		"sessions --host":       "flag needs an argument: -host; usage: sessions [--live] [--host H] [--user U] [--event ID] [--since S] [--limit N]",
		"whoami --json=maybe":   `invalid boolean value "maybe" for -json: parse error; usage: whoami`,
		"show \"ops-done\" x":   "usage: show ID",
		"kill nope -- --json x": `no session "nope"`,
	} {
		if _, msg := e.exec(bob, line); msg != want {
			t.Errorf("%.40q: %q, want %q", line, msg, want)
		}
	}
	// Blank lines and comments do nothing.
	for _, line := range []string{"", "   ", "\t", "# sessions", "  # x"} {
		if out, msg := e.exec(bob, line); out != "" || msg != "" {
			t.Errorf("%q: %q %q", line, out, msg)
		}
	}
	// Flags anywhere; "--" ends them; a flag's value may be "--".
	a, _ := e.exec(bob, "show ops-done --json")
	b, _ := e.exec(bob, "show --json ops-done")
	if a == "" || a != b {
		t.Fatalf("flag order matters: %q vs %q", a, b)
	}
	if out, _ := e.exec(bob, "kill ops-live -- --json -x"); out != "killed session ops-live (host web-01, person bob)\n" ||
		e.kills[0] != "ops-live bob --json -x" {
		t.Fatalf("kill with a dashed reason: %q %q", out, e.kills)
	}
	if out, msg := e.exec(admin, "sessions --host -- --json"); msg != "" || out != "[]\n" {
		t.Fatalf(`"--" as a flag's value: %q %q`, out, msg)
	}
	// help, and --help on any command.
	out, _ := e.exec(admin, "help")
	for _, cmd := range e.console.cmds {
		if !strings.Contains(out, cmd.usage()) {
			t.Errorf("help lacks %q", cmd.usage())
		}
	}
	for _, line := range []string{"help audit", "audit --help", "audit -h"} {
		if out, msg := e.exec(admin, line); msg != "" || !strings.Contains(out, "JSON Lines") {
			t.Errorf("%q: %q %q", line, out, msg)
		}
	}
	if out, _ := e.exec(admin, "help team member"); !strings.Contains(out, "team member add") || strings.Contains(out, "team host") {
		t.Errorf("help team member:\n%s", out)
	}
}

// fuzzSeeds are example lines: every command, and the awkward inputs.
var fuzzSeeds = append([]string{
	"help", "help sessions", "help team member", "whoami", "sessions", "sessions --live --host web-01 --user bob --since 2h --limit 5 --json",
	"sessions --since 2026-11-24", "show ops-done", "show --json ops-live", "kill ops-live going now", "kill sec-live",
	"audit --since 1h --until 2026-12-01T00:00:00Z --actor bob --action session. --session ops-live --limit 3 --json",
	"user add dave --email d@example.com --role advanced", "user set bob --email b@example.org --clear-password",
	"team rapid-response sec on", "host labels web-01 a=b c=d", "host token web-02 --ttl 1h", "quit", "exit",
	"", "# comment", "show -- --json", "show 'a b", `show "a\"b"`, "kill x -- -y", "who\xffami", "who\x1bami",
	"sessions --host", "--", "-", "--json", "team", "team member", "user", "key add bob ssh-ed25519",
}, adminLines...)

// FuzzExec checks that no line panics the console, and that every line
// yields output or a one-line error (or is blank, a comment, quit, or an
// audit --json that matched no events).
func FuzzExec(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, true)
		f.Add(s, false)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, line string, asAdmin bool) {
		who := bob
		if asAdmin {
			who = admin
		}
		out, msg := e.exec(who, line)
		if strings.ContainsAny(msg, "\r\n") || !utf8.ValidString(msg) {
			t.Fatalf("%q: error message %q is not one line", line, msg)
		}
		if out == "" && msg == "" {
			words, _ := shlex.Split(line)
			jsonLines := len(words) > 0 && words[0] == "audit" && jsonRequested(words[1:]) // no events, no lines
			if checkLine(line) == nil && len(words) > 0 && words[0] != "quit" && words[0] != "exit" && !jsonLines {
				t.Fatalf("%q: neither output nor error", line)
			}
		}
		// Through Run, on a terminal and not, it never panics.
		e.run(who, line+"\r", true)
		e.run(who, line+"\n", false)
	})
}

// TestRunAsAsksBeforeEachCommand: the caller is looked up before every
// command; once that fails (demoted, removed), the console ends with the
// reason and runs nothing more.
func TestRunAsAsksBeforeEachCommand(t *testing.T) {
	e := newEnv(t)
	calls := 0
	who := func(context.Context) (Caller, error) {
		if calls++; calls > 1 {
			return Caller{}, errors.New("your role or team has changed since you logged in; log in again")
		}
		return bob, nil
	}
	var o, eo bytes.Buffer
	failed := e.console.RunAs(context.Background(), who, strings.NewReader("whoami\nwhoami\nwhoami\n"), &o, &eo, false)
	if failed != 1 || strings.Count(o.String(), "bob") != 1 || !strings.Contains(eo.String(), "log in again") || calls != 2 {
		t.Fatalf("failed %d, calls %d, out %q, err %q", failed, calls, o.String(), eo.String())
	}
}

// TestJSONCannotDriveATerminal: stored strings (a command line, a label)
// holding C1 controls or bidi overrides come out of --json escaped, as
// they do in tables.
func TestJSONCannotDriveATerminal(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSON(&b, map[string]string{"command": "echo \u009b2J\u202egnp.exe \x1b[31m"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\u009b\u202e\x1b") || !strings.Contains(out, `\u009b`) || !strings.Contains(out, `\u202e`) {
		t.Fatalf("JSON %q", out)
	}
	var back map[string]string
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back["command"] != "echo \u009b2J\u202egnp.exe \x1b[31m" {
		t.Fatalf("escaped JSON does not decode to the same: %q %v", back["command"], err)
	}
	if c := cell("a\u202eb"); !strings.HasPrefix(c, `"`) {
		t.Errorf("a table cell with a bidi override: %q, want it quoted", c)
	}
	// Invisible ones too: zero-width, a tag character (outside the BMP:
	// a surrogate pair in JSON), a Hangul filler.
	const hidden = "kill\u200b-9 \U000e0041 \u3164 \u2060"
	b.Reset()
	if err := writeJSON(&b, map[string]string{"reason": hidden}); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); strings.ContainsAny(out, "\u200b\U000e0041\u3164\u2060") || json.Unmarshal(b.Bytes(), &back) != nil || back["reason"] != hidden {
		t.Errorf("JSON %q decodes to %q", out, back["reason"])
	}
	if c := cell(hidden); c != `"kill\u200b-9 \U000e0041 \u3164 \u2060"` {
		t.Errorf("a table cell with invisible characters: %q, want them escaped", c)
	}
	if m := oneLine("no host \"a\u202eb\"\nsecond line\x1b[2J"); m != `no host "a\u202eb" second line\x1b[2J` {
		t.Errorf("an error message as one line: %q", m)
	}
}
