package recorder

import (
	"bytes"
	"compress/gzip"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/rr-gateway/rr/internal/testtool"
)

const pass = "correct horse battery"

// record writes a recording of the given chunks (even: output, odd:
// input) and returns the file's bytes.
func record(t testing.TB, chunks [][]byte, end End) []byte {
	t.Helper()
	var buf bytes.Buffer
	clock := time.Unix(1700000000, 0)
	w, err := NewWriter(&buf, pass, Header{Width: 80, Height: 24, SessionID: "s1", Host: "web-01", Person: "alice"},
		func() time.Time { clock = clock.Add(time.Millisecond); return clock })
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range chunks {
		if i%2 == 0 {
			err = w.Output(c)
		} else {
			err = w.Input(c)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(end); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// replay reads a recording back: all output, all input, the end.
func replay(t testing.TB, file []byte) (out, in []byte, end *End, err error) {
	r, err := NewReader(bytes.NewReader(file), pass)
	if err != nil {
		return nil, nil, nil, err
	}
	for {
		ev, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return out, in, r.End, err
		}
		switch ev.Code {
		case "o":
			out = append(out, ev.Data...)
		case "i":
			in = append(in, ev.Data...)
		}
	}
}

func chunksOf(parts ...string) [][]byte {
	var c [][]byte
	for _, p := range parts {
		c = append(c, []byte(p))
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	random := make([]byte, 100<<10)
	rand.Read(random)
	euro := "€" // three bytes, split across chunks below
	tests := map[string][][]byte{
		"empty":           nil,
		"text":            chunksOf("hello\r\n", "ls\r", "a\tb \"q\" \\ \x1b[1mbold\x1b[0m\x07\x00", ""),
		"split utf-8":     {[]byte("price: " + euro[:1]), []byte("x"), []byte(euro[1:] + " ok")},
		"binary":          {random, []byte("in"), random[:7]},
		"invalid at end":  {[]byte("tail \xe2\x82")},
		"large":           {bytes.Repeat([]byte("0123456789abcdef"), 1<<16)},
		"many small ones": bytes.SplitAfter(bytes.Repeat([]byte("ab\n"), 3000), []byte("\n")),
	}
	for name, chunks := range tests {
		zero := 0
		file := record(t, chunks, End{Reason: "exit 0", ExitStatus: &zero})
		out, in, end, err := replay(t, file)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var wantOut, wantIn []byte
		for i, c := range chunks {
			if i%2 == 0 {
				wantOut = append(wantOut, c...)
			} else {
				wantIn = append(wantIn, c...)
			}
		}
		if !bytes.Equal(out, wantOut) || !bytes.Equal(in, wantIn) {
			t.Errorf("%s: output %d/%d bytes, input %d/%d bytes differ", name, len(out), len(wantOut), len(in), len(wantIn))
		}
		if end == nil || end.Reason != "exit 0" || end.ExitStatus == nil || *end.ExitStatus != 0 {
			t.Errorf("%s: end %+v", name, end)
		}
	}
}

func TestWrongPassphraseAndGarbage(t *testing.T) {
	file := record(t, chunksOf("secret output"), End{Reason: "exit 0"})
	if _, err := NewReader(bytes.NewReader(file), "not it"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := NewReader(strings.NewReader("plain text"), pass); !errors.Is(err, ErrNotRecording) {
		t.Fatalf("garbage: %v", err)
	}
	if bytes.Contains(file, []byte("secret output")) {
		t.Fatal("plaintext in the file")
	}
}

func need(t *testing.T, tools ...string) { t.Helper(); testtool.Need(t, tools...) }

// stock decrypts with the command line users are told to use.
func stock(t *testing.T, file []byte, passphrase string) (plain []byte, gzipOK bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rec.gz")
	os.WriteFile(path, file, 0o600)
	cmd := exec.Command("bash", "-c", `gzip -dc "$1"; echo $? >"$1.gz-status"`, "x", path)
	gz, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	status, _ := os.ReadFile(path + ".gz-status")
	dec := exec.Command("openssl", "enc", "-d", "-aes-256-ctr", "-pbkdf2", "-k", passphrase)
	dec.Stdin = bytes.NewReader(gz)
	var stderr bytes.Buffer
	dec.Stderr = &stderr
	plain, err = dec.Output()
	if err != nil {
		t.Fatalf("openssl: %v: %s", err, stderr.String())
	}
	return plain, strings.TrimSpace(string(status)) == "0"
}

// goPlain decrypts with Go's own gzip and CTR, for comparison.
func goPlain(t *testing.T, file []byte) []byte {
	gz, err := gzip.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(gz) // a cut file ends in an error: keep the prefix
	stream, _ := newStream(pass, data[8:16])
	out := make([]byte, len(data)-16)
	cipher.Stream(stream).XORKeyStream(out, data[16:])
	return out
}

func TestStockToolsDecrypt(t *testing.T) {
	need(t, "gzip", "openssl")
	random := make([]byte, 64<<10)
	rand.Read(random)
	file := record(t, [][]byte{[]byte("héllo\r\n"), []byte("ls\r"), random}, End{Reason: "client gone"})
	plain, ok := stock(t, file, pass)
	if !ok {
		t.Fatal("gzip -dc failed on a whole file")
	}
	if !bytes.Equal(plain, goPlain(t, file)) {
		t.Fatal("openssl's plaintext differs from ours")
	}
	lines := strings.Split(strings.TrimSuffix(string(plain), "\n"), "\n")
	var h Header
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil || h.Version != 2 || h.Width != 80 || h.SessionID != "s1" {
		t.Fatalf("header %q: %v", lines[0], err)
	}
	for _, l := range lines[1:] {
		var ev []any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("event line %q is not asciicast: %v", l, err)
		}
	}
	if !strings.HasPrefix(lines[1], `[0.`) || !strings.Contains(lines[1], `"o", "héllo\r\n"`) || !strings.Contains(lines[len(lines)-1], `"x"`) {
		t.Fatalf("events: %q … %q", lines[1], lines[len(lines)-1])
	}
}

// TestCutFileKeepsPrefix: a file cut anywhere after the header yields,
// with the stock tools and with Reader, exactly a prefix of the session.
func TestCutFileKeepsPrefix(t *testing.T) {
	need(t, "gzip", "openssl")
	var chunks [][]byte
	for i := 0; i < 200; i++ {
		chunks = append(chunks, bytes.Repeat([]byte{byte('a' + i%26)}, 1+i*37%500))
	}
	file := record(t, chunks, End{Reason: "exit 0"})
	full := goPlain(t, file)
	for i := 0; i < 12; i++ {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(file)-200)))
		cut := file[:200+n.Int64()]
		plain, ok := stock(t, cut, pass)
		if ok {
			t.Fatalf("gzip -dc succeeded on a file cut at %d of %d", len(cut), len(file))
		}
		if !bytes.HasPrefix(full, plain) {
			t.Fatalf("cut at %d: the decrypted text is not a prefix of the session", len(cut))
		}
		out, _, _, err := replay(t, cut)
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d of %d: reader said %v", len(cut), len(file), err)
		}
		var all []byte
		for j := 0; j < len(chunks); j += 2 {
			all = append(all, chunks[j]...)
		}
		if !bytes.HasPrefix(all, out) {
			t.Fatalf("cut at %d: reader's output is not a prefix", len(cut))
		}
	}
}

