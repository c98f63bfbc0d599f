package admin

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
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
// escapes (quoted) when it holds control characters, and never a tab.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// writeJSON writes v as one JSON document on one line.
func writeJSON(out io.Writer, v any) error {
	return json.NewEncoder(out).Encode(v)
}

// oneLine makes an error message safe to print as one line.
func oneLine(msg string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(msg, "?"))
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
