package termtext

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unsafe reports whether r, written to a terminal, could act rather than
// show, or shows nothing at all.
func Unsafe(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f: // C0, DEL: the common case first
		return true
	case r < 0x80:
		return false
	case unicode.IsControl(r), // C1
		unicode.Is(unicode.Cf, r),                          // bidi, zero-width, BOM, soft hyphen, tags…
		unicode.Is(unicode.Zl, r),                          // U+2028
		unicode.Is(unicode.Zp, r),                          // U+2029
		r == 0x115f, r == 0x1160, r == 0x3164, r == 0xffa0: // Hangul fillers: letters that show nothing
		return true
	}
	return false
}

// Safe reports whether s is valid UTF-8 without an unsafe rune, so that
// Escape would return it unchanged.
func Safe(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || Unsafe(r) {
			return false
		}
		i += size
	}
	return true
}

// Escape returns s with every unsafe rune written as a Go escape (\x1b,
// \u202e, \U000e0041) and every byte of invalid UTF-8 as \xNN; the rest,
// other scripts included, is left as it is. Newlines and tabs are escaped
// too: the result is one line.
func Escape(s string) string {
	if Safe(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case r < 0x80 && Unsafe(r):
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
		case Unsafe(r):
			q := strconv.QuoteRuneToASCII(r) // '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&0xf]})
}

// Bound returns s cut to at most n bytes, on a rune boundary when s is
// valid UTF-8 there, with "…" (within the n bytes) when it was cut.
func Bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "…"
	if n < len(more) {
		return s[:n]
	}
	cut := n - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) && cut > n-len(more)-utf8.UTFMax {
		cut--
	}
	return s[:cut] + more
}
