package events

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"unicode/utf8"
)

// Priority is Falco's eight levels, most severe first (syslog's order):
// a lower number is more severe.
type Priority int

// The priorities.
const (
	Emergency Priority = iota
	Alert
	Critical
	Error
	Warning
	Notice
	Informational
	Debug
)

var priorityNames = [...]string{"emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"}

// String is the priority's name in lower case.
func (p Priority) String() string {
	if p < Emergency || p > Debug {
		return "unknown"
	}
	return priorityNames[p]
}

// AtLeast reports whether p is min or more severe.
func (p Priority) AtLeast(min Priority) bool { return p <= min }

// ParsePriority reads a priority name, case-insensitively; "info" is
// informational (Falco writes both).
func ParsePriority(s string) (Priority, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "info" {
		return Informational, true
	}
	for i, n := range priorityNames {
		if s == n {
			return Priority(i), true
		}
	}
	return 0, false
}

// PriorityNames lists the names, most severe first.
func PriorityNames() []string { return priorityNames[:] }

// severity maps Alertmanager's severity label onto the priorities; an
// alert without one is a warning (the label's usual default).
func severity(s string) Priority {
	if p, ok := ParsePriority(s); ok {
		return p
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "page", "fatal", "disaster":
		return Critical
	case "high", "major", "err":
		return Error
	case "warn", "medium", "minor", "average":
		return Warning
	case "low":
		return Notice
	case "none", "ok":
		return Informational
	}
	return Warning
}

// Sources of events, as they appear in URLs, tokens and metrics.
const (
	SourceFalco        = "falco"
	SourceAlertmanager = "alertmanager"
)

// Sources lists the sources the intake serves.
func Sources() []string { return []string{SourceFalco, SourceAlertmanager} }

// Parsed is one event as a delivery carries it, before it is stored.
type Parsed struct {
	Source   string
	Rule     string
	Priority Priority
	Time     int64  // Unix nanoseconds
	Host     string // as the payload names it; "" when it names none
	Summary  string // one line
	Raw      []byte // the event's own JSON, bounded (maxRaw)
	// Key identifies the event across deliveries: a repeated delivery
	// with the same key is a duplicate.
	Key string
	// Resolved is an Alertmanager alert whose status is "resolved": it
	// resolves the event Key names rather than making one.
	Resolved bool
}

// Bounds on what one event may store.
const (
	maxRaw     = 16 << 10 // raw payload kept for event show
	maxSummary = 200      // runes
	maxField   = 256      // bytes of a rule or host name
)

// ErrBadPayload is wrapped by every parse error; its text says which
// field is wrong.
var ErrBadPayload = errors.New("bad payload")

// oneLine makes s a bounded single line: whitespace runs (newlines
// included) become one space, invalid UTF-8 is replaced.
func oneLine(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max-1]) + "…"
	}
	return s
}

// bounded returns s cut to max bytes on a rune boundary, as one line.
func bounded(s string) string {
	s = oneLine(s, maxField)
	for len(s) > maxField {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// NewID returns a fresh event id a person can type: "e-" and six hex
// digits.
func NewID() string {
	var b [3]byte
	rand.Read(b[:])
	return "e-" + hex.EncodeToString(b[:])
}

// ValidID reports whether s has an event id's form.
func ValidID(s string) bool {
	h, ok := strings.CutPrefix(s, "e-")
	if !ok || len(h) < 6 || len(h) > 16 {
		return false
	}
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
