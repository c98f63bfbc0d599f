package termtext

import (
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/goleak"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text, accents été, 日本語", "plain text, accents été, 日本語"},
		{"evil\u202eexe.txt", `evil\u202eexe.txt`},
		{"zero\u200bwidth\u2060joiner\ufeff", `zero\u200bwidth\u2060joiner\ufeff`},
		{"\x1b[31mred\x1b[0m\a", `\x1b[31mred\x1b[0m\x07`},
		{"two\nlines\r\tand a tab", `two\x0alines\x0d\x09and a tab`},
		{"8-bit CSI \u009b2J, DEL \x7f", `8-bit CSI \u009b2J, DEL \x7f`},
		{"bad \xff\xfe utf-8", `bad \xff\xfe utf-8`},
		{"isolates \u2066\u2067\u2068\u2069 marks \u200e\u200f\u061c", `isolates \u2066\u2067\u2068\u2069 marks \u200e\u200f\u061c`},
		{"tag \U000e0041, filler \u3164, separator \u2028", `tag \U000e0041, filler \u3164, separator \u2028`},
		{"soft\u00adhyphen", `soft\u00adhyphen`},
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBound(t *testing.T) {
	if got := Bound("short", 256); got != "short" {
		t.Fatalf("Bound kept %q", got)
	}
	long := strings.Repeat("é", 200) // 400 bytes
	got := Bound(long, 256)
	if len(got) > 256 || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Fatalf("Bound: %d bytes, valid %v: %q", len(got), utf8.ValidString(got), got)
	}
}

// FuzzEscape: whatever comes in, what goes out is valid UTF-8 with no
// unsafe rune, and text that was safe is unchanged.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "abc", "\u202e", "\x1b]0;title\a", "\xff", "é\u200b", "\U000e0041"} {
		f.Add(s, 16)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		e := Escape(s)
		if !utf8.ValidString(e) || strings.IndexFunc(e, Unsafe) >= 0 {
			t.Fatalf("Escape(%q) = %q: not safe", s, e)
		}
		if Safe(s) != (e == s) {
			t.Fatalf("Safe(%q) = %v but Escape gives %q", s, Safe(s), e)
		}
		if n >= 0 && n < 1<<16 {
			if b := Bound(s, n); len(b) > n || (len(s) <= n && b != s) {
				t.Fatalf("Bound(%q, %d) = %q", s, n, b)
			}
		}
	})
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
