package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type sample struct {
	Name  string        `yaml:"name"`
	Every time.Duration `yaml:"every"`
	Log   Log           `yaml:"log"`
}

func TestDecodeStrict(t *testing.T) {
	var s sample
	if err := Decode([]byte("name: a\nevery: 1500ms\nlog: {format: text}\n"), &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != "a" || s.Every != 1500*time.Millisecond || s.Log.Format != "text" {
		t.Fatalf("%+v", s)
	}
	err := Decode([]byte("name: a\nnmae: b\n"), &s)
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "nmae") {
		t.Fatalf("unknown key: %v; want an error naming line 2 and the key", err)
	}
	if err := Decode([]byte("name: a\n---\nname: b\n"), &s); err == nil {
		t.Fatal("two documents accepted")
	}
	s = sample{Name: "default"}
	if err := Decode(nil, &s); err != nil || s.Name != "default" {
		t.Fatalf("empty file: %+v %v", s, err)
	}
}

func TestLogger(t *testing.T) {
	for _, l := range []Log{{}, {Format: "text", Level: "debug"}, {Format: "JSON", Level: "warn"}} {
		if _, err := l.Logger(os.Stderr); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
	for _, l := range []Log{{Format: "xml"}, {Level: "loud"}} {
		if _, err := l.Logger(os.Stderr); err == nil {
			t.Errorf("%+v accepted", l)
		}
	}
}

func TestSecret(t *testing.T) {
	f := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(f, []byte("from-file\n"), 0o600)
	if v, _ := Secret("inline", "", ""); v != "inline" {
		t.Errorf("inline: %q", v)
	}
	if v, _ := Secret("inline", f, ""); v != "from-file" {
		t.Errorf("file: %q", v)
	}
	t.Setenv("RR_TEST_SECRET", "from-env")
	if v, _ := Secret("inline", f, "RR_TEST_SECRET"); v != "from-env" {
		t.Errorf("env: %q", v)
	}
	if _, err := Secret("", filepath.Join(t.TempDir(), "missing"), ""); err == nil {
		t.Error("missing file accepted")
	}
}
