package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rr-gateway/rr/store"
)

// Store is the subset of the store the intake uses.
type Store interface {
	// AddEvent stores e unless an event with its Key exists: then it
	// returns that one and false. An id already taken is ErrConflict.
	AddEvent(ctx context.Context, e store.Event) (store.Event, bool, error)
	// ResolveEventByKey resolves the event with key (unless resolved
	// already) and returns it; ErrNotFound when there is none.
	ResolveEventByKey(ctx context.Context, key string, at time.Time, by, note string) (store.Event, error)
	Hosts(ctx context.Context) ([]store.Host, error)
	Audit(ctx context.Context, e store.AuditEvent) error
}

// Enqueuer takes stored events to mail about; it must not block.
type Enqueuer interface {
	Enqueue(e store.Event) bool
}

// IntakeConfig configures an Intake. Store is required.
type IntakeConfig struct {
	Store    Store
	Notifier Enqueuer // optional: nil mails nobody
	// HostLabels name an Alertmanager alert's host (nil:
	// DefaultHostLabels); MatchLabels are the rr host labels whose value
	// may match an event's host (nil: "node"), beside the host's name.
	HostLabels  []string
	MatchLabels []string
	Logger      *slog.Logger
	Now         func() time.Time
}

// Intake stores parsed deliveries: deduplicated, matched to rr hosts,
// counted and audited. It is safe for concurrent use.
type Intake struct {
	cfg     IntakeConfig
	log     *slog.Logger
	metrics *prometheus.CounterVec

	hostsMu   sync.Mutex
	hosts     []store.Host
	hostsTime time.Time
}

// hostsTTL is how long the list of hosts is reused between events: a
// burst of alerts does not read every host for each one.
const hostsTTL = 2 * time.Second

// NewIntake checks cfg and fills its defaults.
func NewIntake(cfg IntakeConfig) (*Intake, error) {
	if cfg.Store == nil {
		return nil, errors.New("events: IntakeConfig.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MatchLabels == nil {
		cfg.MatchLabels = []string{"node"}
	}
	return &Intake{cfg: cfg, log: cfg.Logger, metrics: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rr_event_deliveries_total",
		Help: "Security event deliveries by source and outcome (accepted, duplicate, resolved, and refused: unauthorized, too_large, bad_request, rate_limited, not_found).",
	}, []string{"source", "outcome"})}, nil
}

// Collector is the intake's metrics, for the gateway's /metrics.
func (in *Intake) Collector() prometheus.Collector { return in.metrics }

// Count counts one delivery's outcome.
func (in *Intake) Count(source, outcome string) { in.metrics.WithLabelValues(source, outcome).Inc() }

// Result is what one delivery did.
type Result struct {
	Accepted   []string // ids of new events
	Duplicates []string // ids of events delivered before
	Resolved   []string // ids of events resolved by it
}

