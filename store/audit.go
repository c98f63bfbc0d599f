package store

import "time"

// AuditEvent is one decision or event, allowed or denied.
type AuditEvent struct {
	Time      time.Time
	Actor     string
	Action    string
	Target    string
	Outcome   string
	Detail    string
	Source    string
	SessionID string

	// Seq, Prev and Hash place the event in the hash chain (see
	// ChainHash); the store sets them when it appends, and what it sets
	// them to is ignored on the way in.
	Seq  int64
	Prev string // hex SHA-256 of the previous event; "" for the first
	Hash string // hex SHA-256 of this event's canonical form
}

// AuditFilter narrows AuditEvents. Zero fields match everything.
type AuditFilter struct {
	Since, Until time.Time // at or after Since; before Until
	Actor        string    // exact
	// Action matches exactly or, when it ends with "." or "*", as a
	// prefix: "session." and "auth.*" match "session.kill" and "auth.code".
	Action    string
	Target    string // exact
	SessionID string // exact
	Limit     int    // 0 means 1000
}
