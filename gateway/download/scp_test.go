package download

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

func TestParseSCP(t *testing.T) {
	tests := []struct {
		cmd     string
		want    scpCommand
		wantErr bool
	}{
		{cmd: "scp -f recordings/a.gz", want: scpCommand{from: true, paths: []string{"recordings/a.gz"}}},
		{cmd: "scp -v -r -p -d -f -- recordings/a.gz", want: scpCommand{from: true, recursive: true, preserve: true, paths: []string{"recordings/a.gz"}}},
		{cmd: "scp -pf 'recordings/a b.gz' x", want: scpCommand{from: true, preserve: true, paths: []string{"recordings/a b.gz", "x"}}},
		{cmd: "scp -f -- -odd", want: scpCommand{from: true, paths: []string{"-odd"}}},
		{cmd: "scp -t recordings/", want: scpCommand{to: true, paths: []string{"recordings/"}}},
		{cmd: "scp -t -- .", want: scpCommand{to: true, paths: []string{"."}}},
		{cmd: "scp -f", wantErr: true},
		{cmd: "scp -x -f a", wantErr: true},
		{cmd: "scp -ft a", wantErr: true},
		{cmd: "scp a", wantErr: true},
		{cmd: "scp -f 'unterminated", wantErr: true},
		{cmd: "ls -f a", wantErr: true},
		{cmd: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseSCP(tt.cmd)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseSCP(%q) = %+v, want an error", tt.cmd, got)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("parseSCP(%q) = %+v, %v; want %+v", tt.cmd, got, err, tt.want)
		}
	}
}

func FuzzParseSCP(f *testing.F) {
	for _, s := range []string{"scp -f a", "scp -pvrdf -- 'a b' c", "scp -t .", "scp -x", "scp 'a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		c, err := parseSCP(cmd)
		if err == nil && c.from == c.to {
			t.Errorf("parseSCP(%q) = %+v: exactly one of -f and -t", cmd, c)
		}
		if err == nil && c.from && len(c.paths) == 0 {
			t.Errorf("parseSCP(%q) = %+v: -f with no path", cmd, c)
		}
	})
}

func TestIsSCP(t *testing.T) {
	for cmd, want := range map[string]bool{
		"scp -f recordings/a.gz":       true,
		"scp -t .":                     true,
		"  scp   -v -f 'recordings/a'": true,
		"scp":                          false,
		"scp recordings/a.gz":          false,
		"web-01 scp -f a":              false,
		"uptime":                       false,
		"":                             false,
	} {
		if got := IsSCP(cmd); got != want {
			t.Errorf("IsSCP(%q) = %v, want %v", cmd, got, want)
		}
	}
}

// scpClient is the sink side of legacy scp, as OpenSSH's "scp -O" is.
type scpClient struct {
	t *testing.T
	w io.Writer
	r *bufio.Reader
}

// received is one file, or one error line, as the client saw it.
type received struct {
	times string // the T line, without its newline, if any
	mode  string
	name  string
	data  []byte
	err   string // an error line instead of a file, or instead of the final status
}

// runSCP runs command against f's Server and returns what a client that
// accepts every file received, the exit status and the stderr output.
func runSCP(t *testing.T, f *fixture, command string) ([]received, int, string) {
	t.Helper()
	cc, sc := tcpPair(t)
	var stderr bytes.Buffer
	status := make(chan int, 1)
	go func() {
		status <- f.srv.ServeSCP(context.Background(), command, sc, &stderr)
		hangUp(sc)
	}()
	c := &scpClient{t: t, w: cc, r: bufio.NewReader(cc)}
	c.ok()
	var got []received
	for {
		rcv, more := c.receive()
		if !more {
			break
		}
		got = append(got, rcv)
	}
	return got, <-status, stderr.String()
}

// hangUp ends the server's side as an SSH channel would: EOF, then whatever
// the client still sends is discarded (no TCP reset) until it closes.
func hangUp(c net.Conn) {
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
	c.Close()
}

func (c *scpClient) ok() {
	if _, err := c.w.Write([]byte{0}); err != nil {
		c.t.Fatal(err)
	}
}

// line reads one protocol line; false at the end of the session.
func (c *scpClient) line() (string, bool) {
	s, err := c.r.ReadString('\n')
	if err == io.EOF && s == "" {
		return "", false
	}
	if err != nil {
		c.t.Fatalf("scp client: %q, %v", s, err)
	}
	return strings.TrimSuffix(s, "\n"), true
}

