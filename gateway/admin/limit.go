package admin

import (
	"errors"
	"fmt"
)

// The most rows one sessions or audit command lists: each row is read
// into memory and written out before the next command, so an unbounded
// --limit would let one console line hold the gateway's memory and the
// store for as long as it likes. Older rows are reached by narrowing
// (--since, --until, --host, --user) instead.
const (
	maxSessionsLimit = 10000
	maxAuditLimit    = 100000
)

// checkLimit refuses a --limit that is not positive or is over max.
func checkLimit(n, max int) error {
	switch {
	case n <= 0:
		return errors.New("--limit must be positive")
	case n > max:
		return fmt.Errorf("--limit is at most %d; narrow the list with --since or the other filters", max)
	}
	return nil
}
