package store

import "time"

// SessionState is where a session is in its life.
type SessionState string

// The states of a session (docs/architecture.md#the-store).
const (
	StateLive        SessionState = "live"
	StateClosed      SessionState = "closed"
	StateKilled      SessionState = "killed"
	StateInterrupted SessionState = "interrupted"
)

// Session is one person's session on one host.
type Session struct {
	ID         string
	Person     string
	Team       string
	Host       string
	Command    string // "" for a shell
	PTY        bool
	Source     string // client address
	State      SessionState
	Started    time.Time
	Ended      time.Time // zero while live
	BytesIn    int64     // person → host
	BytesOut   int64     // host → person
	ExitStatus *int      // nil if none (signal, killed, lost)
	EndReason  string
	KilledBy   string
	// Recording is where the recording is (a spool path for now);
	// RecordingSize and RecordingSHA256 are set when it is finalized.
	Recording       string
	RecordingSize   int64
	RecordingSHA256 string
	// EventID and EventRule name the security event the session was
	// opened from (ssh rr@gw event:ID); "" for others.
	EventID, EventRule string
	// Gateway is the name of the gateway that holds (or held) the
	// session, GatewayAdvertise where peers and people reach it
	// directly; its recording is in that gateway's spool until uploaded.
	Gateway, GatewayAdvertise string
}

// SessionEnd is what FinishSession records.
type SessionEnd struct {
	State             SessionState
	Ended             time.Time
	BytesIn, BytesOut int64
	ExitStatus        *int
	EndReason         string
	KilledBy          string
}

// SessionFilter narrows Sessions. Limit 0 means 100.
type SessionFilter struct {
	LiveOnly     bool
	Host, Person string
	Team         string // exact, when not empty
	EventID      string // sessions opened from this event, when not empty
	Since        time.Time
	Limit        int
}
