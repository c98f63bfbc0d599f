package recorder

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/cryptotest"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden recordings in testdata/recordings (top level)")

// goldenDir holds recordings of known sessions, made by this Writer (see
// testdata/README.md); cmd/rr is tested against them too.
const goldenDir = "../testdata/recordings"

// goldenPassphrase keys every golden recording (testdata/README.md).
const goldenPassphrase = "golden-passphrase"

// goldenStep is one thing that happens in a golden session, at a time
// after its start.
type goldenStep struct {
	at         time.Duration
	out, in    string
	cols, rows uint32 // a resize
	flush      bool
}

// goldenSession is a known session: what happens in it, how it ends, and
// (torn > 0) whether the gateway died after its last flush, having
// written torn bytes of the next block.
type goldenSession struct {
	name  string
	hdr   Header
	steps []goldenStep
	end   End
	torn  int
	want  []Event // what the reader gives back
}

var goldenStart = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

func exitStatus(n int) *int { return &n }

var goldenSessions = []goldenSession{{
	name: "shell", // a PTY shell: text, UTF-8 split across reads, a resize, a byte that is not UTF-8
	hdr: Header{Width: 80, Height: 24, SessionID: "0123456789abcdef", Host: "web-01", Person: "alice",
		Team: "sre_RR", PTY: true, Env: map[string]string{"TERM": "xterm-256color"}},
	steps: []goldenStep{
		{at: 100 * time.Millisecond, out: "alice@web-01:~$ "},
		{at: 1500 * time.Millisecond, in: "ls\r"},
		{at: 1510 * time.Millisecond, out: "ls\r\nnotes.txt  caf\xc3"},
		{at: 1520 * time.Millisecond, out: "\xa9.log\r\n"},
		{at: 2 * time.Second, flush: true},
		{at: 3 * time.Second, cols: 120, rows: 40},
		{at: 4 * time.Second, in: "printf '\\377'\r"},
		{at: 4010 * time.Millisecond, out: "\xff\r\n"},
		{at: 5 * time.Second, in: "exit\r"},
		{at: 5010 * time.Millisecond, out: "logout\r\n"},
	},
	end: End{Reason: "exit 0", ExitStatus: exitStatus(0)},
	want: []Event{
		{Time: 0.1, Code: "o", Data: []byte("alice@web-01:~$ ")},
		{Time: 1.5, Code: "i", Data: []byte("ls\r")},
		{Time: 1.51, Code: "o", Data: []byte("ls\r\nnotes.txt  caf")},
		{Time: 1.52, Code: "o", Data: []byte("\xc3\xa9.log\r\n")},
		{Time: 3, Code: "r", Data: []byte("120x40")},
		{Time: 4, Code: "i", Data: []byte("printf '\\377'\r")},
		{Time: 4.01, Code: "o", Data: []byte("\xff\r\n")},
		{Time: 5, Code: "i", Data: []byte("exit\r")},
		{Time: 5.01, Code: "o", Data: []byte("logout\r\n")},
		{Time: 5.02, Code: "x", Data: []byte(`{"reason":"exit 0","exit_status":0}`)},
	},
}, {
	name: "exec", // one command, no terminal, a failing exit status
	hdr:  Header{SessionID: "fedcba9876543210", Host: "db-02", Person: "bob", Team: "dba_RR", Command: "systemctl status postgresql"},
	steps: []goldenStep{
		{at: 200 * time.Millisecond, out: "● postgresql.service - PostgreSQL RDBMS\n   Active: failed\n"},
	},
	end: End{Reason: "exit 3", ExitStatus: exitStatus(3)},
	want: []Event{
		{Time: 0.2, Code: "o", Data: []byte("● postgresql.service - PostgreSQL RDBMS\n   Active: failed\n")},
		{Time: 0.21, Code: "x", Data: []byte(`{"reason":"exit 3","exit_status":3}`)},
	},
}, {
	name: "killed", // closed from the console by someone else
	hdr:  Header{Width: 100, Height: 30, SessionID: "00000000000000aa", Host: "web-01", Person: "carol", Team: "sre_RR", PTY: true},
	steps: []goldenStep{
		{at: 50 * time.Millisecond, out: "$ "},
		{at: time.Second, in: "tail -f /var/log/syslog\r"},
		{at: 1100 * time.Millisecond, out: "tail -f /var/log/syslog\r\nDec  1 03:00:01 web-01 CRON[42]: ok\r\n"},
	},
	end: End{Reason: "killed", KilledBy: "dave"},
	want: []Event{
		{Time: 0.05, Code: "o", Data: []byte("$ ")},
		{Time: 1, Code: "i", Data: []byte("tail -f /var/log/syslog\r")},
		{Time: 1.1, Code: "o", Data: []byte("tail -f /var/log/syslog\r\nDec  1 03:00:01 web-01 CRON[42]: ok\r\n")},
		{Time: 1.11, Code: "x", Data: []byte(`{"reason":"killed","killed_by":"dave"}`)},
	},
}, {
	name: "cut", // the gateway died after the first flush: the file ends in the middle
	hdr:  Header{Width: 80, Height: 24, SessionID: "00000000000000bb", Host: "web-03", Person: "alice", Team: "sre_RR", PTY: true},
	steps: []goldenStep{
		{at: 100 * time.Millisecond, out: "$ "},
		{at: 200 * time.Millisecond, in: "uptime\r"},
		{at: 300 * time.Millisecond, out: "uptime\r\n 03:00:00 up 1 day\r\n$ "},
		{at: 400 * time.Millisecond, flush: true},
		{at: 500 * time.Millisecond, in: "reboot\r"},
	},
	end:  End{Reason: "exit 0", ExitStatus: exitStatus(0)},
	torn: 7, // of the next block's header
	want: []Event{
		{Time: 0.1, Code: "o", Data: []byte("$ ")},
		{Time: 0.2, Code: "i", Data: []byte("uptime\r")},
		{Time: 0.3, Code: "o", Data: []byte("uptime\r\n 03:00:00 up 1 day\r\n$ ")},
	},
}}

