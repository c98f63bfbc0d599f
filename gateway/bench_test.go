package gateway_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rr-gateway/rr/gateway"
)

const (
	benchSize = 64 << 20
	benchLine = "Nov 24 18:33:02 web-01 sshd[1234]: Accepted publickey for deploy from 10.0.0.7 port 52144 ssh2\n"
)

// The transfers the benchmarks time.
const (
	transferDown   = iota // log lines from the host to the person
	transferUp            // log lines from the person to the host
	transferBinary        // binary data (a file of pseudo-random bytes) from the host
)

// benchTransfer moves 64 MiB through the gateway (see transferDown and the others),
// recorded into the spool (rec nil) or not at all. Each session logs in on
// its own connection, as each asks its passphrase; the clock runs from the
// session's start, as rrbench's does, so that the login's argon2id (the
// same with recording on or off) does not narrow the gap between the two.
func benchTransfer(b *testing.B, rec gateway.Recorders, kind int) {
	var data []byte // what an upload sends
	cmd := "yes '" + benchLine[:len(benchLine)-1] + "' | head -c 67108864"
	switch kind {
	case transferUp:
		data = bytes.Repeat([]byte(benchLine), benchSize/len(benchLine)+1)[:benchSize]
	case transferBinary:
		path := filepath.Join(b.TempDir(), "random")
		if err := os.WriteFile(path, pseudoRandom(benchSize), 0o600); err != nil {
			b.Fatal(err)
		}
		cmd = "cat " + path
	}
	e := newEnvB(b, gateway.Config{Recorders: rec})
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		c := e.dialB(b, "rr+web-01")
		s, err := c.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if kind == transferUp {
			s.Stdin = bytes.NewReader(data)
			if err := s.Run("cat > /dev/null"); err != nil {
				b.Fatal(err)
			}
		} else {
			out, _ := s.StdoutPipe()
			if err := s.Start(cmd); err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, out)
			s.Wait()
			if n != benchSize {
				b.Fatalf("moved %d bytes", n)
			}
		}
		s.Close()
	}
}

// pseudoRandom returns n bytes of xorshift64 output: binary data as a
// compressed archive is, the same in every run.
func pseudoRandom(n int) []byte {
	p := make([]byte, n)
	x := uint64(88172645463325252)
	for i := range p {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[i] = byte(x >> 32)
	}
	return p
}

func BenchmarkBulkRecordingOff(b *testing.B)   { benchTransfer(b, gateway.NopRecorders{}, transferDown) }
func BenchmarkBulkRecordingOn(b *testing.B)    { benchTransfer(b, nil, transferDown) }
func BenchmarkUploadRecordingOff(b *testing.B) { benchTransfer(b, gateway.NopRecorders{}, transferUp) }
func BenchmarkUploadRecordingOn(b *testing.B)  { benchTransfer(b, nil, transferUp) }
func BenchmarkBinaryRecordingOff(b *testing.B) {
	benchTransfer(b, gateway.NopRecorders{}, transferBinary)
}
func BenchmarkBinaryRecordingOn(b *testing.B) { benchTransfer(b, nil, transferBinary) }
