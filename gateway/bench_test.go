package gateway_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/rr-gateway/rr/gateway"
)

// benchBulk moves 64 MiB of log lines from the host to the person through
// the gateway, recorded into the spool (rec nil) or not at all.
func benchBulk(b *testing.B, rec gateway.Recorders) {
	const size = 64 << 20
	e := newEnvB(b, gateway.Config{Recorders: rec})
	c := e.dialB(b, "rr+web-01")
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		s, err := c.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		out, _ := s.StdoutPipe()
		if err := s.Start("yes 'Nov 24 18:33:02 web-01 sshd[1234]: Accepted publickey for deploy from 10.0.0.7 port 52144 ssh2' | head -c 67108864"); err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, out)
		s.Wait()
		s.Close()
		if n != size {
			b.Fatalf("moved %d bytes", n)
		}
		c = e.dialB(b, "rr+web-01") // each session asks its passphrase on its own connection
	}
}

func BenchmarkBulkRecordingOff(b *testing.B) { benchBulk(b, gateway.NopRecorders{}) }
func BenchmarkBulkRecordingOn(b *testing.B)  { benchBulk(b, nil) }

// benchUpload moves 64 MiB of log lines from the person to the host
// (cat > /dev/null) through the gateway, recorded or not.
func benchUpload(b *testing.B, rec gateway.Recorders) {
	const size = 64 << 20
	line := []byte("Nov 24 18:33:02 web-01 sshd[1234]: Accepted publickey for deploy from 10.0.0.7 port 52144 ssh2\n")
	data := bytes.Repeat(line, size/len(line)+1)[:size]
	e := newEnvB(b, gateway.Config{Recorders: rec})
	c := e.dialB(b, "rr+web-01")
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		s, err := c.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		s.Stdin = bytes.NewReader(data)
		if err := s.Run("cat > /dev/null"); err != nil {
			b.Fatal(err)
		}
		s.Close()
		c = e.dialB(b, "rr+web-01")
	}
}

func BenchmarkUploadRecordingOff(b *testing.B) { benchUpload(b, gateway.NopRecorders{}) }
func BenchmarkUploadRecordingOn(b *testing.B)  { benchUpload(b, nil) }
