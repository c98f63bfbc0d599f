package gateway_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/rr-gateway/rr/gateway"
)

const (
	benchSize = 64 << 20
	benchLine = "Nov 24 18:33:02 web-01 sshd[1234]: Accepted publickey for deploy from 10.0.0.7 port 52144 ssh2\n"
)

// benchTransfer moves 64 MiB of log lines through the gateway, from the
// host to the person (down) or the other way, recorded into the spool
// (rec nil) or not at all. Each session logs in on its own connection, as
// each asks its passphrase; the clock runs from the session's start, as
// rrbench's does, so that the login's argon2id (the same with recording on
// or off) does not narrow the gap between the two.
func benchTransfer(b *testing.B, rec gateway.Recorders, down bool) {
	var data []byte // what an upload sends
	if !down {
		data = bytes.Repeat([]byte(benchLine), benchSize/len(benchLine)+1)[:benchSize]
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
		if down {
			out, _ := s.StdoutPipe()
			if err := s.Start("yes '" + benchLine[:len(benchLine)-1] + "' | head -c 67108864"); err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, out)
			s.Wait()
			if n != benchSize {
				b.Fatalf("moved %d bytes", n)
			}
		} else {
			s.Stdin = bytes.NewReader(data)
			if err := s.Run("cat > /dev/null"); err != nil {
				b.Fatal(err)
			}
		}
		s.Close()
	}
}

func BenchmarkBulkRecordingOff(b *testing.B)   { benchTransfer(b, gateway.NopRecorders{}, true) }
func BenchmarkBulkRecordingOn(b *testing.B)    { benchTransfer(b, nil, true) }
func BenchmarkUploadRecordingOff(b *testing.B) { benchTransfer(b, gateway.NopRecorders{}, false) }
func BenchmarkUploadRecordingOn(b *testing.B)  { benchTransfer(b, nil, false) }
