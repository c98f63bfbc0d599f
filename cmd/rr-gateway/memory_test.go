package main

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"
)

// TestLimitMemory: the soft memory limit is the hash budget plus an
// upload's parts plus the headroom, unless GOMEMLIMIT in the environment
// sets it.
func TestLimitMemory(t *testing.T) {
	was := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(was) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Setenv("GOMEMLIMIT", "")
	limitMemory(256<<20, 64<<20, log)
	if got := debug.SetMemoryLimit(-1); got != 256<<20+64<<20+memoryHeadroom {
		t.Fatalf("limit %d MiB, want %d", got>>20, (256<<20+64<<20+memoryHeadroom)>>20)
	}
	var c fileConfig
	if got := c.uploadMemory(); got != 0 {
		t.Errorf("no bucket: %d MiB for uploads, want none", got>>20)
	}
	c.Recordings.S3.Bucket = "b"
	if got := c.uploadMemory(); got != 64<<20 {
		t.Errorf("default parts: %d MiB for uploads, want 64", got>>20)
	}
	debug.SetMemoryLimit(was)
	t.Setenv("GOMEMLIMIT", "1GiB") // read by the runtime at start; here only its presence counts
	limitMemory(256<<20, 0, log)
	if got := debug.SetMemoryLimit(-1); got != was {
		t.Fatalf("GOMEMLIMIT set, yet the limit changed to %d MiB", got>>20)
	}
}