// receive reads one file or one error.
func (c *scpClient) receive() (received, bool) {
	var rcv received
	l, ok := c.line()
	if !ok {
		return rcv, false
	}
	if strings.HasPrefix(l, "\x01") {
		rcv.err = l[1:]
		return rcv, true
	}
	if strings.HasPrefix(l, "T") {
		rcv.times = l
		c.ok()
		if l, ok = c.line(); !ok {
			c.t.Fatal("scp client: session ended after T")
		}
	}
	var size int64
	if _, err := fmt.Sscanf(l, "C%s %d %s", &rcv.mode, &size, &rcv.name); err != nil {
		c.t.Fatalf("scp client: bad C line %q: %v", l, err)
	}
	c.ok()
	rcv.data = make([]byte, size)
	if _, err := io.ReadFull(c.r, rcv.data); err != nil {
		c.t.Fatalf("scp client: data: %v", err)
	}
	switch b, err := c.r.ReadByte(); {
	case err != nil:
		c.t.Fatalf("scp client: status: %v", err)
	case b != 0:
		msg, _ := c.r.ReadString('\n')
		rcv.err = strings.TrimSuffix(msg, "\n")
	}
	c.ok()
	return rcv, true
}

func TestSCPDownload(t *testing.T) {
	f := newFixture(t)
	got, status, stderr := runSCP(t, f, "scp -f recordings/s1.gz")
	if status != 0 || len(got) != 1 || stderr != "" {
		t.Fatalf("status %d, stderr %q, got %d files; want 0, one file", status, stderr, len(got))
	}
	if r := got[0]; r.mode != "0444" || r.name != "s1.gz" || r.times != "" || r.err != "" || !bytes.Equal(r.data, f.goodData) {
		t.Errorf("received %s %s (T %q, err %q, %d bytes); want 0444 s1.gz, the stored bytes", r.mode, r.name, r.times, r.err, len(r.data))
	}
	if fe := f.lib.fetches(); len(fe) != 1 || fe[0] != (fetch{"s1", "scp", f.good.Size, nil}) {
		t.Errorf("Fetched = %+v, want s1 via scp, whole, nil", fe)
	}
}

func TestSCPPreserveTimesLongName(t *testing.T) {
	f := newFixture(t)
	got, status, _ := runSCP(t, f, "scp -v -p -d -f -- '/recordings/"+f.small.Name()+"'")
	if status != 0 || len(got) != 1 {
		t.Fatalf("status %d, got %+v", status, got)
	}
	ts := f.small.Started.Unix()
	if r := got[0]; r.times != fmt.Sprintf("T%d 0 %d 0", ts, ts) || r.name != f.small.Name() || !bytes.Equal(r.data, f.smallData) {
		t.Errorf("received %+v", r)
	}
}

func TestSCPSeveralPaths(t *testing.T) {
	f := newFixture(t)
	got, status, _ := runSCP(t, f, "scp -f recordings/s2.gz recordings/nope.gz recordings/s9.gz ../../etc/passwd recordings/s1.gz")
	if status != 1 {
		t.Errorf("status %d, want 1", status)
	}
	want := []string{
		"file s2.gz",
		"rr: recordings/nope.gz: no such recording",
		"rr: recordings/s9.gz: " + liveText,
		"rr: ../../etc/passwd: no such recording",
		"file s1.gz",
	}
	if len(got) != len(want) {
		t.Fatalf("received %d items, want %d: %+v", len(got), len(want), got)
	}
	for i, r := range got {
		desc := r.err
		if r.name != "" {
			desc = "file " + r.name
		}
		if desc != want[i] {
			t.Errorf("item %d = %q, want %q", i, desc, want[i])
		}
	}
	if fe := f.lib.fetches(); len(fe) != 2 || fe[0].err != nil || fe[1].err != nil {
		t.Errorf("Fetched = %+v, want two clean downloads", fe)
	}
	wantRefused := []string{
		"scp recordings/nope.gz: " + ErrNotFound.Error(),
		"scp recordings/s9.gz: " + ErrLive.Error(),
		"scp ../../etc/passwd: " + ErrNotFound.Error(),
	}
	if got := f.lib.refusals(); fmt.Sprint(got) != fmt.Sprint(wantRefused) {
		t.Errorf("Refused = %q, want %q", got, wantRefused)
	}
}

