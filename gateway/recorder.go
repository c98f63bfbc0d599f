package gateway

import (
	"context"
	"time"

	"github.com/rr-gateway/rr/auth"
)

// SessionInfo describes a session to its recorder.
type SessionInfo struct {
	ID      string
	Person  string
	Team    string
	Host    string
	Command string // "" for a shell
	PTY     bool
	Term    string
	Cols    uint32
	Rows    uint32
	Started time.Time
	Gateway string
	// EventID and EventRule name the security event the session was
	// opened from; "" for others.
	EventID, EventRule string
	// Client names the client when it is not an SSH one (ClientWebConsole).
	Client string
	// Passphrase is what the person typed for the host; it keys the
	// recording. The recorder must not keep it beyond deriving its key.
	Passphrase auth.Secret
}

// SessionEnd says how a session ended, for its recorder and its store row.
type SessionEnd struct {
	ExitStatus *int   // nil when the host sent none
	Signal     string // exit signal name, "" if none
	Reason     string // what ended it, in words: "exit 0", "client gone", "agent lost", …
	KilledBy   string
}

// Recorders starts a recorder for each session. Start failing means the
// session is refused: no recording, no session.
type Recorders interface {
	Start(ctx context.Context, info SessionInfo) (SessionRecorder, error)
}

// SessionRecorder receives both directions of one session's bytes in the
// order each direction crosses the gateway. Input and Output are called
// from different goroutines and must be safe for concurrent use; p is only
// valid during the call. An error ends the session (fail closed). Close is
// called once, after the host side has ended and its output was recorded;
// a person's keystroke racing the end may still reach Input after Close,
// which must then record nothing and return an error.
type SessionRecorder interface {
	Input(p []byte) error  // person → host
	Output(p []byte) error // host → person, stdout and stderr alike
	Resize(cols, rows uint32) error
	Close(end SessionEnd) error
}

// NopRecorders records nothing. It is never a default: it is only for
// what measures the relay alone (the benchmarks' "recording off" runs),
// named explicitly in Config.Recorders.
type NopRecorders struct{}

// Start returns a recorder that discards everything.
func (NopRecorders) Start(context.Context, SessionInfo) (SessionRecorder, error) {
	return nopRecorder{}, nil
}

type nopRecorder struct{}

func (nopRecorder) Input([]byte) error          { return nil }
func (nopRecorder) Output([]byte) error         { return nil }
func (nopRecorder) Resize(uint32, uint32) error { return nil }
func (nopRecorder) Close(SessionEnd) error      { return nil }
