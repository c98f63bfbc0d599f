// Package testtool finds the programs tests run beside Go: ssh, scp,
// sftp, openssl, tmux, mailpit, versitygw and the like.
//
// A missing program skips the test, saying how to install it, so that
// `go test ./...` works on any machine. Under CI=true it fails the test
// instead: a CI image that lost a tool must not pass by skipping.
//
// Must not: install anything (scripts/test.sh does), or import rr's own
// packages (tests of every package use it).
package testtool

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// hint is what a missing tool's message says when the caller gives none.
const hint = "`make test` (scripts/test.sh) installs it"

// Path returns where program name is: on PATH, else in $(go env
// GOPATH)/bin, where `make test` go-installs mailpit and versitygw. When
// it is in neither, the test is skipped (failed under CI=true) with a
// message naming install, how to get it ("" for `make test`).
func Path(t testing.TB, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Missing(t, name, install)
	return ""
}

// Missing skips the test, or fails it under CI=true, for want of name
// (a program, or a module a program needs), saying how to install it
// ("" for `make test`).
func Missing(t testing.TB, name, install string) {
	t.Helper()
	if install == "" {
		install = hint
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI=true: a missing tool fails); %s", name, install)
	}
	t.Skipf("skipped: %s is not installed; %s", name, install)
}

// Need skips (under CI=true: fails) the test unless every program in
// names is on PATH or in $(go env GOPATH)/bin.
func Need(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		Path(t, name, "")
	}
}