func TestSCPRefusals(t *testing.T) {
	f := newFixture(t)
	tests := []struct{ cmd, want string }{
		{"scp -r -f recordings", "rr: recordings: is a directory; download one recording at a time: scp rr@gateway:recordings/ID.gz ."},
		{"scp -f /", "rr: /: not a regular file"},
		{"scp -t recordings/", "rr: recordings are read-only"},
		{"scp -d -t -- .", "rr: recordings are read-only"},
		{"scp -z -f recordings/s1.gz", "rr: scp: unknown option -z"},
	}
	for _, tt := range tests {
		got, status, _ := runSCP(t, f, tt.cmd)
		if status != 1 || len(got) != 1 || got[0].err != tt.want {
			t.Errorf("%s: status %d, received %+v; want 1 and %q", tt.cmd, status, got, tt.want)
		}
	}
	if fe := f.lib.fetches(); len(fe) != 0 {
		t.Errorf("Fetched = %+v, want no calls", fe)
	}
}

func TestSCPIntegrityFailure(t *testing.T) {
	f := newFixture(t)
	got, status, _ := runSCP(t, f, "scp -f recordings/s3.gz recordings/s2.gz")
	if status != 1 || len(got) != 2 {
		t.Fatalf("status %d, received %+v; want 1 and two files", status, got)
	}
	if r := got[0]; r.err != "rr: recordings/s3.gz: the recording failed its integrity check; nothing of it was sent" || len(r.data) != 0 {
		t.Errorf("corrupt file: err %q, %d bytes; want the integrity error and no byte of it", r.err, len(r.data))
	}
	if r := got[1]; r.err != "" || !bytes.Equal(r.data, f.smallData) {
		t.Errorf("the next file: %+v, want it whole", r)
	}
	fe := f.lib.fetches()
	if len(fe) != 2 || !errors.Is(fe[0].err, ErrIntegrity) || fe[0].sent != 0 || fe[1].err != nil {
		t.Errorf("Fetched = %+v, want ErrIntegrity for s3 with nothing sent, then nil", fe)
	}
}

func TestSCPClientRefusesFile(t *testing.T) {
	f := newFixture(t)
	cc, sc := tcpPair(t)
	status := make(chan int, 1)
	go func() {
		status <- f.srv.ServeSCP(context.Background(), "scp -f recordings/s2.gz", sc, io.Discard)
		hangUp(sc)
	}()
	c := &scpClient{t: t, w: cc, r: bufio.NewReader(cc)}
	c.ok()
	if l, _ := c.line(); !strings.HasPrefix(l, "C0444 ") {
		t.Fatalf("got %q, want a C line", l)
	}
	io.WriteString(cc, "\x01scp: s2.gz: Permission denied\n")
	if l, ok := c.line(); ok {
		t.Errorf("after the refusal got %q, want the end", l)
	}
	if s := <-status; s != 1 {
		t.Errorf("status %d, want 1", s)
	}
	if fe := f.lib.fetches(); len(fe) != 1 || fe[0].sent != 0 || !strings.Contains(fmt.Sprint(fe[0].err), "Permission denied") {
		t.Errorf("Fetched = %+v, want the client's refusal", fe)
	}
}

// TestSCPReadFailureSkipsOneFile: a recording whose stream keeps breaking
// fails alone (refused before any byte of it, with an error the client
// shows); the next file still comes, and a passing break costs nothing.
func TestSCPReadFailureSkipsOneFile(t *testing.T) {
	quickResumes(t)
	f := newFixture(t)
	// s1's streams break at once, one time more than a read resumes; s2's
	// first stream breaks half-way.
	fl := &flaky{open: openFile, after: 0, breaks: map[string]int{f.good.Location: maxResumes + 1}}
	fl2 := &flaky{open: fl.Open, after: int64(len(f.smallData) / 2), breaks: map[string]int{f.small.Location: 1}}
	srv, err := New(Config{Library: f.lib, Open: fl2.Open, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	got, status, _ := runSCP(t, f, "scp -f recordings/s1.gz recordings/s2.gz")
	if status != 1 || len(got) != 2 {
		t.Fatalf("status %d, received %d items; want 1 and two files", status, len(got))
	}
	if r := got[0]; r.err != "rr: recordings/s1.gz: recordings are unavailable right now; try again later" || len(r.data) != 0 {
		t.Errorf("broken file: err %q, %d bytes; want the read error and no byte of it", r.err, len(r.data))
	}
	if r := got[1]; r.err != "" || !bytes.Equal(r.data, f.smallData) {
		t.Errorf("the next file: err %q, %d bytes; want it whole", r.err, len(r.data))
	}
	fe := f.lib.fetches()
	if len(fe) != 2 || !errors.Is(fe[0].err, errReset) || fe[1].err != nil {
		t.Errorf("Fetched = %+v, want the reset for s1, then nil", fe)
	}
}
