package recorder

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"testing"
)

const chunk = 32 << 10

// terminalText is what a shell mostly prints: ASCII, newlines, some
// escape sequences and a little UTF-8.
func terminalText() []byte {
	line := []byte("drwxr-xr-x  2 root root  4096 Nov 24 18:33 \x1b[01;34mbin\x1b[0m  naïve \"quoted\" path\\x\r\n")
	var b bytes.Buffer
	for b.Len() < chunk {
		b.Write(line)
	}
	return b.Bytes()[:chunk]
}

// BenchmarkAESCTR is the baseline: AES-256-CTR alone over the same chunks.
func BenchmarkAESCTR(b *testing.B) {
	s, _ := newStream("passphrase", []byte("saltsalt"))
	buf := terminalText()
	b.SetBytes(chunk)
	b.ReportAllocs()
	for b.Loop() {
		s.XORKeyStream(buf, buf)
	}
}

// BenchmarkSHA256 is the file's digest alone (the spool hashes every byte
// it writes): with AES-CTR, the part of recording's cost no recorder can
// shed.
func BenchmarkSHA256(b *testing.B) {
	h := sha256.New()
	buf := terminalText()
	b.SetBytes(chunk)
	b.ReportAllocs()
	for b.Loop() {
		h.Write(buf)
	}
}

func benchRecorder(b *testing.B, data []byte) {
	w, err := NewWriter(io.Discard, "passphrase", Header{SessionID: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Output(data); err != nil {
			b.Fatal(err)
		}
	}
}

// logText is a log file being paged: plain ASCII lines.
func logText() []byte {
	line := []byte("Nov 24 18:33:02 web-01 sshd[1234]: Accepted publickey for deploy from 10.0.0.7 port 52144 ssh2\r\n")
	var b bytes.Buffer
	for b.Len() < chunk {
		b.Write(line)
	}
	return b.Bytes()[:chunk]
}

// BenchmarkRecorderLog: the recorder on plain log lines.
func BenchmarkRecorderLog(b *testing.B) { benchRecorder(b, logText()) }

// BenchmarkRecorderText: asciicast encoding + AES-CTR + gzip framing +
// buffered writes, on colored ls output (an escape, a quote, a backslash
// and non-ASCII in every line: the dense case).
func BenchmarkRecorderText(b *testing.B) { benchRecorder(b, terminalText()) }

// BenchmarkRecorderBinary: the worst case, random bytes (U+FFFD display
// text plus the exact bytes in base64), each chunk ending in the first
// byte of a 3-byte sequence, so that every chunk is joined to the bytes
// held from the one before (a chunk that happened to end so made the
// figure depend on luck).
func BenchmarkRecorderBinary(b *testing.B) {
	data := make([]byte, chunk)
	rand.Read(data)
	data[len(data)-1] = 0xe2
	benchRecorder(b, data)
}

// BenchmarkRecorderKeystroke: one byte at a time, as typing is.
func BenchmarkRecorderKeystroke(b *testing.B) { benchRecorder(b, []byte("a")) }

// The gzip layer frames ciphertext, which does not compress: these show
// what each level costs on it.
func benchGzip(b *testing.B, level int) {
	data := make([]byte, chunk)
	rand.Read(data)
	gz, _ := gzip.NewWriterLevel(io.Discard, level)
	b.SetBytes(chunk)
	b.ReportAllocs()
	for b.Loop() {
		gz.Write(data)
	}
}

func BenchmarkGzipStored(b *testing.B)      { benchGzip(b, gzip.NoCompression) }
func BenchmarkGzipHuffmanOnly(b *testing.B) { benchGzip(b, gzip.HuffmanOnly) }
func BenchmarkGzipBestSpeed(b *testing.B)   { benchGzip(b, gzip.BestSpeed) }

// The escaping alone, on the recorder benchmarks' data (not a ratio in
// make bench: for looking at the encoder by itself).
func benchEscape(b *testing.B, data []byte) {
	buf := make([]byte, 0, 6*len(data)+escapeRoom)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendString(buf[:0], data)
	}
}

func BenchmarkEscapeLog(b *testing.B)  { benchEscape(b, logText()) }
func BenchmarkEscapeText(b *testing.B) { benchEscape(b, terminalText()) }
func BenchmarkEscapeBinary(b *testing.B) {
	data := make([]byte, chunk)
	rand.Read(data)
	benchEscape(b, data)
}

// The exact-bytes events' base64: ours (encodeBase64) against the library's.
func BenchmarkBase64Ours(b *testing.B)    { benchBase64(b, encodeBase64) }
func BenchmarkBase64Library(b *testing.B) { benchBase64(b, base64.StdEncoding.Encode) }

func benchBase64(b *testing.B, encode func(dst, p []byte)) {
	p := make([]byte, 32<<10)
	dst := make([]byte, base64.StdEncoding.EncodedLen(len(p)))
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		encode(dst, p)
	}
}
