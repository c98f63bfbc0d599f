package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/rr-gateway/rr/internal/termtext"
)

// table writes aligned columns: a header row, then one row per add.
type table struct {
	tw *tabwriter.Writer
}

func newTable(out io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)}
	io.WriteString(t.tw, strings.Join(header, "\t")+"\n")
	return t
}

// add writes one row; every cell is made safe for a terminal.
func (t *table) add(cells ...string) {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	io.WriteString(t.tw, strings.Join(cells, "\t")+"\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// cell makes s safe for a table cell on a terminal: "-" when empty, Go
// escapes (quoted) when it holds control, bidi or invisible characters,
// and never a tab. Commands, labels, paths and end reasons are stored as
// people typed them.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	if strings.IndexFunc(s, func(r rune) bool { return unsafeRune(r) || r == unicode.ReplacementChar }) >= 0 {
		// strconv.Quote leaves what Go deems printable (a Hangul
		// filler): termtext escapes the rest.
		return termtext.Escape(strconv.Quote(s))
	}
	return s
}

// unsafeRune reports whether r, written to a terminal, could act rather
// than show, or shows nothing (termtext.Unsafe).
func unsafeRune(r rune) bool { return termtext.Unsafe(r) }

// writeJSON writes v as one JSON document on one line. encoding/json
// escapes C0 controls but not C1 or bidi ones: those are escaped too.
func writeJSON(out io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if bytes.IndexFunc(b, unsafeRune) >= 0 {
		// Only inside strings (JSON's own syntax is ASCII), where \uXXXX
		// means the same character.
		var e bytes.Buffer
		for _, r := range string(b) {
			if unsafeRune(r) {
				if r1, r2 := utf16.EncodeRune(r); r1 != unicode.ReplacementChar {
					fmt.Fprintf(&e, "\\u%04x\\u%04x", r1, r2) // a tag character: a surrogate pair
				} else {
					fmt.Fprintf(&e, "\\u%04x", r)
				}
			} else {
				e.WriteRune(r)
			}
		}
		b = e.Bytes()
	}
	_, err = out.Write(append(b, '\n'))
	return err
}

// oneLine makes an error message safe to print as one line: line breaks
// and tabs become spaces, other unsafe runes are escaped (a person sees
// that something was there).
func oneLine(msg string) string {
	return termtext.Escape(strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, msg))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// stamp formats t for a table: UTC to the second, "-" when zero.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// done reports a change: the message as a line, or {"ok":true,"message":…}.
func done(x *call, msg string) error {
	if x.json {
		return writeJSON(x.out, struct {
			OK      bool   `json:"ok"`
			Message string `json:"message"`
		}{true, msg})
	}
	_, err := io.WriteString(x.out, msg+"\n")
	return err
}
