package postgres

import (
	"strings"
	"testing"
)

// TestInsecureDSN: only a server on another machine reached without
// required TLS is warned about, and the warning never quotes the DSN.
func TestInsecureDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		warn bool
	}{
		{"postgres://rr:pw@127.0.0.1:5432/rr?sslmode=disable", false},
		{"postgres://rr:pw@localhost/rr", false},
		{"host=/var/run/postgresql dbname=rr", false},
		{"postgres://rr:pw@[::1]:5432/rr?sslmode=disable", false},
		{"postgres://rr:pw@db.example:5432/rr?sslmode=disable", true},
		{"postgres://rr:pw@db.example/rr", true}, // prefer: clear if the server offers no TLS
		{"postgres://rr:pw@db.example/rr?sslmode=allow", true},
		{"host=10.0.0.5 user=rr password=pw sslmode=prefer", true},
		{"postgres://rr:pw@db.example/rr?sslmode=require", false},
		{"postgres://rr:pw@db.example/rr?sslmode=verify-full", false},
	} {
		w := InsecureDSN(tc.dsn)
		if (w != "") != tc.warn {
			t.Errorf("%s: warning %q, want one: %v", tc.dsn, w, tc.warn)
		}
		if strings.Contains(w, "pw") {
			t.Errorf("%s: the warning quotes the password: %q", tc.dsn, w)
		}
	}
}
