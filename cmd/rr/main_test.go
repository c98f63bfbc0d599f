package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rr-gateway/rr/internal/testtool"
	"github.com/rr-gateway/rr/recorder"
)

func writeRecording(t *testing.T, pass string, cut int) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := recorder.NewWriter(&buf, pass, recorder.Header{Width: 80, Height: 24, SessionID: "abc", Host: "web-01", Person: "alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Output([]byte("hello \xff world\r\n"))
	w.Input([]byte("exit\r"))
	w.Output([]byte("bye\r\n"))
	zero := 0
	w.Close(recorder.End{Reason: "exit 0", ExitStatus: &zero})
	b := buf.Bytes()
	if cut > 0 {
		b = b[:len(b)-cut]
	}
	p := filepath.Join(t.TempDir(), "abc.gz")
	os.WriteFile(p, b, 0o600)
	return p
}

func rr(t *testing.T, pass string, args ...string) (string, string, int) {
	t.Helper()
	t.Setenv("RR_PASSPHRASE", pass)
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func TestCat(t *testing.T) {
	f := writeRecording(t, "pp", 0)
	if out, errOut, code := rr(t, "pp", "cat", f); code != 0 || out != "hello \xff world\r\nbye\r\n" {
		t.Fatalf("cat: %d %q %q", code, out, errOut)
	}
	if out, _, code := rr(t, "pp", "cat", "-input", f); code != 0 || out != "hello \xff world\r\nexit\rbye\r\n" {
		t.Fatalf("cat -input: %d %q", code, out)
	}
	if out, errOut, code := rr(t, "wrong", "cat", f); code != 1 || out != "" || !strings.Contains(errOut, "wrong passphrase") {
		t.Fatalf("wrong passphrase: %d %q %q", code, out, errOut)
	}
}

func TestVerify(t *testing.T) {
	f := writeRecording(t, "pp", 0)
	b, _ := os.ReadFile(f)
	sum := sha256.Sum256(b)
	out, errOut, code := rr(t, "pp", "verify", "-sha256", hex.EncodeToString(sum[:]), f)
	if code != 0 || !strings.Contains(out, "session  abc") || !strings.Contains(out, "ended    exit 0") || !strings.HasSuffix(out, "ok\n") {
		t.Fatalf("verify: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := rr(t, "pp", "verify", "-sha256", strings.Repeat("0", 64), f); code != 1 || !strings.Contains(errOut, "not the file the gateway wrote") {
		t.Fatalf("verify wrong sum: %d %q", code, errOut)
	}
	cut := writeRecording(t, "pp", 40)
	if _, errOut, code := rr(t, "pp", "verify", cut); code != 1 || !strings.Contains(errOut, "cut short") {
		t.Fatalf("verify cut file: %d %q", code, errOut)
	}
}

func TestExportMatchesOpenSSL(t *testing.T) {
	testtool.Need(t, "openssl")
	f := writeRecording(t, "pp", 0)
	out, errOut, code := rr(t, "pp", "export", f)
	if code != 0 {
		t.Fatalf("export: %d %s", code, errOut)
	}
	want, err := exec.Command("bash", "-c", `gzip -dc "$1" | openssl enc -d -aes-256-ctr -pbkdf2 -k pp`, "x", f).Output()
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Fatalf("export differs from openssl:\n%q\n%q", out, want)
	}
}

func TestPlayKeepsTimingBounded(t *testing.T) {
	f := writeRecording(t, "pp", 0)
	out, _, code := rr(t, "pp", "play", "-max-idle", "10ms", f)
	if code != 0 || out != "hello \xff world\r\nbye\r\n" {
		t.Fatalf("play: %d %q", code, out)
	}
	if _, _, code := rr(t, "pp", "play", "-speed", "0", f); code != 2 {
		t.Fatalf("speed 0 accepted: %d", code)
	}
	if _, _, code := rr(t, "pp", "bogus", f); code != 2 {
		t.Fatalf("unknown command: %d", code)
	}
}

// TestPlayDoesNotDrift: 2000 events 1 ms apart, each sleep overshooting
// by 1 ms (as a loaded machine's do), play in about 2 s of simulated
// time, not 4: lateness does not add up.
func TestPlayDoesNotDrift(t *testing.T) {
	gaps := make([]time.Duration, 2000)
	for i := range gaps {
		gaps[i] = time.Millisecond
	}
	rec := recordWithGaps(t, "x", gaps...)
	took := simulatedClock(t, time.Millisecond)
	var out bytes.Buffer
	if err := play(bytes.NewReader(rec), "pp", 1, 0, &out); err != nil || out.Len() != 2000 {
		t.Fatalf("play: %v, %d bytes", err, out.Len())
	}
	if took := took(); took > 2100*time.Millisecond {
		t.Fatalf("played 2 s of events in %v of simulated time", took)
	}
}

// TestPassphraseFileWins: the file named on the command line is used,
// even with RR_PASSPHRASE set.
func TestPassphraseFileWins(t *testing.T) {
	f := writeRecording(t, "pp", 0)
	pf := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pf, []byte("pp\n"), 0o600)
	if out, errOut, code := rr(t, "other", "cat", "-passphrase-file", pf, f); code != 0 || !strings.HasPrefix(out, "hello") {
		t.Fatalf("cat with -passphrase-file and RR_PASSPHRASE: %d %q %q", code, out, errOut)
	}
}

// TestDamagedAndCut: a flipped byte is damage, not a cut; a cut file's
// export ends on a whole line.
func TestDamagedAndCut(t *testing.T) {
	f := writeRecording(t, "pp", 0)
	b, _ := os.ReadFile(f)
	b[len(b)/2] ^= 1
	os.WriteFile(f, b, 0o600)
	if _, errOut, code := rr(t, "pp", "verify", f); code != 1 || !strings.Contains(errOut, "damaged") {
		t.Fatalf("verify of a damaged file: %d %q", code, errOut)
	}
	f = writeRecording(t, "pp", 30)
	out, errOut, code := rr(t, "pp", "export", f)
	if code != 1 || !strings.Contains(errOut, "cut short") || !strings.HasSuffix(out, "\n") {
		t.Fatalf("export of a cut file: %d %q, ends %q", code, errOut, out[max(0, len(out)-20):])
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("export of a cut file has a torn line: %q", line)
		}
	}
}

