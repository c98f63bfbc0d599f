package recorder

import (
	"io"
	"runtime"
	"testing"
)

// TestMemoryPerLiveRecording reports (with -v) the heap a live recording
// holds (about 36 KiB: the file buffer and the event buffer). It fails past
// 128 KiB: compress/gzip's writer alone would hold about 750 KiB.
func TestMemoryPerLiveRecording(t *testing.T) {
	const n = 50
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ws := make([]*Writer, n)
	for i := range ws {
		w, err := NewWriter(io.Discard, "p", Header{SessionID: "m"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.Output([]byte("hello\r\n"))
		ws[i] = w
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (after.HeapAlloc - before.HeapAlloc) / n
	t.Logf("heap per live recording: %d KiB", per>>10)
	if per > 128<<10 {
		t.Fatalf("a live recording holds %d KiB", per>>10)
	}
	runtime.KeepAlive(ws)
}
