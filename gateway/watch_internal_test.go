package gateway

import (
	"bytes"
	"strings"
	"testing"
)

// TestRingKeepsTheRecentOutput: the ring holds nothing before the first
// output, starts small, grows as output comes and then keeps the last
// ringMax bytes in order.
func TestRingKeepsTheRecentOutput(t *testing.T) {
	var h watchHub
	if h.ring != nil {
		t.Fatal("a session with no output holds a ring")
	}
	h.offer([]byte("$ "))
	if len(h.ring) != ringStart {
		t.Fatalf("after a prompt the ring holds %d bytes, want %d", len(h.ring), ringStart)
	}
	var all bytes.Buffer
	all.WriteString("$ ")
	for i := 0; all.Len() < 3*ringMax; i++ {
		chunk := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i*37%5000)
		all.Write(chunk)
		h.offer(chunk)
		got, cut := h.recent()
		want := all.Bytes()[max(0, all.Len()-ringMax):]
		if !bytes.Equal(got, want) || cut != (all.Len() > ringMax) {
			t.Fatalf("after %d bytes: ring has %d bytes (cut %v), want the last %d", all.Len(), len(got), cut, len(want))
		}
	}
	big := bytes.Repeat([]byte("z"), ringMax+10)
	h.offer(big)
	if got, _ := h.recent(); !bytes.Equal(got, big[10:]) {
		t.Fatal("a chunk bigger than the ring: not its last ringMax bytes")
	}
}

// TestReplayStartsAtABoundary: a replay whose start was lost begins after
// a line end or at an escape sequence, after a reset and the window size.
func TestReplayStartsAtABoundary(t *testing.T) {
	var h watchHub
	h.cols, h.rows = 100, 30
	h.offer(bytes.Repeat([]byte("x"), ringMax-3))
	h.offer([]byte("tail of a line\r\n\x1b[1mtop\x1b[m"))
	w, err := h.attach("bob", true)
	if err != nil {
		t.Fatal(err)
	}
	data, _, _ := h.take(w, nil)
	want := "\x1bc\x1b[8;30;100t\x1b[1mtop\x1b[m"
	if !strings.HasPrefix(string(data), "\x1bc\x1b[8;30;100t") || string(data) != want {
		t.Fatalf("replay = %q, want %q", data, want)
	}
	for _, tc := range []struct{ in, want string }{
		{"abc\ndef", "def"}, {"ab\x1b[Hcd", "\x1b[Hcd"}, {"plain", "plain"}, {"a\x1bb\nc", "\x1bb\nc"},
	} {
		if got := tc.in[replayStart([]byte(tc.in)):]; got != tc.want {
			t.Errorf("replay of %q starts %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSlowWatcherDropped: a watcher who takes nothing is dropped once its
// buffer would overflow; the session's offers never wait, and the other
// watcher goes on. A session takes maxWatchers at most.
func TestSlowWatcherDropped(t *testing.T) {
	var h watchHub
	slow, _ := h.attach("slow", false)
	quick, _ := h.attach("quick", false)
	chunk := bytes.Repeat([]byte("y"), 32<<10)
	var got int
	for i := 0; i < 2*watcherMax/len(chunk); i++ {
		h.offer(chunk) // never blocks: this loop would hang otherwise
		data, dropped, _ := h.take(quick, nil)
		if dropped {
			t.Fatal("the quick watcher was dropped")
		}
		got += len(data)
	}
	if got != 2*watcherMax {
		t.Fatalf("quick watcher got %d bytes, want %d", got, 2*watcherMax)
	}
	if _, dropped, _ := h.take(slow, nil); !dropped {
		t.Fatal("the slow watcher was not dropped")
	}
	if names := h.names(); len(names) != 1 || names[0] != "quick" {
		t.Fatalf("watchers = %v, want [quick]", names)
	}
	for i := len(h.names()); i < maxWatchers; i++ {
		if _, err := h.attach("more", false); err != nil {
			t.Fatalf("watcher %d: %v", i+1, err)
		}
	}
	if _, err := h.attach("one too many", false); err == nil {
		t.Fatalf("a %dth watcher attached", maxWatchers+1)
	}
	h.end("exit 0")
	if _, _, ended := h.take(quick, nil); ended != "exit 0" {
		t.Fatalf("quick watcher told %q at the end", ended)
	}
	if _, err := h.attach("late", false); err == nil {
		t.Fatal("attached to an ended session")
	}
}

// TestUnwatchedOfferAllocatesNothing: once the ring has grown, a session
// nobody watches allocates nothing per chunk.
func TestUnwatchedOfferAllocatesNothing(t *testing.T) {
	var h watchHub
	chunk := bytes.Repeat([]byte("q"), 16<<10)
	for range 20 {
		h.offer(chunk)
	}
	if n := testing.AllocsPerRun(100, func() { h.offer(chunk) }); n != 0 {
		t.Fatalf("%v allocations per chunk", n)
	}
}