// TestPlaySpeedAndMaxIdle: -speed 2 plays in half the time; -max-idle
// cuts a long pause as recorded, before the speed divides it.
func TestPlaySpeedAndMaxIdle(t *testing.T) {
	rec := recordWithGaps(t, "x", time.Second, 10*time.Second) // "x" after 1 s, again after a long pause
	for _, tc := range []struct {
		speed   float64
		maxIdle time.Duration
		want    time.Duration
	}{
		{1, 0, 11 * time.Second},
		{2, 0, 5500 * time.Millisecond},
		{1, 2 * time.Second, 3 * time.Second},         // 1 s, then the 10 s pause cut to 2 s
		{2, 2 * time.Second, 1500 * time.Millisecond}, // the same, halved
	} {
		took := simulatedClock(t, 0)
		var out bytes.Buffer
		if err := play(bytes.NewReader(rec), "pp", tc.speed, tc.maxIdle, &out); err != nil || out.String() != "xx" {
			t.Fatalf("play: %v %q", err, out.String())
		}
		if took := took(); took != tc.want {
			t.Errorf("speed %v, max-idle %v: %v, want %v", tc.speed, tc.maxIdle, took, tc.want)
		}
	}
}

// recordWithGaps is a recording (passphrase "pp") of data written once
// after each gap.
func recordWithGaps(t *testing.T, data string, gaps ...time.Duration) []byte {
	t.Helper()
	var buf bytes.Buffer
	at := time.Unix(1700000000, 0)
	w, err := recorder.NewWriter(&buf, "pp", recorder.Header{Width: 80, Height: 24}, func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gaps {
		at = at.Add(g)
		w.Output([]byte(data))
	}
	w.Close(recorder.End{Reason: "exit 0"})
	return buf.Bytes()
}

// simulatedClock gives play a clock that moves only when it sleeps, each
// sleep overshooting by overshoot, until the test ends; took says how
// much time has passed.
func simulatedClock(t *testing.T, overshoot time.Duration) (took func() time.Duration) {
	old := clock
	t.Cleanup(func() { clock = old })
	start := time.Unix(0, 0)
	now := start
	clock.now = func() time.Time { return now }
	clock.sleep = func(d time.Duration) { now = now.Add(d + overshoot) }
	return func() time.Duration { return now.Sub(start) }
}

// TestMain runs rr itself when a test starts this binary as rr (see
// rrProcess).
func TestMain(m *testing.M) {
	if os.Getenv("RR_TEST_AS_RR") == "1" {
		main()
	}
	goleak.VerifyTestMain(m)
}

// rrProcess runs rr as its own process, with stdout into out, and returns
// its exit code and its peak resident memory in KiB.
func rrProcess(t *testing.T, out io.Writer, args ...string) (int, int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RR_TEST_AS_RR=1", "RR_PASSPHRASE=pp")
	cmd.Stdout = out
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	if errb.Len() > 0 {
		t.Logf("rr %s: %s", args[0], errb.String())
	}
	return cmd.ProcessState.ExitCode(), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
}

// TestBigRecordingStreams: cat, export and verify read a recording as they
// go. A 128 MiB one takes a few MiB of memory (rr read the whole file
// first, and export the whole plaintext too), and each gives all of it.
func TestBigRecordingStreams(t *testing.T) {
	const size = 128 << 20
	path := filepath.Join(t.TempDir(), "big.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := recorder.NewWriter(f, "pp", recorder.Header{Width: 80, Height: 24, SessionID: "big", Host: "web-01", Person: "alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	text := bytes.Repeat([]byte("Nov 24 18:33:02 web-01 sshd[1234]: Accepted publickey for deploy\r\n"), 500)
	binary := []byte("\x1b[1mtorn \xff\xfe sequence\x1b[0m\r\n")
	catWant := sha256.New()
	for n := 0; n < size; n += len(text) + len(binary) {
		w.Output(text)
		w.Output(binary)
		catWant.Write(text)
		catWant.Write(binary)
	}
	zero := 0
	if err := w.Close(recorder.End{Reason: "exit 0", ExitStatus: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fileSum, err := fileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	exportWant := sha256.New()
	fr, _ := os.Open(path)
	defer fr.Close()
	plain, err := recorder.Plaintext(fr, "pp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(exportWant, plain); err != nil {
		t.Fatal(err)
	}

	const limit = 64 << 10 // KiB: half the file
	for _, tc := range []struct {
		cmd  string
		want []byte
	}{{"cat", catWant.Sum(nil)}, {"export", exportWant.Sum(nil)}} {
		got := sha256.New()
		code, rss := rrProcess(t, got, tc.cmd, path)
		t.Logf("rr %s: peak %d KiB", tc.cmd, rss)
		if code != 0 || !bytes.Equal(got.Sum(nil), tc.want) {
			t.Errorf("rr %s: exit %d; output is what was recorded: %v", tc.cmd, code, bytes.Equal(got.Sum(nil), tc.want))
		}
		if rss > limit {
			t.Errorf("rr %s of a %d MiB recording peaked at %d MiB of memory", tc.cmd, size>>20, rss>>10)
		}
	}
	var out bytes.Buffer
	code, rss := rrProcess(t, &out, "verify", "-sha256", fileSum, path)
	if code != 0 || !strings.Contains(out.String(), "sha256   "+fileSum) || !strings.HasSuffix(out.String(), "ok\n") {
		t.Errorf("rr verify: exit %d\n%s", code, out.String())
	}
	if rss > limit {
		t.Errorf("rr verify of a %d MiB recording peaked at %d MiB of memory", size>>20, rss>>10)
	}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// TestExportLongLinesAndCuts: an event line longer than export's buffer
// is written whole, and a file cut anywhere exports exactly the whole
// lines of its decryptable prefix.
func TestExportLongLinesAndCuts(t *testing.T) {
	var buf bytes.Buffer
	w, err := recorder.NewWriter(&buf, "pp", recorder.Header{Width: 80, Height: 24, SessionID: "long"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		w.Output(bytes.Repeat([]byte{0x1b}, 30<<10)) // escaped as \u001b: a line of 180 KiB
		w.Output([]byte(strings.Repeat("line\r\n", i+1)))
	}
	w.Close(recorder.End{Reason: "exit 0"})
	file := buf.Bytes()
	plain := func(b []byte) ([]byte, error) {
		p, err := recorder.Plaintext(bytes.NewReader(b), "pp")
		if err != nil {
			t.Fatal(err)
		}
		return io.ReadAll(p)
	}
	whole, err := plain(file)
	if err != nil {
		t.Fatal(err)
	}
	longest := 0
	for _, l := range bytes.Split(whole, []byte("\n")) {
		longest = max(longest, len(l))
	}
	if longest < 128<<10 {
		t.Fatalf("the longest line is %d bytes: the test needs one longer than export's buffer", longest)
	}
	var out bytes.Buffer
	if err := export(bytes.NewReader(file), "pp", &out); err != nil || !bytes.Equal(out.Bytes(), whole) {
		t.Fatalf("export: %v; %d bytes, want %d", err, out.Len(), len(whole))
	}
	for _, cut := range []int{len(file) / 3, len(file) / 2, len(file) - 100, len(file) - 9} {
		prefix, perr := plain(file[:cut])
		if perr == nil {
			t.Fatalf("cut at %d: the prefix decrypts without error", cut)
		}
		want := prefix[:bytes.LastIndexByte(prefix, '\n')+1]
		out.Reset()
		err := export(bytes.NewReader(file[:cut]), "pp", &out)
		if !errors.Is(err, recorder.ErrTruncated) || !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("export cut at %d of %d: %v; %d bytes, want %d", cut, len(file), err, out.Len(), len(want))
		}
	}
}

// TestExportRefusesALongFirstLine: what decrypts to something other than
// an asciicast header is refused, however long its first line (one longer
// than export's buffer was written out).
func TestExportRefusesALongFirstLine(t *testing.T) {
	testtool.Need(t, "openssl", "gzip")
	plain := strings.Repeat("A", 70000) + "\nnot a recording\n"
	cmd := exec.Command("sh", "-c", "openssl enc -aes-256-ctr -pbkdf2 -pass pass:pp | gzip -c")
	cmd.Stdin = strings.NewReader(plain)
	file, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := export(bytes.NewReader(file), "pp", &out); !errors.Is(err, recorder.ErrWrongPassphrase) || out.Len() != 0 {
		t.Fatalf("export: %v, %d bytes written; want ErrWrongPassphrase and nothing", err, out.Len())
	}
}
