package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rr-gateway/rr/gateway/gatewaytest"
)

// TestStoreDownAtStart: a gateway whose PostgreSQL cannot be reached
// exits non-zero with one line that says so, names host:port and never
// the DSN's password; the DSN came from the environment, which the
// gateway cleared.
func TestStoreDownAtStart(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	addr := gatewaytest.FreeAddr(t) // nothing listens there
	if err := os.WriteFile(cfg, []byte(`
listen: 127.0.0.1:0
agent_listen: 127.0.0.1:0
host_key: `+filepath.Join(dir, "host_key")+`
mail: {mode: smtp, smtp: {host: 127.0.0.1, port: 1, tls: none}}
recordings: {spool: `+filepath.Join(dir, "spool")+`}
store: {driver: postgres, connect_timeout: 2s}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(dsnEnv, "postgres://rr:s3cret-pw@"+addr+"/rr?sslmode=disable")
	var out, errb bytes.Buffer
	code := run([]string{"-config", cfg, "-log-format", "text"}, &out, &errb)
	if code == 0 {
		t.Fatal("the gateway ran without its database")
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "cannot reach the PostgreSQL server at "+addr) {
		t.Fatalf("last line %q, want it to say the database cannot be reached", last)
	}
	if strings.Contains(errb.String(), "s3cret-pw") {
		t.Fatalf("the DSN's password was printed:\n%s", errb.String())
	}
	if _, ok := os.LookupEnv(dsnEnv); ok {
		t.Fatalf("$%s is still set", dsnEnv)
	}
}

// TestStoreConfig: the store's settings are checked up front.
func TestStoreConfig(t *testing.T) {
	for _, tc := range []struct {
		s    fileStore
		want string
	}{
		{fileStore{}, ""},
		{fileStore{Driver: "postgres", DSNFile: "/x"}, ""},
		{fileStore{Driver: "mysql"}, "want sqlite or postgres"},
		{fileStore{Driver: "sqlite", DSNFile: "/x"}, "only for driver: postgres"},
	} {
		err := tc.s.check()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.s, err, tc.want)
		}
	}
	// A DSN file's first line is the DSN.
	f := filepath.Join(t.TempDir(), "dsn")
	os.WriteFile(f, []byte("postgres://a@b/c\n# comment\n"), 0o600)
	if dsn, err := (fileStore{Driver: "postgres", DSNFile: f}).dsn(); err != nil || dsn != "postgres://a@b/c" {
		t.Fatalf("dsn %q, %v", dsn, err)
	}
}
