package recorder

import (
	"testing"

	"go.uber.org/goleak"
)

// The spool's flusher and the uploader are goroutines: none may outlive
// its owner.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
