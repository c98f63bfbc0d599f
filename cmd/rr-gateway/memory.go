package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// memoryHeadroom is what the gateway holds besides the password and
// passphrase checks before its garbage collector works harder: the Go
// runtime's soft memory limit is the hash memory budget plus this. An
// idle gateway holds about 20 MiB; a thousand idle sessions about 75 MiB.
const memoryHeadroom = 64 << 20

// limitMemory sets the runtime's soft memory limit from the hash memory
// budget and what an upload to S3 holds (uploads), unless GOMEMLIMIT in
// the environment sets it. Without a limit
// the collector lets the heap grow to twice what was live at the last
// collection: with 8 checks of 64 MiB live, about 1 GiB, most of it
// garbage of finished checks, kept until the next collection. With it,
// the finished checks' memory is collected before new checks take more.
func limitMemory(budget, uploads int64, log *slog.Logger) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		log.Info("memory limit from the environment", "GOMEMLIMIT", v)
		return
	}
	limit := budget + uploads + memoryHeadroom
	debug.SetMemoryLimit(limit)
	log.Info("memory limit", "soft_limit_mib", limit>>20, "hash_memory_budget_mib", budget>>20, "upload_mib", uploads>>20)
}

// uploadMemory is what the one upload to S3 at a time holds: about four
// parts (s3sink's multipart uploads), none without a bucket.
func (c *fileConfig) uploadMemory() int64 {
	if c.Recordings.S3.Bucket == "" {
		return 0
	}
	part := c.Recordings.S3.PartSize
	if part <= 0 {
		part = 16 << 20 // s3sink's default
	}
	return 4 * part
}
