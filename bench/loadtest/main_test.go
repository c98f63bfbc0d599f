package loadtest

import (
	"os"
	"testing"

	"github.com/rr-gateway/rr/internal/pgtest"
)

// A load run (RR_LOAD=1) has a throwaway PostgreSQL for TestLoadHA; the
// harness tests of every `make test` need none.
func TestMain(m *testing.M) {
	if os.Getenv("RR_LOAD") == "1" {
		pgtest.Main(m, nil)
	}
	os.Exit(m.Run())
}
