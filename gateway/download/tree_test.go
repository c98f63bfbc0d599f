package download

import (
	"context"
	"errors"
	"testing"
)

func TestResolve(t *testing.T) {
	f := newFixture(t)
	long := f.good.Name()
	tests := []struct {
		path    string
		want    string // node path; "" when an error is expected
		file    bool
		wantErr error
	}{
		{path: "", want: "/"},
		{path: ".", want: "/"},
		{path: "/", want: "/"},
		{path: "..", want: "/"},
		{path: "recordings", want: "/recordings"},
		{path: "./recordings/", want: "/recordings"},
		{path: "/recordings", want: "/recordings"},
		{path: "recordings/s1.gz", want: "/recordings/s1.gz", file: true},
		{path: "/recordings/s1.gz", want: "/recordings/s1.gz", file: true},
		{path: "./recordings/s1.gz", want: "/recordings/s1.gz", file: true},
		{path: "recordings/" + long, want: "/recordings/" + long, file: true},
		{path: "/recordings/../recordings/./" + long, want: "/recordings/" + long, file: true},
		{path: "../../recordings/s1.gz", want: "/recordings/s1.gz", file: true},
		{path: "../../etc/passwd", wantErr: ErrNotFound},
		{path: "/etc/passwd", wantErr: ErrNotFound},
		{path: "recordings/../../etc/passwd", wantErr: ErrNotFound},
		{path: "s1.gz", wantErr: ErrNotFound},
		{path: "recordings/s1", wantErr: ErrNotFound},
		{path: "recordings/s1.gz/x", wantErr: ErrNotFound},
		{path: "recordings/nope.gz", wantErr: ErrNotFound},
		{path: "recordings/s1_web-02_20261125T211000Z.gz", wantErr: ErrNotFound},
		{path: "recordings/s1_web-01_20261125T211000Z", wantErr: ErrNotFound},
		{path: "recordings/.gz", wantErr: ErrNotFound},
		{path: "recordings/_x.gz", wantErr: ErrNotFound},
		{path: "recordings/s9.gz", wantErr: ErrLive},
		{path: "other", wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		n, err := f.srv.resolve(context.Background(), tt.path)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("resolve(%q) = %+v, %v; want %v", tt.path, n, err, tt.wantErr)
			}
			continue
		}
		if err != nil || n.path != tt.want || n.file != tt.file {
			t.Errorf("resolve(%q) = %q (file %v), %v; want %q (file %v)", tt.path, n.path, n.file, err, tt.want, tt.file)
		}
		if n.file && n.entry.ID != "s1" {
			t.Errorf("resolve(%q) resolved to entry %q, want s1", tt.path, n.entry.ID)
		}
	}
}
