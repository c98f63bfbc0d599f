package loadtest

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rr-gateway/rr/recorder"
)

// Check is a recording decrypted and compared with its client's view.
type Check struct {
	// Status: "identical" (complete, both directions byte for byte what
	// the client sent and received), "complete-prefix" (complete, but a
	// connection died with bytes in flight: each direction a prefix of
	// the other), "prefix" (cut short by a crash; what it holds matches),
	// "missing", or "MISMATCH".
	Status    string  `json:"status"`
	Complete  bool    `json:"complete"` // the closing "x" event is there
	EndReason string  `json:"recorded_end,omitempty"`
	In        Compare `json:"in"`
	Out       Compare `json:"out"`
	Events    int     `json:"events"`
	Err       string  `json:"error,omitempty"`
}

// Lost is what the client sent or received that the recording does not
// hold, plus what it holds that differs (a corrupt byte counts once).
func (c Check) Lost() int64 { return c.In.Lost() + c.Out.Lost() }

// checkRecording decrypts the recording at path with passphrase and
// compares its "i" and "o" events ("ib"/"ob" exact bytes where present)
// with what the client sent (in) and received (out).
func checkRecording(path, passphrase string, in, out Ref) Check {
	f, err := os.Open(path)
	if err != nil {
		return Check{Status: "missing", Err: err.Error()}
	}
	defer f.Close()
	return checkReader(f, passphrase, in, out)
}

func checkReader(f io.Reader, passphrase string, in, out Ref) Check {
	rd, err := recorder.NewReader(f, passphrase)
	if err != nil {
		return Check{Status: "MISMATCH", Err: err.Error()}
	}
	mi, mo := NewMatcher(in), NewMatcher(out)
	var c Check
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			c.Complete = true
			break
		}
		if errors.Is(err, recorder.ErrTruncated) {
			break
		}
		if err != nil {
			c.Err = err.Error()
			break
		}
		c.Events++
		switch ev.Code {
		case "i":
			mi.Write(ev.Data)
		case "o":
			mo.Write(ev.Data)
		}
	}
	if rd.End != nil {
		c.EndReason = rd.End.Reason
	}
	c.In, c.Out = compareOf(mi, in), compareOf(mo, out)
	switch {
	case c.Err != "" || !c.In.Prefix() || !c.Out.Prefix():
		c.Status = "MISMATCH"
		if c.Err == "" {
			c.Err = fmt.Sprintf("in: %d of %d/%d bytes agree; out: %d of %d/%d",
				c.In.Common, c.In.Recorded, c.In.Client, c.Out.Common, c.Out.Recorded, c.Out.Client)
		}
	case c.Complete && c.In.Identical() && c.Out.Identical():
		c.Status = "identical"
	case c.Complete:
		c.Status = "complete-prefix"
	default:
		c.Status = "prefix"
	}
	return c
}
