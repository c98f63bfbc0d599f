package s3sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/rr-gateway/rr/recorder"
)

// corruptingProxy is an S3 endpoint in front of v that stores a damaged
// body for every PutObject: it flips the body's first byte and signs the
// request again, with the damaged body's hashes, as a faulty server or
// disk would store it. Everything else passes unchanged.
func corruptingProxy(t *testing.T, v *versitygw) string {
	t.Helper()
	backend, _ := url.Parse("http://" + v.addr)
	rp := httputil.NewSingleHostReverseProxy(backend)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Query().Has("uploadId") {
			rp.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil || len(body) == 0 {
			http.Error(w, "proxy: bad body", http.StatusBadRequest)
			return
		}
		body[0] ^= 0xff
		sum := sha256.Sum256(body)
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, backend.String()+r.URL.RequestURI(), bytes.NewReader(body))
		for k, vs := range r.Header {
			if k != "Authorization" && k != "X-Amz-Date" {
				out.Header[k] = vs
			}
		}
		out.ContentLength = int64(len(body))
		out.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		out.Header.Set("X-Amz-Checksum-Sha256", base64.StdEncoding.EncodeToString(sum[:]))
		creds := aws.Credentials{AccessKeyID: testAccess, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(r.Context(), creds, out, hex.EncodeToString(sum[:]), "s3", "us-east-1", time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// records passes a logger's records at warning level and above to a
// channel: each is one failed upload pass. Those the channel has no room
// for are dropped.
type records chan slog.Record

func (c records) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (c records) Handle(_ context.Context, r slog.Record) error {
	select {
	case c <- r:
	default:
	}
	return nil
}
func (c records) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c records) WithGroup(string) slog.Handler      { return c }

// TestUploaderKeepsFileWhenObjectIsCorrupt: an object stored damaged
// fails verification, stays in the bucket (never overwritten), and the
// retry must not take it for the recording: the spool file survives.
func TestUploaderKeepsFileWhenObjectIsCorrupt(t *testing.T) {
	v := startVersity(t)
	s := newSink(t, v, func(c *Config) { c.Endpoint = corruptingProxy(t, v) })
	sp, err := recorder.NewSpool(recorder.SpoolConfig{Dir: t.TempDir(), FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	r, err := sp.Create("c1", "pp", recorder.Header{SessionID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	r.Output([]byte("the only good copy"))
	row, err := r.Close(recorder.End{Reason: "exit 0"})
	if err != nil {
		t.Fatal(err)
	}
	logs := make(records, 16)
	moved := make(chan string, 4)
	u, err := recorder.NewUploader(recorder.UploaderConfig{
		Spool: sp, Sink: s, Logger: slog.New(logs),
		Final:    func(context.Context, string) (recorder.Closed, bool, error) { return row, true, nil },
		Moved:    func(_ context.Context, id, loc string) error { moved <- loc; return nil },
		Location: s.Location, AlreadyThere: ErrExists, Mismatch: ErrMismatch,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Rescan: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); u.Run(ctx) }()
	for pass := 1; pass <= 2; pass++ {
		select {
		case rec := <-logs:
			var msg string
			rec.Attrs(func(a slog.Attr) bool {
				if a.Key == "err" {
					msg = a.Value.String()
				}
				return true
			})
			t.Logf("pass %d: %s %s: %s", pass, rec.Level, rec.Message, msg)
			// The first pass put the object and found it damaged; the
			// second found it there, and that it is not the recording.
			want := []string{"", "does not match its checksum", "holds a different or damaged object"}[pass]
			if rec.Level != slog.LevelError || !strings.Contains(msg, want) {
				t.Errorf("pass %d: logged %s %q, want an error saying %q", pass, rec.Level, msg, want)
			}
		case loc := <-moved:
			t.Fatalf("pass %d: the damaged object was taken for the recording (moved to %s)", pass, loc)
		case <-time.After(30 * time.Second):
			t.Fatalf("pass %d never ended", pass)
		}
	}
	cancel()
	<-done
	if _, err := os.Stat(sp.Path("c1")); err != nil {
		t.Fatalf("the spool file is gone: %v", err)
	}
	if len(moved) > 0 {
		t.Fatalf("moved to %s", <-moved)
	}
	// The damaged object is still there, never overwritten, and is not
	// the file.
	stored, err := os.ReadFile(filepath.Join(v.dir, testBucket, "rec", "c1.gz"))
	local, _ := os.ReadFile(sp.Path("c1"))
	if err != nil || len(stored) != len(local) || bytes.Equal(stored, local) {
		t.Fatalf("stored object: %d bytes (%v), the file %d: want a damaged copy", len(stored), err, len(local))
	}
	if err := s.Verify(context.Background(), "c1.gz", sp.Path("c1"), row.Size, row.SHA256); !errors.Is(err, ErrMismatch) {
		t.Fatalf("verify the damaged object: %v", err)
	}
}

// headBlindProxy is an S3 endpoint in front of v that answers every
// HeadObject with 404: as if each object appeared only after the sink
// looked, so that only the conditional put (If-None-Match: *) stands
// between an upload and an object another gateway put meanwhile.
func headBlindProxy(t *testing.T, v *versitygw) string {
	t.Helper()
	backend, _ := url.Parse("http://" + v.addr)
	rp := httputil.NewSingleHostReverseProxy(backend)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestConditionalPutNeverOverwrites: an object put under the name between
// the sink's look and its put is not overwritten, in one put or in parts;
// the upload says ErrExists (and the uploader's Verify then decides).
func TestConditionalPutNeverOverwrites(t *testing.T) {
	v := startVersity(t)
	ctx := context.Background()
	direct := newSink(t, v, func(c *Config) { c.MultipartThreshold = 5 << 20; c.PartSize = 5 << 20 })
	racing := newSink(t, v, func(c *Config) {
		c.Endpoint = headBlindProxy(t, v)
		c.MultipartThreshold, c.PartSize = 5<<20, 5<<20
	})
	for _, n := range []int{1000, 11 << 20} {
		name := fmt.Sprintf("raced-%d.gz", n)
		first, firstSum := file(t, n)
		if err := direct.Upload(ctx, name, first, int64(n), firstSum); err != nil {
			t.Fatal(err)
		}
		second, secondSum := file(t, n)
		if err := racing.Upload(ctx, name, second, int64(n), secondSum); !errors.Is(err, ErrExists) {
			t.Errorf("%d bytes: an upload over an object put meanwhile: %v, want ErrExists", n, err)
		}
		if err := direct.Verify(ctx, name, first, int64(n), firstSum); err != nil {
			t.Errorf("%d bytes: the first object was replaced: %v", n, err)
		}
	}
}