// TestFlushMakesEventsDurable: what was flushed decodes from the file as
// it stands, without Close — as after a SIGKILL.
func TestFlushMakesEventsDurable(t *testing.T) {
	need(t, "gzip", "openssl")
	var buf bytes.Buffer
	w, err := NewWriter(&buf, pass, Header{SessionID: "s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The header is on its way before any event.
	if plain, _ := stock(t, buf.Bytes(), pass); !strings.Contains(string(plain), `"session_id":"s"`) {
		t.Fatalf("header not decodable right after NewWriter: %q", plain)
	}
	w.Output([]byte("before the flush"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Output([]byte("after the flush"))
	snapshot := append([]byte(nil), buf.Bytes()...)
	plain, _ := stock(t, snapshot, pass)
	if !strings.Contains(string(plain), "before the flush") {
		t.Fatalf("flushed event lost: %q", plain)
	}
	out, _, _, err := replay(t, snapshot)
	if !errors.Is(err, ErrTruncated) || string(out) != "before the flush" {
		t.Fatalf("reader: %q %v", out, err)
	}
	w.Close(End{Reason: "x"})
	if err := w.Output([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), []byte("\xff\xfe"), uint8(3))
	f.Add([]byte("€uro"), []byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, a, b []byte, split uint8) {
		// Cut a at split so that sequences straddle chunks.
		s := int(split) % (len(a) + 1)
		chunks := [][]byte{a[:s], b, a[s:], b}
		file := record(t, chunks, End{Reason: "r"})
		out, in, _, err := replay(t, file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, append(append([]byte(nil), a[:s]...), a[s:]...)) || !bytes.Equal(in, append(append([]byte(nil), b...), b...)) {
			t.Fatalf("round trip lost bytes: out %q in %q", out, in)
		}
	})
}

func FuzzPlain8(f *testing.F) {
	f.Add(uint64(0x4142434445464748))
	f.Add(uint64(0x41424344454647_22))
	f.Add(uint64(0x1f42434445464748))
	f.Fuzz(func(t *testing.T, x uint64) {
		want := true
		for i := 0; i < 8; i++ {
			c := byte(x >> (8 * i))
			if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
				want = false
			}
		}
		if got := plain8(x); got != want {
			t.Fatalf("plain8(%#x) = %v, want %v", x, got, want)
		}
	})
}

// TestQuietRecordingHoldsNoBlock: a Flush that finds nothing new gives the
// block back, and the next event takes one again.
func TestQuietRecordingHoldsNoBlock(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, pass, Header{SessionID: "q"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Output([]byte("busy")); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if w.blk == nil {
		t.Fatal("a flush right after output released the block")
	}
	w.Flush()
	if w.blk != nil {
		t.Fatal("a quiet recording still holds its block")
	}
	if err := w.Output([]byte(" again")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(End{Reason: "exit 0"}); err != nil {
		t.Fatal(err)
	}
	out, _, end, err := replay(t, buf.Bytes())
	if err != nil || string(out) != "busy again" || end == nil || end.Reason != "exit 0" {
		t.Fatalf("replay: %q %v %v", out, end, err)
	}
}

// TestEveryCutOfBinaryKeepsExactPrefix: cut anywhere — including between
// an "o" event and the "ob" twin holding its exact bytes, or inside a
// chunk of binary data written as its exact bytes alone — the Reader gives
// back an exact prefix of what was recorded, never replacement text.
// (The cuts are made in the plaintext, as a cut file decrypts to a cut
// plaintext followed by gzip's error.)
func TestEveryCutOfBinaryKeepsExactPrefix(t *testing.T) {
	var chunks [][]byte
	var all []byte
	random := make([]byte, 300)
	rand.Read(random)
	for i := 0; i < 20; i++ {
		c := []byte(fmt.Sprintf("line %d \xff\xfe bytes\r\n", i))
		if i%5 == 4 {
			c = random // binary data: its exact bytes alone
		}
		chunks = append(chunks, c, nil)
		all = append(all, c...)
	}
	r, err := Plaintext(bytes.NewReader(record(t, chunks, End{Reason: "exit 0"})), pass)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	header := bytes.IndexByte(plain, '\n') + 1
	for cut := header; cut < len(plain); cut++ {
		rd, err := newPlainReader(io.MultiReader(bytes.NewReader(plain[:cut]), iotest.ErrReader(io.ErrUnexpectedEOF)))
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for {
			ev, err := rd.Next()
			if err != nil {
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("cut at %d of %d: %v, want ErrTruncated", cut, len(plain), err)
				}
				break
			}
			if ev.Code == "o" {
				out = append(out, ev.Data...)
			}
		}
		if !bytes.HasPrefix(all, out) {
			t.Fatalf("cut at %d of %d: %q is not a prefix of the output", cut, len(plain), out)
		}
	}
}

// TestLostTrailerIsTruncated: a file missing any of its last bytes (the
// gzip trailer: end block, CRC-32, size) holds the whole session but is
// still cut, and the Reader says so.
func TestLostTrailerIsTruncated(t *testing.T) {
	file := record(t, [][]byte{[]byte("whole\r\n")}, End{Reason: "exit 0"})
	for cut := len(file) - 13; cut < len(file); cut++ {
		out, _, end, err := replay(t, file[:cut])
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d of %d: %v, want ErrTruncated", cut, len(file), err)
		}
		if string(out) != "whole\r\n" || end == nil {
			t.Fatalf("cut at %d of %d: output %q, end %v; want the whole session", cut, len(file), out, end)
		}
	}
	if _, _, _, err := replay(t, file); err != nil {
		t.Fatalf("whole file: %v", err)
	}
}

// failingWriter fails every write after the first ok ones.
type failingWriter struct{ ok int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.ok == 0 {
		return 0, errors.New("disk gone")
	}
	f.ok--
	return len(p), nil
}

// TestWriterAfterAWriteError: once the destination fails, every call
// reports the error; none panics, whatever it appends (here a chunk that
// fills the block, then one that needs the exact-bytes twin).
func TestWriterAfterAWriteError(t *testing.T) {
	w, err := NewWriter(&failingWriter{ok: 2}, pass, Header{SessionID: "broken"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := []func() error{
		func() error { return w.Output(bytes.Repeat([]byte("a"), 32728)) },
		func() error { return w.Output(append([]byte{0xff}, bytes.Repeat([]byte("a"), 32726)...)) },
		func() error { return w.Input([]byte("\xfe\xfd typed")) },
		func() error { return w.Resize(100, 40) },
		func() error { return w.Flush() },
		func() error { return w.Close(End{Reason: "exit 0"}) },
	}
	failed := 0
	for _, c := range calls {
		if c() != nil {
			failed++
		}
	}
	if failed < len(calls)-1 {
		t.Fatalf("%d of %d calls reported the broken destination", failed, len(calls))
	}
}

// TestHeldBytesReachTheFile: the start of a UTF-8 sequence a chunk ended
// in is written at the next flush, and before the other direction's next
// event: a crash after the flush keeps it, in order, and rr cat's exact
// bytes are what came.
func TestHeldBytesReachTheFile(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, pass, Header{Width: 80, Height: 24}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Output([]byte("binary \xf0"))
	w.Input([]byte("exit\r"))
	w.Output([]byte("\x9f\x98\x80 after"))
	w.Output([]byte("x \xe2\x82"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// A crash here: no Close.
	r, err := NewReader(bytes.NewReader(buf.Bytes()), pass)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	var out []byte
	for {
		ev, err := r.Next()
		if err != nil {
			break
		}
		if ev.Code == "o" || ev.Code == "i" {
			order = append(order, ev.Code)
		}
		if ev.Code == "o" {
			out = append(out, ev.Data...)
		}
	}
	if want := "binary \xf0\x9f\x98\x80 afterx \xe2\x82"; string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
	// "binary ", then the held byte as an event of its own, then the input.
	if got := strings.Join(order, ""); !strings.HasPrefix(got, "ooi") {
		t.Errorf("events in the order %s: the held output byte came after the input", got)
	}
}

// TestBlockNeverOutgrows: an event that starts with exactly its header's
// room left stays in the 32 KiB block (no reallocation), and a character
// split between two big chunks leaves no chunk-sized buffer behind once
// the session is quiet.
func TestBlockNeverOutgrows(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Unix(1700000000, 0)
	w, err := NewWriter(&buf, pass, Header{Width: 80, Height: 24}, func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	// `[0.000000, "o", "` is 17 bytes and `"]\n` 3: leave 16 free.
	if err := w.Output(bytes.Repeat([]byte("a"), blockSize-len(w.blk)-16-20)); err != nil {
		t.Fatal(err)
	}
	w.Output([]byte("b"))
	if cap(w.blk) != blockSize {
		t.Errorf("block reallocated to %d bytes", cap(w.blk))
	}
	a := append(bytes.Repeat([]byte("é"), 16<<10-1), 0xc3)
	b := append([]byte{0xa9}, bytes.Repeat([]byte("é"), 16<<10-1)...)
	w.Output(a)
	w.Output(b)
	w.Flush()
	w.Flush() // quiet now: the block and the join buffer go
	if w.join != nil {
		t.Errorf("a %d-byte join buffer kept by a quiet session", cap(w.join))
	}
	if err := w.Close(End{Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	out, _, _, err := replay(t, buf.Bytes())
	if err != nil || !bytes.HasSuffix(out, b) {
		t.Fatalf("replay: %v", err)
	}
}

// TestFlushedEventsSurviveACut: after a crash, the file gives back every
// event written before the last flush — including one whose text holds a
// real U+FFFD (written \ufffd, so it is told from bytes that were
// replaced), and whatever the cut leaves of the events after it.
func TestFlushedEventsSurviveACut(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, pass, Header{Width: 80, Height: 24}, nil)
	if err != nil {
		t.Fatal(err)
	}
	flushed := []byte("first\r\nreplaced by a tool: \xef\xbf\xbd\r\nbinary \xff\xfe\r\n")
	w.Output(flushed[:7])
	w.Output(flushed[7:31])
	w.Output(flushed[31:])
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	at := buf.Len()
	w.Output([]byte("after the flush\r\n"))
	w.Close(End{Reason: "exit 0"})
	file := buf.Bytes()
	for cut := at; cut < len(file); cut++ {
		out, _, _, err := replay(t, file[:cut])
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d of %d: %v, want ErrTruncated", cut, len(file), err)
		}
		if !bytes.HasPrefix(out, flushed) {
			t.Fatalf("cut at %d: %q, want everything flushed (%q) first", cut, out, flushed)
		}
	}
	plain, _ := io.ReadAll(mustPlaintext(t, file))
	if !bytes.Contains(plain, []byte(`a tool: \ufffd`)) {
		t.Errorf("a real U+FFFD is not written \\ufffd:\n%s", plain)
	}
}

func mustPlaintext(t *testing.T, file []byte) io.Reader {
	t.Helper()
	p, err := Plaintext(bytes.NewReader(file), pass)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSplitCharactersAreJoined: a character split between two chunks (two
// SSH packets) is recorded whole, as text players show, with no U+FFFD
// and no exact-bytes twin; bytes held at a resize reach the file before
// the resize event.
func TestSplitCharactersAreJoined(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, pass, Header{Width: 80, Height: 24}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"é", "€", "𝄞", "\u2028"} {
		for cut := 1; cut < len(s); cut++ {
			w.Output([]byte("<" + s[:cut]))
			w.Output([]byte(s[cut:] + ">"))
		}
	}
	w.Output([]byte("resize \xe2\x82")) // held: the rest has not come
	w.Resize(100, 30)
	w.Close(End{Reason: "exit 0"})
	plain, _ := io.ReadAll(mustPlaintext(t, buf.Bytes()))
	lines := strings.Split(strings.TrimSpace(string(plain)), "\n")[1:]
	var joined strings.Builder
	resize := -1
	for i, l := range lines {
		var ev [3]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		switch ev[1] {
		case "o":
			joined.WriteString(ev[2].(string))
		case "r":
			resize = i
		}
	}
	want := "<é><€><€><𝄞><𝄞><𝄞><\u2028><\u2028>resize "
	if got := joined.String(); !strings.HasPrefix(got, want) {
		t.Errorf("the text events read %q, want %q first: a split character was not joined", got, want)
	}
	if n := strings.Count(string(plain[:bytes.Index(plain, []byte("resize"))]), `"ob"`); n != 0 {
		t.Errorf("%d exact-bytes twins for characters that were only split", n)
	}
	if resize < 1 || !strings.Contains(lines[resize-1], `"ob", "4oI="`) {
		t.Errorf("the bytes held at the resize are not in the file before it:\n%s", plain)
	}
}

// TestBadLineAfterOutputIsReported: a line that does not parse right
// after an "o" event (read ahead for its twin) is an error, not skipped.
func TestBadLineAfterOutputIsReported(t *testing.T) {
	r, err := newPlainReader(strings.NewReader(`{"version":2,"width":80,"height":24}` + "\n" +
		`[0.1, "o", "a"]` + "\n" + `[0.2, 7, "junk"]` + "\n" + `[0.3, "o", "b"]` + "\n" + `[0.4, "x", "{}"]` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := r.Next(); err != nil || string(ev.Data) != "a" {
		t.Fatalf("first event: %+v %v", ev, err)
	}
	if ev, err := r.Next(); err == nil {
		t.Fatalf("the bad line was skipped: next event %+v", ev)
	}
}

// TestCutInsideTheHeader: a file cut inside its header line is cut short,
// not a wrong passphrase; a wrong passphrase still says so.
func TestCutInsideTheHeader(t *testing.T) {
	file := record(t, [][]byte{[]byte("hello")}, End{Reason: "exit 0"})
	plain, _ := io.ReadAll(mustPlaintext(t, file))
	headerEnd := bytes.IndexByte(plain, '\n')
	cuts := 0
	for cut := 1; cut < len(file); cut++ {
		p, err := Plaintext(bytes.NewReader(file[:cut]), pass)
		if err != nil {
			continue // not even the gzip and OpenSSL headers
		}
		got, _ := io.ReadAll(p)
		if len(got) == 0 || len(got) >= headerEnd { // the whole header (its newline aside) parses
			continue
		}
		cuts++
		if _, err := NewReader(bytes.NewReader(file[:cut]), pass); !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d (%d bytes of the header): %v, want ErrTruncated", cut, len(got), err)
		}
		if _, err := NewReader(bytes.NewReader(file[:cut]), "wrong"); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("cut at %d with a wrong passphrase: %v", cut, err)
		}
	}
	if cuts == 0 {
		t.Fatal("no cut fell inside the header")
	}
}

// TestSplitTailsDoNotAllocate: chunks that end inside a UTF-8 sequence
// (a fifth of binary chunks, most of CJK text's) are joined to the next
// without allocating, as long as the session is busy.
func TestSplitTailsDoNotAllocate(t *testing.T) {
	w, err := NewWriter(io.Discard, pass, Header{Width: 80, Height: 24}, nil)
	if err != nil {
		t.Fatal(err)
	}
	chunk := append(bytes.Repeat([]byte("漢字"), 5000), 0xe6) // ends in the first byte of 漢
	next := append([]byte{0xbc, 0xa2}, chunk...)
	w.Output(chunk)
	if n := testing.AllocsPerRun(100, func() { w.Output(next) }); n != 0 {
		t.Errorf("%.1f allocations per chunk, want 0", n)
	}
}

// TestSizesFitPlayers: a width or height too big for players' 16-bit
// sizes is written as 65535, in the header and in "r" events.
func TestSizesFitPlayers(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, pass, Header{Width: 70000, Height: 24}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Resize(70000, 1<<32-1)
	w.Close(End{Reason: "exit 0"})
	plain, _ := io.ReadAll(mustPlaintext(t, buf.Bytes()))
	if !bytes.Contains(plain, []byte(`"width":65535,"height":24`)) || !bytes.Contains(plain, []byte(`"r", "65535x65535"`)) {
		t.Errorf("sizes not clamped:\n%s", plain)
	}
}

// TestBinaryChunksAlone: a chunk of binary data is one exact-bytes event
// with no text event, and the Reader keeps it apart from the events around
// it: after a text event that has no twin (valid UTF-8) and after one that
// has (bytes that were not), output and input alike.
func TestBinaryChunksAlone(t *testing.T) {
	random := make([]byte, 3000)
	rand.Read(random)
	chunks := [][]byte{
		[]byte("valid text\r\n"), nil,
		append(random[:999:999], 0xe2), nil, // after a text event with no twin; ends as a 3-byte character starts: written whole
		[]byte("bad \xff byte"), nil,
		random[1000:2000], nil, // after a text event and its twin
		random[2000:], random[2000:], // output then input
		bytes.Repeat([]byte("text with one \xff in a long line; "), 20), nil, // text, with its twin
	}
	file := record(t, chunks, End{Reason: "exit 0"})
	plain, _ := io.ReadAll(mustPlaintext(t, file))
	var codes []string
	for _, line := range strings.Split(strings.TrimSpace(string(plain)), "\n")[1:] {
		var ev [3]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		codes = append(codes, ev[1].(string))
	}
	if got, want := strings.Join(codes, " "), "o ob o ob ob ob ib o ob x"; got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	r, err := NewReader(bytes.NewReader(file), pass)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(chunks); i++ {
		if chunks[i] == nil {
			continue
		}
		ev, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if want := [2]string{"o", "i"}[i%2]; ev.Code != want || !bytes.Equal(ev.Data, chunks[i]) {
			t.Fatalf("chunk %d: %s event of %d bytes, want %s of %d", i, ev.Code, len(ev.Data), want, len(chunks[i]))
		}
	}
	if ev, err := r.Next(); err != nil || ev.Code != "x" {
		t.Fatalf("after the chunks: %+v, %v", ev, err)
	}
}

// TestAsciinemaPlaysAroundBinary: Debian's asciinema reads a recording
// with binary data written as exact bytes alone, and with a text event's
// twin, and shows the text around them.
func TestAsciinemaPlaysAroundBinary(t *testing.T) {
	need(t, "gzip", "openssl", "asciinema", "script")
	random := make([]byte, 4000)
	rand.Read(random)
	file := record(t, [][]byte{[]byte("before\r\n"), nil, random, nil, []byte("caf\xe9\r\n"), nil, []byte("after\r\n")}, End{Reason: "exit 0"})
	plain, ok := stock(t, file, pass)
	// The text events: before, café (with its twin), after; the binary
	// chunk is an exact-bytes event alone.
	if !ok || bytes.Count(plain, []byte(`, "o", "`)) != 3 || bytes.Count(plain, []byte(`, "ob", "`)) != 2 {
		t.Fatalf("stock decryption (gzip ok %v), or not 3 text events and 2 exact-bytes ones:\n%.600s", ok, plain)
	}
	cast := filepath.Join(t.TempDir(), "s.cast")
	os.WriteFile(cast, plain, 0o600)
	out, err := exec.Command("script", "-qec", "asciinema cat "+cast, "/dev/null").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("before")) || !bytes.Contains(out, []byte("caf\ufffd")) || !bytes.Contains(out, []byte("after")) {
		t.Fatalf("asciinema cat: %v:\n%q", err, out)
	}
}
