package recorder

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf8"
)

// OpenSSL enc's format.
const (
	saltMagic  = "Salted__"
	saltLen    = 8
	iterations = 10000
)

// Sentinel errors callers branch on.
var (
	// ErrNotRecording: the data is not gzip, or not OpenSSL enc inside.
	ErrNotRecording = errors.New("recorder: not an rr recording (no gzip'd Salted__ header)")
	// ErrWrongPassphrase: the header line does not decrypt to asciicast;
	// the format has no integrity check, so this is how it shows.
	ErrWrongPassphrase = errors.New("recorder: wrong passphrase (the header does not decrypt)")
	// ErrTruncated: the file ends before its closing event, as a file left
	// by a crash does; every event before the cut was returned.
	ErrTruncated = errors.New("recorder: the recording is cut short")
	// ErrDamaged: the file is whole but its bytes are not what was
	// written (the gzip checksum of the ciphertext does not match);
	// what was returned before may be wrong too.
	ErrDamaged = errors.New("recorder: the recording is damaged (its gzip checksum does not match): its content cannot be trusted")
)

// newStream derives the AES-256-CTR keystream of passphrase and salt as
// openssl enc -aes-256-ctr -pbkdf2 does.
func newStream(passphrase string, salt []byte) (cipher.Stream, error) {
	km, err := pbkdf2.Key(sha256.New, passphrase, salt, iterations, 48)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(km[:32])
	if err != nil {
		return nil, err
	}
	return cipher.NewCTR(block, km[32:48]), nil
}

// escapeRoom is the room escape needs in dst for one step: a step may
// keep up to 7 bytes of a copied word and then store one more word (an
// escape of up to 6 bytes, or a rune of up to 4, written as 8).
const escapeRoom = 16

// escape writes p[i:] as the body of a JSON string into dst[d:] until p is
// done or dst has less than escapeRoom bytes left, and returns the new
// positions in dst and p. It never stops inside a UTF-8 sequence, so the
// caller can make room and call again with the positions it got. Bytes
// that are not valid UTF-8 become U+FFFD (one per byte, as
// utf8.DecodeRune reads them); valid is cleared if there were any.
// Bytes of dst past the returned d may have been overwritten with garbage.
//
// The encoding is the Writer's documented one: '"' and '\\' are escaped
// with a backslash, \n \r \t by their short forms, other bytes below 0x20
// as \u00XX, a real U+FFFD as \ufffd (so that U+FFFD written as it is
// always marks bytes that were not valid UTF-8), and everything else (DEL,
// valid UTF-8 including U+2028 and U+2029) is copied as it is.
func escape(dst []byte, d int, p []byte, i int, valid bool) (int, int, bool) {
	var bad uint64 // badByte is set if a byte became U+FFFD
	for i < len(p) && len(dst)-d >= escapeRoom {
		// Most terminal bytes pass unchanged: copy 8 bytes at a time as a
		// word, and of a word with a byte that needs attention keep the
		// bytes before it. (The word is stored whole; what follows that
		// byte is overwritten by the next steps or lies past the returned
		// d.) Storing as we scan beats scanning a run and then copying it
		// when runs are short, as in text dense with escape sequences,
		// and is about even on long runs.
		if len(p)-i >= 8 {
			x := binary.LittleEndian.Uint64(p[i:])
			binary.LittleEndian.PutUint64(dst[d:], x)
			if m := special8(x); m != 0 {
				n := bits.TrailingZeros64(m) >> 3
				i += n
				d += n
			} else {
				// A plain word: likely the start of a run. Go on in a
				// loop on sub-slices, where the compiler drops the
				// bounds checks.
				src, out := p[i+8:], dst[d+8:]
				for len(src) >= 8 && len(out) >= escapeRoom {
					x := binary.LittleEndian.Uint64(src)
					binary.LittleEndian.PutUint64(out, x)
					if m := special8(x); m != 0 {
						n := bits.TrailingZeros64(m) >> 3
						src, out = src[n:], out[n:]
						break
					}
					src, out = src[8:], out[8:]
				}
				i, d = len(p)-len(src), len(dst)-len(out)
				if len(src) == 0 || len(out) < escapeRoom {
					continue
				}
			}
		}
		// A byte that stands for itself: an escape, a plain byte (in the
		// last 7), or a byte that cannot be part of valid UTF-8. Its
		// output is a table word (see byteOut), so that binary data does
		// not branch on each byte's kind.
		c := p[i]
		if e := byteOut[c]; e != 0 {
			binary.LittleEndian.PutUint64(dst[d:], e)
			d += int(e >> 56)
			bad |= e
			i++
			continue
		}
		// c may start a multi-byte sequence.
		if n := validRune(p[i:]); n > 0 {
			if n == 3 && p[i] == 0xef && p[i+1] == 0xbf && p[i+2] == 0xbd {
				d += copy(dst[d:], `\ufffd`)
				i += 3
				continue
			}
			copy(dst[d:d+4], p[i:i+n])
			d += n
			i += n
			continue
		}
		dst[d], dst[d+1], dst[d+2] = "\ufffd"[0], "\ufffd"[1], "\ufffd"[2]
		d += 3
		i++
		bad |= badByte
	}
	return d, i, valid && bad&badByte == 0
}

