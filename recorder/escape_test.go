package recorder

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// refString is the simple reference for appendString: byte by byte, as
// utf8.DecodeRune reads the input.
func refString(dst, p []byte) ([]byte, bool) {
	valid := true
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, "\ufffd"...)
			valid = false
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\n':
			dst = append(dst, `\n`...)
		case r == '\r':
			dst = append(dst, `\r`...)
		case r == '\t':
			dst = append(dst, `\t`...)
		case r < 0x20:
			dst = fmt.Appendf(dst, `\u%04x`, r)
		default:
			dst = append(dst, p[i:i+size]...)
		}
		i += size
	}
	return dst, valid
}

// checkEscape compares appendString, and escape run into a small buffer
// that is emptied whenever it fills (as the Writer's block is), with the
// reference; valid UTF-8 must decode back to itself.
func checkEscape(t *testing.T, p []byte, room int) {
	t.Helper()
	want, wantValid := refString(nil, p)
	got, valid := appendString([]byte("x"), p)
	if !bytes.Equal(got[1:], want) || valid != wantValid {
		t.Fatalf("appendString(%q) = %q %v, want %q %v", p, got[1:], valid, want, wantValid)
	}
	var pieces []byte
	buf := make([]byte, escapeRoom+room)
	valid = true
	for i, d := 0, 0; i < len(p); d = 0 {
		d, i, valid = escape(buf, d, p, i, valid)
		pieces = append(pieces, buf[:d]...)
	}
	if !bytes.Equal(pieces, want) || valid != wantValid {
		t.Fatalf("escape(%q) in pieces of %d = %q %v, want %q %v", p, room, pieces, valid, want, wantValid)
	}
	if wantValid {
		var s string
		if err := json.Unmarshal([]byte(`"`+string(got[1:])+`"`), &s); err != nil || s != string(p) {
			t.Fatalf("%q: decodes to %q, %v", p, s, err)
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add([]byte("plain ascii, long enough for words"), uint8(0))
	f.Add([]byte("a\"b\\c\nd\re\tf\x00\x1f\x7f\x1b[0m"), uint8(3))
	f.Add([]byte("naïve € 𝄞 \u2028 \xff\xfe \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf"), uint8(1))
	f.Add(terminalText()[:300], uint8(7))
	f.Fuzz(func(t *testing.T, p []byte, room uint8) {
		checkEscape(t, p, int(room))
	})
}

func TestEscapeRandom(t *testing.T) {
	alphabet := []byte("ab \"\\\n\r\t\x00\x1b\x7f\xc3\xaf\xe2\x82\xac\xf0\x9f\x98\x80\xff\x80\xed\xa0")
	for k := 0; k < 2000; k++ {
		p := make([]byte, mrand.IntN(200))
		for i := range p {
			if mrand.IntN(3) == 0 {
				p[i] = byte(mrand.Uint32())
			} else {
				p[i] = alphabet[mrand.IntN(len(alphabet))]
			}
		}
		checkEscape(t, p, mrand.IntN(40))
	}
}

// TestIsBinaryMatchesReference: isBinary (which skips printable ASCII a
// word at a time) says what refBinary says, on chunks around the length
// bounds, with runes across the scan's end, and with every density of
// odd bytes around one in eight.
func TestIsBinaryMatchesReference(t *testing.T) {
	pieces := [][]byte{[]byte("a"), []byte("plain text "), []byte("\r\n"), []byte("\x1b[0m"), []byte("é"), []byte("漢"), []byte("😀"),
		{0}, {0x01}, {0x7f}, {0xff}, {0xc3}, {0xe6, 0xbc}, []byte("\ufffd"), {0x1f}, {0x0e}}
	for k := 0; k < 50000; k++ {
		var p []byte
		n := []int{255, 256, 257, 511, 512, 513, 600, 4000}[mrand.IntN(8)] + mrand.IntN(3) - 1
		odd := mrand.IntN(4) // how often to take a piece that may be odd
		for len(p) < n {
			if mrand.IntN(4) < odd {
				p = append(p, pieces[mrand.IntN(len(pieces))]...)
			} else {
				p = append(p, pieces[mrand.IntN(2)]...)
			}
		}
		p = p[:n]
		if got, want := isBinary(p), refBinary(p); got != want {
			t.Fatalf("isBinary(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestEncodeBase64: the same bytes as encoding/base64 at every length
// up to 200 (each remainder after the 6-byte steps), on random data.
func TestEncodeBase64(t *testing.T) {
	p := make([]byte, 200)
	for k := 0; k < 50; k++ {
		rand.Read(p)
		for n := 0; n <= len(p); n++ {
			want := base64.StdEncoding.EncodeToString(p[:n])
			got := make([]byte, len(want))
			encodeBase64(got, p[:n])
			if string(got) != want {
				t.Fatalf("encodeBase64(% x) = %s, want %s", p[:n], got, want)
			}
		}
	}
}

// TestValidRune: validRune agrees with utf8.DecodeRune on every first two
// bytes, with the third and fourth at the edges of their ranges.
func TestValidRune(t *testing.T) {
	edges := []byte{0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff}
	p := make([]byte, 4)
	for a := 0x80; a < 0x100; a++ {
		for b := 0; b < 0x100; b++ {
			for _, c := range edges {
				for _, d := range edges {
					p[0], p[1], p[2], p[3] = byte(a), byte(b), c, d
					for n := 1; n <= 4; n++ {
						want := 0
						if r, size := utf8.DecodeRune(p[:n]); r != utf8.RuneError || size > 1 {
							want = size
						}
						if got := validRune(p[:n]); got != want {
							t.Fatalf("validRune(% x) = %d, want %d", p[:n], got, want)
						}
					}
				}
			}
		}
	}
}

// TestAppendElapsed: the same bytes as strconv on durations around every
// rounding point and up to and past maxFastElapsed.
func TestAppendElapsed(t *testing.T) {
	check := func(d time.Duration) {
		want := strconv.AppendFloat(nil, d.Seconds(), 'f', 6, 64)
		if got := appendElapsed(nil, d); !bytes.Equal(got, want) {
			t.Fatalf("appendElapsed(%d) = %s, want %s", int64(d), got, want)
		}
	}
	for _, d := range []time.Duration{0, 1, 499, 500, 501, 999, 1000, 1500, 2500, time.Second - 1, time.Second, -1, -500, -1501, maxFastElapsed - 1, maxFastElapsed, maxFastElapsed + 501, 1 << 62} {
		check(d)
	}
	for k := 0; k < 200000; k++ {
		base := time.Duration(mrand.Int64N(int64(maxFastElapsed+time.Hour))) / 1000 * 1000
		for _, ns := range []time.Duration{0, 1, 499, 500, 501, 999, time.Duration(mrand.IntN(1000))} {
			check(base + ns)
		}
	}
}

// TestWriterMatchesReference: a recording's plaintext is exactly the
// documented asciicast, event by event, including events larger than a
// block (text, dense escapes, text with invalid bytes and its base64
// twin, and binary data as base64 alone).
func TestWriterMatchesReference(t *testing.T) {
	random := make([]byte, 100<<10)
	rand.Read(random)
	chunks := [][]byte{
		[]byte("hello\r\n"),
		[]byte("ls\r"),
		bytes.Repeat([]byte("naïve \"q\" \\ \x1b[0m\x00\x01"), 5000),
		append(random[:70000:70000], 'z'),
		append(random[70000:], 'z'),
		bytes.Repeat([]byte{0}, 40000),
		logText(),
		bytes.Repeat([]byte("caf\xe9 au lait, s'il vous pla\xeet. "), 30), // Latin-1 prose: text, with a twin
		[]byte("\xff"),
	}
	file := record(t, chunks, End{Reason: "exit 0"})
	header, _ := json.Marshal(Header{Version: 2, Width: 80, Height: 24, Timestamp: 1700000000, SessionID: "s1", Host: "web-01", Person: "alice"})
	want := append(header, '\n')
	ms := 0
	event := func(code string, body []byte) {
		want = fmt.Appendf(want, "[%s, %q, \"%s\"]\n", strconv.FormatFloat(float64(ms)/1000, 'f', 6, 64), code, body)
	}
	for i, c := range chunks {
		ms++
		code := [2]string{"o", "i"}[i%2]
		if refBinary(c) {
			event(code+"b", base64.StdEncoding.AppendEncode(nil, c))
			continue
		}
		body, valid := refString(nil, c)
		event(code, body)
		if !valid {
			event(code+"b", base64.StdEncoding.AppendEncode(nil, c))
		}
	}
	ms++
	end, _ := json.Marshal(End{Reason: "exit 0"})
	body, _ := refString(nil, end)
	event("x", body)
	got := goPlain(t, file)
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("plaintext differs at byte %d of %d/%d: got %q, want %q", i, len(got), len(want), got[i:min(len(got), i+80)], want[i:min(len(want), i+80)])
	}
}

// refBinary is isBinary's rule written plainly: a chunk of at least 256
// bytes whose first 512 hold more than one byte in eight that is not valid
// UTF-8 or is a control byte other than BEL BS HT LF VT FF CR SO SI ESC.
func refBinary(p []byte) bool {
	if len(p) < 256 {
		return false
	}
	n, odd := min(len(p), 512), 0
	for i := 0; i < n; {
		r, size := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			odd++
		case r < 0x20 && !strings.ContainsRune("\a\b\t\n\v\f\r\x0e\x0f\x1b", r):
			odd++
		}
		i += size
	}
	return odd*8 > n
}

// appendString appends p as the body of a JSON string (no quotes). Bytes
// that are not valid UTF-8 become U+FFFD; valid reports whether there were
// none. (The Writer calls escape directly, into its block buffer; this is
// escape over one buffer, for the tests and benchmarks.)
func appendString(dst, p []byte) (out []byte, valid bool) {
	n := len(dst)
	// Room for the worst case (6 bytes out per byte in) and escape's slack,
	// so that one call does it all.
	dst = slices.Grow(dst, 6*len(p)+escapeRoom)
	d, _, valid := escape(dst[:cap(dst)], n, p, 0, true)
	return dst[:d], valid
}