// record makes the recording of s with a fixed salt (a seeded crypto/rand)
// and clock: the same bytes every time this Writer writes them.
func (s goldenSession) record(t *testing.T) []byte {
	t.Helper()
	cryptotest.SetGlobalRandom(t, 20261201)
	now := goldenStart
	var buf bytes.Buffer
	w, err := NewWriter(&buf, goldenPassphrase, s.hdr, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	flushed := 0
	for _, st := range s.steps {
		now = goldenStart.Add(st.at)
		switch {
		case st.out != "":
			err = w.Output([]byte(st.out))
		case st.in != "":
			err = w.Input([]byte(st.in))
		case st.cols > 0:
			err = w.Resize(st.cols, st.rows)
		case st.flush:
			err = w.Flush()
			flushed = buf.Len()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(10 * time.Millisecond)
	if err := w.Close(s.end); err != nil {
		t.Fatal(err)
	}
	if s.torn > 0 {
		return buf.Bytes()[:flushed+s.torn]
	}
	return buf.Bytes()
}

// TestGoldenRecordings: the Writer still writes, byte for byte, the
// recordings in testdata (go test -update rewrites them, after a format
// change that is meant), and the Reader gives back each one's header and
// events, and where it was cut, its prefix.
func TestGoldenRecordings(t *testing.T) {
	for _, s := range goldenSessions {
		t.Run(s.name, func(t *testing.T) {
			path := filepath.Join(goldenDir, s.name+".gz")
			got := s.record(t)
			if *update {
				if err := os.MkdirAll(goldenDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./recorder -run TestGoldenRecordings -update writes it)", err)
			}
			if !bytes.Equal(got, golden) {
				t.Errorf("the Writer's %d bytes differ from %s's %d: the format changed (-update if that is meant)", len(got), path, len(golden))
			}

			r, err := NewReader(bytes.NewReader(golden), goldenPassphrase)
			if err != nil {
				t.Fatal(err)
			}
			want := s.hdr
			want.Version, want.Timestamp = 2, goldenStart.Unix()
			if h := r.Header(); !reflect.DeepEqual(h, want) {
				t.Errorf("header %+v, want %+v", h, want)
			}
			var evs []Event
			for {
				ev, err := r.Next()
				if err != nil {
					if s.torn == 0 && err != io.EOF || s.torn > 0 && !errors.Is(err, ErrTruncated) {
						t.Errorf("after %d events: %v (torn %d)", len(evs), err, s.torn)
					}
					break
				}
				evs = append(evs, ev)
			}
			if !equalEvents(evs, s.want) {
				t.Errorf("events:\n got %s\nwant %s", fmtEvents(evs), fmtEvents(s.want))
			}
			if _, err := NewReader(bytes.NewReader(golden), "wrong"); !errors.Is(err, ErrWrongPassphrase) {
				t.Errorf("wrong passphrase: %v", err)
			}
		})
	}
}

func equalEvents(a, b []Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Code != b[i].Code || !bytes.Equal(a[i].Data, b[i].Data) || int(a[i].Time*1000+0.5) != int(b[i].Time*1000+0.5) {
			return false
		}
	}
	return true
}

func fmtEvents(evs []Event) string {
	var b bytes.Buffer
	for _, e := range evs {
		b.WriteString("\n\t[" + time.Duration(e.Time*float64(time.Second)).Round(time.Millisecond).String() + " " + e.Code + " " + string(e.Data) + "]")
	}
	return b.String()
}