// byteOut holds, for each byte that escape writes on its own, what it
// writes: up to 6 bytes in the low bytes of the word (little-endian), the
// flag badByte in byte 6 if the byte is not valid UTF-8, and the count of
// bytes written in byte 7. Storing the whole word writes bytes 6 and 7
// too; escape only advances by the count, so they are past the output and
// are overwritten by the next step or ignored. A byte that may start a
// valid multi-byte sequence (first[c] != 0) has 0.
var byteOut = func() (t [256]uint64) {
	const hexDigits = "0123456789abcdef"
	for c := range t {
		var s string
		var flags byte
		switch {
		case c == '"' || c == '\\':
			s = "\\" + string(rune(c))
		case c == '\n':
			s = `\n`
		case c == '\r':
			s = `\r`
		case c == '\t':
			s = `\t`
		case c < 0x20:
			s = `\u00` + string(hexDigits[c>>4]) + string(hexDigits[c&0xf])
		case c < utf8.RuneSelf:
			s = string(rune(c))
		case first[c] == 0:
			s, flags = "\ufffd", byte(badByte>>48)
		default:
			continue
		}
		var w [8]byte
		copy(w[:], s)
		w[6], w[7] = flags, byte(len(s))
		t[c] = binary.LittleEndian.Uint64(w[:])
	}
	return t
}()

// badByte flags a byteOut word of a byte that is not valid UTF-8.
const badByte = 1 << 48

// validRune returns the length of the valid UTF-8 sequence at the start
// of p (whose first byte is not ASCII), or 0 if it is not one: exactly
// when utf8.DecodeRune(p) returns a size above 1 (the same rules: no
// overlong forms, no surrogates, nothing above U+10FFFF). It uses
// unicode/utf8's table scheme so that it inlines the common cases.
func validRune(p []byte) int {
	x := first[p[0]]
	n := int(x & 7)
	if n == 0 || len(p) < n {
		return 0
	}
	// The second byte's range depends on the first (acceptRanges); the
	// third and fourth are plain continuation bytes.
	ar := acceptRanges[x>>4]
	if c := p[1]; c < ar.lo || ar.hi < c {
		return 0
	}
	if n == 2 {
		return 2
	}
	if c := p[2]; c < 0x80 || 0xbf < c {
		return 0
	}
	if n == 3 {
		return 3
	}
	if c := p[3]; c < 0x80 || 0xbf < c {
		return 0
	}
	return 4
}

// first holds, for each byte 0x80–0xFF that can start a sequence, its
// length in the low 3 bits and the index into acceptRanges of its second
// byte's range in the high 4; 0 for bytes that cannot (continuation bytes,
// C0, C1, F5–FF).
var first = func() (t [256]uint8) {
	for c := 0xc2; c <= 0xdf; c++ {
		t[c] = 0<<4 | 2
	}
	for c := 0xe0; c <= 0xef; c++ {
		t[c] = 0<<4 | 3
	}
	t[0xe0] = 1<<4 | 3 // no overlong forms
	t[0xed] = 2<<4 | 3 // no surrogates
	for c := 0xf0; c <= 0xf4; c++ {
		t[c] = 0<<4 | 4
	}
	t[0xf0] = 3<<4 | 4 // no overlong forms
	t[0xf4] = 4<<4 | 4 // nothing above U+10FFFF
	return t
}()

var acceptRanges = [5]struct{ lo, hi uint8 }{
	{0x80, 0xbf},
	{0xa0, 0xbf},
	{0x80, 0x9f},
	{0x90, 0xbf},
	{0x80, 0x8f},
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plain8 reports whether the 8 bytes of x are all printable ASCII other
// than '"' and '\\' (SWAR: no byte < 0x20, >= 0x80, == '"' or == '\\').
func plain8(x uint64) bool { return special8(x) == 0 }

// special8 has the top bit set in the bytes of x that need attention (see
// plain8); the lowest such bit marks the first of them exactly.
//
// Why: in a byte b below 0x80 with no borrow coming in, b-0x20 sets the
// top bit exactly when b < 0x20, and (b^c)-1 exactly when b == c; a byte
// at or above 0x80 is flagged by its own top bit (OR-ing x in). A byte
// only lends a borrow to the bytes above it when it underflowed, i.e. was
// itself flagged, so stray flags can only appear above the first real one.
// (The textbook form ANDs each test with ^x; OR-ing x makes that moot.)
func special8(x uint64) uint64 {
	return ((x - 0x20*lsb) | ((x ^ '"'*lsb) - lsb) | ((x ^ '\\'*lsb) - lsb) | x) & msb
}

// A chunk of binary data (an archive, a core file, random bytes) is
// written as its exact bytes alone, an "ob" or "ib" event: as text, most
// of its bytes would become U+FFFD or \u00XX, about 2.6 bytes for each
// random byte on top of the 1.33 of the exact bytes in base64, and the
// recording would cost several times what it costs for text. Players show
// nothing for such a chunk; rr cat and rr play give its bytes.
const (
	binaryMin  = 256 // shorter chunks are always written as text too: keystrokes, prompts
	binaryScan = 512 // how much of a chunk's start decides
)

// textControls are the control bytes a terminal acts on (BEL, BS, HT, LF,
// VT, FF, CR, SO, SI, ESC), as a bit set: they are text.
const textControls = 1<<0x07 | 1<<0x08 | 1<<0x09 | 1<<0x0a | 1<<0x0b | 1<<0x0c | 1<<0x0d | 1<<0x0e | 1<<0x0f | 1<<0x1b

// isBinary reports whether p is binary data rather than terminal text: it
// is at least binaryMin bytes long and, of its first binaryScan, more than
// one byte in eight is one a terminal neither prints nor acts on — a byte
// that is not valid UTF-8, or a control byte other than textControls.
func isBinary(p []byte) bool {
	if len(p) < binaryMin {
		return false
	}
	n := min(len(p), binaryScan)
	odd := 0
	for i := 0; i < n; {
		if n-i >= 8 && special8(binary.LittleEndian.Uint64(p[i:])) == 0 {
			i += 8 // eight printable ASCII bytes
			continue
		}
		c := p[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && textControls&(1<<c) == 0 {
				odd++
			}
			i++
			continue
		}
		// Decoded in p, not p[:n]: a rune across the scan's end is whole.
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			odd++
		}
		i += size
	}
	return odd*8 > n
}

