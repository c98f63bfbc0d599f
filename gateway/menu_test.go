package gateway

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// term is a scripted raw terminal: reads come from in, echo goes to out.
type term struct {
	in  *strings.Reader
	out bytes.Buffer
}

func (t *term) Read(p []byte) (int, error)  { return t.in.Read(p) }
func (t *term) Write(p []byte) (int, error) { return t.out.Write(p) }

func TestReadLine(t *testing.T) {
	tests := []struct {
		in, line string
		ok       bool
		rest     string
	}{
		{in: "web-01\rls\r", line: "web-01", ok: true, rest: "ls\r"},
		{in: "wex\x7fb\r", line: "web", ok: true},
		{in: "\x1b[Aweb\x1bOB\r", line: "web", ok: true},
		{in: "we\x03b\r", ok: false, rest: "b\r"},
		{in: "\x04", ok: false},
		{in: "abc", ok: false}, // EOF before Enter
		{in: "a\tb\x00c\r", line: "abc", ok: true},
		{in: "pä\r", line: "pä", ok: true},
		{in: strings.Repeat("x", 100) + "\r", line: strings.Repeat("x", 64), ok: true},
		{in: "pä\x7f\r", line: "p", ok: true},                        // backspace takes the whole character
		{in: "abc\x15xyz\r", line: "xyz", ok: true},                  // Ctrl-U erases the line
		{in: "\nabc\r\nls\r", line: "abc", ok: true, rest: "\nls\r"}, // the LF of a CR LF
		{in: "\x1b[Oabc\x1b[Iz\r", line: "abcz", ok: true},           // focus out and in
		{in: "\x1b[1;5Dab\r", line: "ab", ok: true},                  // a CSI with parameters
	}
	for _, tt := range tests {
		tm := &term{in: strings.NewReader(tt.in)}
		line, ok := readLine(tm, 64, true)
		rest, _ := io.ReadAll(tm.in)
		if line != tt.line || ok != tt.ok || string(rest) != tt.rest {
			t.Errorf("readLine(%q) = %q, %v, rest %q; want %q, %v, rest %q", tt.in, line, ok, rest, tt.line, tt.ok, tt.rest)
		}
	}
}

func TestMenuLoop(t *testing.T) {
	hosts := []hostEntry{{"web-01", true}, {"web-02", false}}
	online := func(h string) bool { return h == "web-01" }
	tm := &term{in: strings.NewReader("nope\rweb-02\r1\r")}
	if got := menuLoop(tm, hosts, online); got != "web-01" {
		t.Fatalf("picked %q; screen:\n%s", got, tm.out.String())
	}
	screen := tm.out.String()
	for _, want := range []string{"1   web-01   online", "2   web-02   offline", `"nope" is not in the list`, "web-02 is offline"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	if got := menuLoop(&term{in: strings.NewReader("\r")}, hosts, online); got != "" {
		t.Fatalf("empty line picked %q", got)
	}
}

func FuzzReadLine(f *testing.F) {
	for _, s := range []string{"web-01\r", "\x1b[A\r", "a\x7f\x7f\r", "\x03", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tm := &term{in: strings.NewReader(in)}
		line, ok := readLine(tm, 64, true)
		if !ok && line != "" {
			t.Fatal("a line returned with !ok")
		}
		if len(line) > 64 {
			t.Fatalf("line of %d bytes", len(line))
		}
		for i := 0; i < len(line); i++ {
			if line[i] < 0x20 || line[i] == 0x7f {
				t.Fatalf("control byte %#x in %q", line[i], line)
			}
		}
		for _, b := range tm.out.Bytes() {
			if (b < 0x20 && b != '\b') || b == 0x7f {
				t.Fatalf("echoed control byte %#x", b)
			}
		}
		silent := &term{in: strings.NewReader(in)}
		if l2, _ := readLine(silent, 64, false); l2 != line {
			t.Fatalf("without echo: %q vs %q", l2, line)
		}
		if silent.out.Len() != 0 {
			t.Fatalf("echo off wrote %q", silent.out.String())
		}
	})
}
