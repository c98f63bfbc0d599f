package store

import (
	"context"
	"time"
)

// Cluster is what a backend offers for several gateways on one store
// (store/sqlstore's cluster.go, for both backends): leases and the takeover
// of an expired one, kill requests, host presence. Each method is one
// statement or one transaction.
type Cluster interface {
	RenewLease(ctx context.Context, l Lease) error
	Lease(ctx context.Context, gateway string) (Lease, error)
	Leases(ctx context.Context) ([]Lease, error)
	ExpireGateways(ctx context.Context, self string, now time.Time) ([]Expired, error)
	RequestKill(ctx context.Context, r KillRequest) error
	TakeKillRequests(ctx context.Context, gateway string) ([]KillRequest, error)
	SetPresence(ctx context.Context, host, gateway string, now time.Time) error
	DropPresence(ctx context.Context, host, gateway string) error
	Presence(ctx context.Context, now time.Time) ([]Presence, error)
}

// Lease is a gateway's claim to be alive: it renews it well before
// Expires; once Expires has passed, a peer takes over what the gateway
// left (its live sessions become interrupted, its hosts' presence goes).
type Lease struct {
	Gateway   string
	Advertise string // where peers and people reach this gateway directly (HOST:PORT)
	Renewed   time.Time
	Expires   time.Time
}

// Expired gives, for one gateway whose lease a peer found expired, the
// live sessions it held that are now interrupted.
type Expired struct {
	Gateway  string
	Sessions []string
}

// KillRequest asks the gateway holding a live session to kill it, as its
// own console would: By is the person told, Reason what they read.
type KillRequest struct {
	SessionID string
	Gateway   string // the gateway holding the session
	By        string
	Reason    string
	Requested time.Time
}

// Presence says that Gateway holds a tunnel of Host's agent, since Since,
// as last renewed at LastSeen.
type Presence struct {
	Host     string
	Gateway  string
	Since    time.Time
	LastSeen time.Time
}

// EndReasonGatewayLost is the start of a session's end reason when a peer
// found its gateway's lease expired: the recording is still in that
// gateway's spool, sealed (and uploaded) when it restarts.
const EndReasonGatewayLost = "gateway lost"