// encodeBase64 writes p in standard base64 to dst, which has room for
// base64.StdEncoding.EncodedLen(len(p)) bytes: the same bytes as the
// library's Encode, about three times as fast. It takes 6 bytes at a time
// (read as a word of 8), writing their 8 characters as one word made of
// four b64pairs lookups; the library does the last few bytes and the
// padding.
func encodeBase64(dst, p []byte) {
	for len(p) >= 26 && len(dst) >= 32 { // four steps at once, for the CPU to overlap
		a, b := binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[6:])
		c, d := binary.BigEndian.Uint64(p[12:]), binary.BigEndian.Uint64(p[18:])
		binary.LittleEndian.PutUint64(dst, b64word(a))
		binary.LittleEndian.PutUint64(dst[8:], b64word(b))
		binary.LittleEndian.PutUint64(dst[16:], b64word(c))
		binary.LittleEndian.PutUint64(dst[24:], b64word(d))
		p, dst = p[24:], dst[32:]
	}
	for len(p) >= 8 && len(dst) >= 8 {
		binary.LittleEndian.PutUint64(dst, b64word(binary.BigEndian.Uint64(p)))
		p, dst = p[6:], dst[8:]
	}
	base64.StdEncoding.Encode(dst, p)
}

// b64word returns the 8 base64 characters of the top 48 bits of x, as a
// little-endian word.
func b64word(x uint64) uint64 {
	return uint64(b64pairs[x>>52]) | uint64(b64pairs[x>>40&0xfff])<<16 |
		uint64(b64pairs[x>>28&0xfff])<<32 | uint64(b64pairs[x>>16&0xfff])<<48
}

// b64pairs holds, for each 12-bit value, its two base64 characters
// (the first in the low byte).
var b64pairs = func() (t [1 << 12]uint16) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for v := range t {
		t[v] = uint16(alphabet[v>>6]) | uint16(alphabet[v&63])<<8
	}
	return t
}()

// maxFastElapsed bounds where appendElapsed can round in integers: below
// 2^22 s (48 days) Duration.Seconds() is within half an ulp (2^-31 s) of
// the exact value, under 1 ns, so it lies on the same side of every
// rounding point that a whole number of nanoseconds does not sit on.
const maxFastElapsed = (1 << 22) * time.Second

// appendElapsed appends d in seconds with microsecond precision: the same
// bytes as strconv.AppendFloat(dst, d.Seconds(), 'f', 6, 64), without
// its cost. A duration exactly halfway between two microseconds, or
// beyond maxFastElapsed, or negative, is left to strconv (which rounds
// the float's exact value, which may lie on either side).
func appendElapsed(dst []byte, d time.Duration) []byte {
	us, ns := int64(d/time.Microsecond), int64(d%time.Microsecond)
	if d < 0 || d >= maxFastElapsed || ns == 500 {
		return strconv.AppendFloat(dst, d.Seconds(), 'f', 6, 64)
	}
	if ns > 500 {
		us++
	}
	dst = strconv.AppendInt(dst, us/1e6, 10)
	frac := us % 1e6
	var f [7]byte
	f[0] = '.'
	for k := 6; k >= 1; k-- {
		f[k] = byte('0' + frac%10)
		frac /= 10
	}
	return append(dst, f[:]...)
}

// incompleteTail returns how many bytes at the end of p start a UTF-8
// sequence that the next chunk may complete (0 to 3).
func incompleteTail(p []byte) int {
	for n := 1; n <= 3 && n <= len(p); n++ {
		c := p[len(p)-n]
		if c < utf8.RuneSelf {
			return 0
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(p[len(p)-n:]) {
				return n
			}
			return 0
		}
	}
	return 0
}
