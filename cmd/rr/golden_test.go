package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite rr's golden outputs in testdata/recordings (top level)")

// goldenDir holds the recordings of known sessions recorder's tests make,
// and what rr prints for each (testdata/README.md).
const goldenDir = "../../testdata/recordings"

// TestGoldenRecordings: for each golden recording, rr cat, cat -input,
// export, verify and play print what they printed when the golden files
// were made; a complete file exits 0, the cut one 1 with what it could
// read.
func TestGoldenRecordings(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.gz"))
	if err != nil || len(files) < 4 {
		t.Fatalf("golden recordings: %v %v (go test ./recorder -run TestGoldenRecordings -update makes them)", files, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".gz")
		for _, c := range []struct {
			golden string
			args   []string
		}{
			{"cat", []string{"cat"}},
			{"cat-input", []string{"cat", "-input"}},
			{"cast", []string{"export"}},
			{"verify", []string{"verify"}},
			{"cat", []string{"play", "-speed", "1000"}},
		} {
			t.Run(name+" "+strings.Join(c.args, " "), func(t *testing.T) {
				out, errOut, code := rr(t, "golden-passphrase", append(c.args, f)...)
				path := filepath.Join(goldenDir, name+"."+c.golden)
				if *update && c.args[0] != "play" {
					if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (go test ./cmd/rr -run TestGoldenRecordings -update writes it)", err)
				}
				if out != string(want) {
					t.Errorf("stdout differs from %s:\n got %q\nwant %q", path, out, want)
				}
				wantCode, wantErr := 0, ""
				if name == "cut" {
					wantCode, wantErr = 1, "cut short"
				}
				if code != wantCode || !strings.Contains(errOut, wantErr) || (wantErr == "" && errOut != "") {
					t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, wantCode, wantErr)
				}
			})
		}
	}
	// The gateway's SHA-256 of a file is checked against the file.
	shell := filepath.Join(goldenDir, "shell.gz")
	sum, err := fileSHA256(shell)
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := rr(t, "golden-passphrase", "verify", "-sha256", sum, shell); code != 0 {
		t.Errorf("verify -sha256 of the right sum: %d %s", code, errOut)
	}
	wrong := strings.Repeat("0", len(sum))
	if _, errOut, code := rr(t, "golden-passphrase", "verify", "-sha256", wrong, shell); code != 1 || !bytes.Contains([]byte(errOut), []byte("not the file the gateway wrote")) {
		t.Errorf("verify -sha256 of a wrong sum: %d %s", code, errOut)
	}
}
