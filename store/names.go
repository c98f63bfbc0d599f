package store

import "strings"

// ValidName reports whether s may name a person, a team or a host: 1 to 64
// characters of ASCII letters, digits, '.', '_' and '-', not starting with
// '-' or '.'.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] == '-' || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidLabel reports whether l is a host label "K=V": a non-empty key, no
// comma (labels are stored comma-joined).
func ValidLabel(l string) bool {
	k, _, ok := strings.Cut(l, "=")
	return ok && k != "" && !strings.Contains(l, ",")
}

// ValidHostPattern reports whether p may name hosts for a team: a host
// name, "label:K=V" or "*".
func ValidHostPattern(p string) bool {
	if l, ok := strings.CutPrefix(p, "label:"); ok {
		return ValidLabel(l)
	}
	return p == "*" || ValidName(p)
}