// Accept stores ps, delivered from remote. A resolved alert with no event
// is ignored (its firing delivery was refused or pruned).
func (in *Intake) Accept(ctx context.Context, source, remote string, ps []Parsed) (Result, error) {
	var r Result
	now := in.cfg.Now()
	for _, p := range ps {
		if p.Resolved {
			e, err := in.cfg.Store.ResolveEventByKey(ctx, p.Key, now, source, "resolved by "+source)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return r, err
			}
			r.Resolved = append(r.Resolved, e.ID)
			in.Count(source, "resolved")
			in.audit(ctx, store.AuditEvent{Action: "event.resolve", Target: e.ID, Outcome: "allowed",
				Source: remote, Detail: "resolved by " + source})
			continue
		}
		host, err := in.matchHost(ctx, p.Host)
		if err != nil {
			return r, err
		}
		e := store.Event{Source: source, Rule: p.Rule, Priority: int(p.Priority), Time: time.Unix(0, p.Time).UTC(),
			Host: host, SourceHost: p.Host, Summary: p.Summary, Raw: p.Raw, Key: p.Key, Received: now,
			Status: store.EventOpen}
		var stored store.Event
		added := false
		for try := 0; ; try++ {
			e.ID = NewID()
			stored, added, err = in.cfg.Store.AddEvent(ctx, e)
			if !errors.Is(err, store.ErrConflict) || try == 4 {
				break
			}
		}
		if err != nil {
			return r, fmt.Errorf("events: store: %w", err)
		}
		if !added {
			r.Duplicates = append(r.Duplicates, stored.ID)
			in.Count(source, "duplicate")
			in.audit(ctx, store.AuditEvent{Action: "event.duplicate", Target: stored.ID, Outcome: "allowed",
				Source: remote, Detail: source + " delivered it again"})
			continue
		}
		r.Accepted = append(r.Accepted, stored.ID)
		in.Count(source, "accepted")
		in.audit(ctx, store.AuditEvent{Action: "event.accept", Target: stored.ID, Outcome: "allowed", Source: remote,
			Detail: fmt.Sprintf("%s %s %s on %s", source, Priority(stored.Priority), stored.Rule, hostOrUnknown(stored))})
		in.log.Info("security event", "event", stored.ID, "source", source, "rule", stored.Rule,
			"priority", Priority(stored.Priority).String(), "host", stored.Host, "source_host", stored.SourceHost)
		if in.cfg.Notifier != nil && stored.Host != "" && !in.cfg.Notifier.Enqueue(stored) {
			in.log.Error("event not mailed: the mail queue is full", "event", stored.ID)
		}
	}
	return r, nil
}

func hostOrUnknown(e store.Event) string {
	if e.Host != "" {
		return e.Host
	}
	if e.SourceHost != "" {
		return "unknown host " + e.SourceHost
	}
	return "unknown host"
}

// Refused audits a refused delivery (the caller counts it).
func (in *Intake) Refused(ctx context.Context, source, remote, why string) {
	in.audit(ctx, store.AuditEvent{Action: "event.deliver", Target: source, Outcome: "denied", Source: remote, Detail: why})
}

func (in *Intake) audit(ctx context.Context, e store.AuditEvent) {
	e.Time, e.Actor = in.cfg.Now(), "events"
	if err := in.cfg.Store.Audit(context.WithoutCancel(ctx), e); err != nil {
		in.log.Error("events: audit event lost", "action", e.Action, "target", e.Target, "err", err)
	}
}

// matchHost returns the rr host named name: by its name, or by one of
// MatchLabels' values ("node=NAME"); "" when none is.
func (in *Intake) matchHost(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	hosts, err := in.hostList(ctx)
	if err != nil {
		return "", err
	}
	return MatchHost(hosts, name, in.cfg.MatchLabels), nil
}

// MatchHost returns the host among hosts that name names: the one so
// called, else the first with a label K=name for K in labelKeys; "" if
// none. Names are compared case-insensitively (DNS names are).
func MatchHost(hosts []store.Host, name string, labelKeys []string) string {
	for _, h := range hosts {
		if strings.EqualFold(h.Name, name) {
			return h.Name
		}
	}
	for _, h := range hosts {
		for _, l := range h.Labels {
			k, v, _ := strings.Cut(l, "=")
			for _, want := range labelKeys {
				if k == want && strings.EqualFold(v, name) {
					return h.Name
				}
			}
		}
	}
	return ""
}

func (in *Intake) hostList(ctx context.Context) ([]store.Host, error) {
	in.hostsMu.Lock()
	defer in.hostsMu.Unlock()
	now := in.cfg.Now()
	if in.hosts != nil && now.Sub(in.hostsTime) < hostsTTL && now.After(in.hostsTime) {
		return in.hosts, nil
	}
	hosts, err := in.cfg.Store.Hosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("events: hosts: %w", err)
	}
	if hosts == nil {
		hosts = []store.Host{}
	}
	in.hosts, in.hostsTime = hosts, now
	return hosts, nil
}
