package testtool

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// recorder is a testing.TB that notes whether a test was skipped or
// failed; both end the goroutine, as they do in a real test.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(f string, a ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(f, a...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(f string, a ...any) {
	r.failed, r.msg = true, fmt.Sprintf(f, a...)
	runtime.Goexit()
}

// run calls f with a recorder on a goroutine of its own, as the testing
// package would, and waits for it.
func run(t *testing.T, f func(testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

const missing = "rr-no-such-tool-7f3a"

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMissingToolSkips(t *testing.T) {
	t.Setenv("CI", "")
	r := run(t, func(tb testing.TB) { Need(tb, "sh", missing) })
	if !r.skipped || r.failed || !strings.Contains(r.msg, missing) || !strings.Contains(r.msg, "make test") {
		t.Fatalf("skipped %v, failed %v, %q: want a skip naming the tool and how to install it", r.skipped, r.failed, r.msg)
	}
}

func TestMissingToolFailsUnderCI(t *testing.T) {
	t.Setenv("CI", "true")
	r := run(t, func(tb testing.TB) { Path(tb, missing, "go install example.com/x@v1") })
	if !r.failed || r.skipped || !strings.Contains(r.msg, "go install example.com/x@v1") {
		t.Fatalf("skipped %v, failed %v, %q: want a failure under CI=true", r.skipped, r.failed, r.msg)
	}
}

func TestPresentTool(t *testing.T) {
	t.Setenv("CI", "true")
	r := run(t, func(tb testing.TB) {
		if p := Path(tb, "sh", ""); !strings.HasSuffix(p, "/sh") {
			tb.Fatalf("path %q", p)
		}
	})
	if r.skipped || r.failed {
		t.Fatalf("sh is installed: %q", r.msg)
	}
}
