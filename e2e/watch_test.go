package e2e

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestWatchWithOpenSSH: alice works in tmux (top, then commands); dave,
// her teammate, watches with ssh -t rr@gw watch:ID in another tmux after
// giving web-01's passphrase: his screen shows what hers does (top's
// screen replayed, then the lines she types), she is told he watches,
// show lists him, bob (another team) is refused as for a missing
// session, and ann's kill tells dave how it ended.
func TestWatchWithOpenSSH(t *testing.T) {
	w, alice, dave, bob, ann := staffWorld(t)
	person := startTmux(t, 100, 30, "ssh "+shellQuote(append(w.openSSHArgs(alice, "-p"), "-t", "rr@127.0.0.1", "web-01"))+"; sleep 600")
	w.terminalFactors(person, 0)
	person.line("top")
	person.waitFor("load average")
	id := w.liveID(t)

	watcher := startTmux(t, 100, 30, "ssh "+shellQuote(append(w.openSSHArgs(dave, "-p"), "-t", "rr@127.0.0.1", "watch:"+id))+"; echo WATCH-EXIT=$?; sleep 600")
	watcher.waitFor("Passphrase for web-01:")
	watcher.line("pp-web-01")
	watcher.waitFor("load average") // top's screen, replayed
	watcher.waitFor("PID USER")
	person.waitFor("rr: dave is watching this session")

	person.send("q")
	person.line("echo typed-$((6*7)); uname -n")
	person.waitFor("typed-42")
	watcher.waitFor("typed-42")
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*tmux{person, watcher} {
		m.waitFor("typed-42\n" + host + "\n")
	}
	if strings.Contains(watcher.screen(), "pp-web-01") {
		t.Fatal("the passphrase was echoed")
	}

	if out, errOut, code := w.console(t, alice, "show "+id); code != 0 || !strings.Contains(out, "watchers:") ||
		!strings.Contains(out, "dave") {
		t.Fatalf("show: exit %d: %s %s; want dave among the watchers", code, out, errOut)
	}
	_, theirs, _ := w.console(t, bob, "watch "+id)
	_, missing, _ := w.console(t, bob, "watch 0123456789abcdef")
	if !strings.Contains(theirs, `no session "`+id+`"`) ||
		strings.ReplaceAll(theirs, id, "X") != strings.ReplaceAll(missing, "0123456789abcdef", "X") {
		t.Fatalf("bob watching alice's session: %q; a missing one: %q", theirs, missing)
	}

	if out, errOut, code := w.console(t, ann, "kill "+id+" done here"); code != 0 {
		t.Fatalf("ann's kill: exit %d: %s %s", code, out, errOut)
	}
	watcher.waitFor("rr: the session ended: killed by ann: done here")
	watcher.waitFor("WATCH-EXIT=0")
	person.waitFor("Session closed by ann: done here")
	if !w.audited(t, "session.watch", "allowed", "host web-01, person alice") ||
		!w.audited(t, "session.watch", "denied", "no such session for this person") ||
		!w.audited(t, "session.watch.end", "allowed", "session ended: killed by ann: done here") {
		t.Fatal("the watch is not in the audit trail")
	}
}

// TestSlowWatcherDropped: a watcher whose ssh stops reading is dropped
// ("too slow, stopped following") while the session it watched, an exec
// session, goes on at the speed of an unwatched one.
func TestSlowWatcherDropped(t *testing.T) {
	w, alice, dave, _, _ := staffWorld(t)
	ctx := testCtx(t, 3*time.Minute)
	const bulk = "head -c 64000000 /dev/zero"
	timed := func(cmd string, before func(r *bufio.Reader, stdin io.Writer)) time.Duration {
		c := w.tool(t, ctx, alice, "ssh", "rr+web-01@127.0.0.1", cmd)
		stdin, _ := c.StdinPipe()
		out, _ := c.StdoutPipe()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReaderSize(out, 1<<16)
		before(r, stdin)
		start := time.Now()
		n, _ := io.Copy(io.Discard, r)
		if err := c.Wait(); err != nil || n != 64000000 {
			t.Fatalf("%s: %d bytes, %v", cmd, n, err)
		}
		return time.Since(start)
	}
	alone := timed(bulk, func(*bufio.Reader, io.Writer) {})

	var watcherDone func() string
	watched := timed("echo started; read go; "+bulk, func(r *bufio.Reader, stdin io.Writer) {
		if line, err := r.ReadString('\n'); err != nil || line != "started\n" {
			t.Fatalf("session start: %q %v", line, err)
		}
		id := w.liveID(t)
		c := w.tool(t, ctx, dave, "ssh", "-tt", "rr@127.0.0.1", "watch:"+id)
		in, _ := c.StdinPipe()
		out, _ := c.StdoutPipe()
		errp, _ := c.StderrPipe()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		readUntil(t, bufio.NewReader(errp), "Passphrase for web-01:") // on the terminal: stderr
		go io.Copy(io.Discard, errp)
		io.WriteString(in, "pp-web-01\r")
		wr := bufio.NewReader(out)
		readUntil(t, wr, "rr: watching session "+id)
		// dave stops reading here.
		watcherDone = func() string {
			rest, _ := io.ReadAll(wr)
			c.Wait()
			return string(rest)
		}
		io.WriteString(stdin, "go\n")
	})
	rest := watcherDone()
	if !strings.Contains(rest, "rr: too slow, stopped following") {
		t.Fatalf("the stalled watcher was not told it was dropped; its output ends %q", rest[max(0, len(rest)-200):])
	}
	if ratio := alone.Seconds() / watched.Seconds(); ratio < 0.5 {
		t.Fatalf("64 MB took %v watched by a stalled watcher, %v alone (ratio %.2f)", watched, alone, ratio)
	} else {
		t.Logf("64 MB: %v alone, %v with a stalled watcher (ratio %.2f)", alone, watched, ratio)
	}
	if !w.audited(t, "session.watch.end", "allowed", "too slow, dropped") {
		t.Fatal("the drop is not in the audit trail")
	}
}

// readUntil reads r until want has gone by.
func readUntil(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	var seen bytes.Buffer
	for !strings.Contains(seen.String(), want) {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("waiting for %q: %v after %q", want, err, seen.String())
		}
		seen.WriteByte(b)
	}
}
