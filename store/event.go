package store

import "time"

// EventStatus is where a security event is in its life.
type EventStatus string

// The statuses of an event: open until someone responds; responding
// while a session on it is live; acknowledged or resolved by a person
// (or resolved by its source).
const (
	EventOpen         EventStatus = "open"
	EventResponding   EventStatus = "responding"
	EventAcknowledged EventStatus = "acknowledged"
	EventResolved     EventStatus = "resolved"
)

// Event is one security event (Falco, Alertmanager).
type Event struct {
	ID       string // e-7f3a9c
	Source   string // falco, alertmanager
	Rule     string // Falco's rule, Alertmanager's alertname
	Priority int    // 0 emergency … 7 debug (events.Priority)
	Time     time.Time
	// Host is the rr host the event matched, "" when none did;
	// SourceHost is the host as the payload named it.
	Host       string
	SourceHost string
	Summary    string
	Raw        []byte // the event's payload, bounded
	Key        string // what makes a repeated delivery a duplicate
	Received   time.Time
	Status     EventStatus
	StatusBy   string // who responded, acknowledged or resolved it
	StatusNote string
	StatusTime time.Time
}

// EventFilter selects events; zero fields select all.
type EventFilter struct {
	Since time.Time
	// MaxPriority keeps events of this priority or more severe (a lower
	// number); negative: any.
	MaxPriority int
	Host        string
	Status      EventStatus
	// Hosts, when not nil, keeps only events on these rr hosts (a team
	// member's reach); an empty, non-nil list keeps none.
	Hosts []string
	Limit int
}
