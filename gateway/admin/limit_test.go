package admin

import "testing"

// TestLimitIsCapped: sessions and audit list at most their cap of rows a
// command; a --limit over it is refused with the cap in the message, and
// the cap itself is taken.
func TestLimitIsCapped(t *testing.T) {
	e := newEnv(t)
	for line, want := range map[string]string{
		"sessions --limit 10001":   "--limit is at most 10000; narrow the list with --since or the other filters",
		"sessions --limit 1000000": "--limit is at most 10000; narrow the list with --since or the other filters",
		"audit --limit 100001":     "--limit is at most 100000; narrow the list with --since or the other filters",
		"audit --limit -1":         "--limit must be positive",
		"sessions --limit 10000":   "",
		"audit --limit 100000":     "",
	} {
		if _, msg := e.exec(admin, line); msg != want {
			t.Errorf("%q: %q, want %q", line, msg, want)
		}
	}
}
