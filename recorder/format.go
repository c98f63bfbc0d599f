package recorder

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
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

// appendString appends p as the body of a JSON string (no quotes). Bytes
// that are not valid UTF-8 become U+FFFD; valid reports whether there were
// none. Runs of plain bytes are copied in one append.
func appendString(dst, p []byte) (out []byte, valid bool) {
	valid = true
	start := 0
	for i := 0; i < len(p); {
		// Most terminal output is plain ASCII: find the next byte that is
		// not, 8 bytes at a time (the lowest flagged byte of a word is
		// exact), then byte by byte in the last few.
		for {
			if i+8 <= len(p) {
				if m := special8(binary.LittleEndian.Uint64(p[i:])); m != 0 {
					i += bits.TrailingZeros64(m) >> 3
					break
				}
				i += 8
				continue
			}
			for i < len(p) && plainByte[p[i]] {
				i++
			}
			break
		}
		if i >= len(p) {
			break
		}
		c := p[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(p[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, p[start:i]...)
			dst = append(dst, "\ufffd"...)
			valid = false
			i++
			start = i
			continue
		}
		dst = append(dst, p[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	return append(dst, p[start:]...), valid
}

const hexDigits = "0123456789abcdef"

// plainByte marks the bytes that go into a JSON string as they are.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plain8 reports whether the 8 bytes of x are all printable ASCII other
// than '"' and '\\' (SWAR: no byte < 0x20, >= 0x80, == '"' or == '\\').
func plain8(x uint64) bool { return special8(x) == 0 }

// special8 has the top bit set in the bytes of x that need attention (see
// plain8); the lowest such bit marks the first of them exactly (borrows
// can only flag bytes above a real one).
func special8(x uint64) uint64 {
	low := (x - 0x20*lsb) & ^x                      // top bit set in some byte if a byte is < 0x20
	quote := ((x ^ '"'*lsb) - lsb) & ^(x ^ '"'*lsb) // … if a byte is '"'
	bs := ((x ^ '\\'*lsb) - lsb) & ^(x ^ '\\'*lsb)  // … if a byte is '\\'
	// x's own top bits: a byte >= 0x80.
	return (low | quote | bs | x) & msb
}

// appendTime appends seconds with microsecond precision.
func appendTime(dst []byte, secs float64) []byte {
	return strconv.AppendFloat(dst, secs, 'f', 6, 64)
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
