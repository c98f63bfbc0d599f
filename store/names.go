package store

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
