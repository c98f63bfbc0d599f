//go:build cgo && linux

package sqlite

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// TestStoreBoundsMallocArenas: store calls from many threads add no
// arena to the C heap once it has maxArenas, rather than one per thread. It runs in a
// child process, whose C heap no other test has touched.
func TestStoreBoundsMallocArenas(t *testing.T) {
	if os.Getenv("RR_ARENAS_CHILD") == "" {
		if mallocArenas() < 0 {
			t.Skip("skipped: not glibc's malloc")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestStoreBoundsMallocArenas$", "-test.count=1")
		cmd.Env = append(os.Environ(), "RR_ARENAS_CHILD=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	before := mallocArenas() // made before the package's init, or by the main thread
	s, err := Open(filepath.Join(t.TempDir(), "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Each goroutine holds a thread of its own while it calls the store:
	// 16 threads calling malloc through SQLite.
	const threads = 16
	var ready, done sync.WaitGroup
	ready.Add(threads)
	start := make(chan struct{})
	for range threads {
		done.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ready.Done()
			<-start
			for range 20 {
				if _, err := s.Hosts(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	ready.Wait()
	close(start)
	done.Wait()
	// Arenas made before the limit stay; no more after it.
	if n, most := mallocArenas(), max(before, maxArenas); n > most {
		t.Errorf("%d malloc arenas after store calls on %d threads, want at most %d", n, threads, most)
	}
}
