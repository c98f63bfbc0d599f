package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/store"
)

// Directory is what the notifier reads to find who to tell.
type Directory interface {
	Teams(ctx context.Context) ([]store.Team, error)
	// EventSubscriptions maps a team to the least severe priority it is
	// mailed ("off": none); a team absent takes DefaultSubscription.
	EventSubscriptions(ctx context.Context) (map[string]string, error)
	People(ctx context.Context) ([]store.Person, error)
	Host(ctx context.Context, name string) (store.Host, error)
}

// DefaultSubscription is a team's subscription until it chooses one:
// critical, alert and emergency events.
const DefaultSubscription = "critical"

// SubscriptionOff is the subscription of a team that is mailed nothing.
const SubscriptionOff = "off"

// NotifierConfig configures a Notifier. Directory, Mailer and Address
// are required.
type NotifierConfig struct {
	Directory Directory
	Mailer    auth.Mailer
	// Address is the gateway's public address (HOST or HOST:PORT) for
	// the command in the mail.
	Address string
	// Queue bounds the events waiting to be mailed (0: 1024); Enqueue
	// refuses beyond it.
	Queue int
	// DigestAfter is how many mails a person gets in DigestWindow before
	// the rest wait and go out as one digest (0: 5 in 10 minutes).
	DigestAfter  int
	DigestWindow time.Duration
	// MaxPending bounds the mails waiting for the mail server (0: 10000);
	// RetryFor is how long one is retried (0: 24h). Past either, the
	// oldest is dropped with an error in the log.
	MaxPending int
	RetryFor   time.Duration
	// Sent, if set, is called after each mail the server took (tests,
	// benchmarks).
	Sent   func(m auth.Message, events []string)
	Logger *slog.Logger
	Now    func() time.Time
}

// Notifier mails subscribed people about events. Enqueue never blocks;
// Run does the work.
type Notifier struct {
	cfg   NotifierConfig
	log   *slog.Logger
	queue chan store.Event
}

// NewNotifier checks cfg and fills its defaults.
func NewNotifier(cfg NotifierConfig) (*Notifier, error) {
	var errs []error
	if cfg.Directory == nil {
		errs = append(errs, errors.New("events: NotifierConfig.Directory is required"))
	}
	if cfg.Mailer == nil {
		errs = append(errs, errors.New("events: NotifierConfig.Mailer is required"))
	}
	if cfg.Address == "" {
		errs = append(errs, errors.New("events: NotifierConfig.Address is required (the gateway's public address)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	if cfg.DigestAfter <= 0 {
		cfg.DigestAfter = 5
	}
	if cfg.DigestWindow <= 0 {
		cfg.DigestWindow = 10 * time.Minute
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 10000
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Notifier{cfg: cfg, log: cfg.Logger, queue: make(chan store.Event, cfg.Queue)}, nil
}

// Enqueue queues e to be mailed, unless the queue is full.
func (n *Notifier) Enqueue(e store.Event) bool {
	select {
	case n.queue <- e:
		return true
	default:
		return false
	}
}

// Command is the command that opens a session on event id's host.
func Command(address, id string) string {
	host, port := address, ""
	if h, p, err := net.SplitHostPort(address); err == nil {
		host, port = h, p
	}
	if port != "" && port != "22" {
		return fmt.Sprintf("ssh -t -p %s rr@%s event:%s", port, host, id)
	}
	return fmt.Sprintf("ssh -t rr@%s event:%s", host, id)
}

// pending is one mail waiting for the mail server.
type pending struct {
	msg     auth.Message
	person  string
	events  []string
	queued  time.Time
	next    time.Time
	backoff time.Duration
}

// person is what the notifier remembers of someone it mails.
type person struct {
	email  string
	sent   []time.Time   // mails handed over within the window
	digest []store.Event // events held for the digest
}

// Run mails until ctx is done. Mails still waiting then are dropped with
// a log line (the events are stored; `events` lists them).
func (n *Notifier) Run(ctx context.Context) {
	var out []*pending
	people := map[string]*person{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := n.cfg.Now()
		out = n.sendDue(ctx, out, now)
		out = n.releaseDigests(out, people, now)
		wake := n.nextWake(out, people, now)
		timer.Reset(wake)
		select {
		case <-ctx.Done():
			if len(out) > 0 {
				n.log.Warn("events: mails not sent at shutdown", "mails", len(out))
			}
			return
		case e := <-n.queue:
			out = n.plan(ctx, e, out, people)
		case <-timer.C:
		}
	}
}

// plan works out who e goes to and queues their mails (or holds them for
// a digest).
func (n *Notifier) plan(ctx context.Context, e store.Event, out []*pending, people map[string]*person) []*pending {
	to, err := n.recipients(ctx, e)
	if err != nil {
		n.log.Error("events: recipients not found; the event is not mailed", "event", e.ID, "err", err)
		return out
	}
	now := n.cfg.Now()
	for _, p := range to {
		st := people[p.Name]
		if st == nil {
			st = &person{}
			people[p.Name] = st
		}
		st.email = p.Email
		st.sent = recent(st.sent, now, n.cfg.DigestWindow)
		if len(st.sent)+len(st.digest) >= n.cfg.DigestAfter || len(st.digest) > 0 {
			st.digest = append(st.digest, e)
			continue
		}
		st.sent = append(st.sent, now) // counted when planned: the window limits what we ask the server to send
		out = n.push(out, &pending{msg: n.message(p.Email, e), person: p.Name, events: []string{e.ID}, queued: now, next: now})
	}
	return out
}

func (n *Notifier) push(out []*pending, m *pending) []*pending {
	if len(out) >= n.cfg.MaxPending {
		n.log.Error("events: mail dropped: too many waiting for the mail server", "to", m.person, "events", out[0].events)
		out = out[1:]
	}
	return append(out, m)
}

// recent keeps the times within window before now.
func recent(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= window {
		i++
	}
	return ts[i:]
}

// releaseDigests queues the digest of each person whose window has room.
func (n *Notifier) releaseDigests(out []*pending, people map[string]*person, now time.Time) []*pending {
	for name, st := range people {
		st.sent = recent(st.sent, now, n.cfg.DigestWindow)
		if len(st.digest) == 0 {
			if len(st.sent) == 0 {
				delete(people, name)
			}
			continue
		}
		if len(st.sent) >= n.cfg.DigestAfter {
			continue
		}
		ids := make([]string, len(st.digest))
		for i, e := range st.digest {
			ids[i] = e.ID
		}
		st.sent = append(st.sent, now)
		out = n.push(out, &pending{msg: n.digest(st.email, st.digest), person: name, events: ids, queued: now, next: now})
		st.digest = nil
	}
	return out
}

// sendDue hands the mail server every mail that is due, oldest first.
func (n *Notifier) sendDue(ctx context.Context, out []*pending, now time.Time) []*pending {
	keep := out[:0]
	for i, m := range out {
		if ctx.Err() != nil {
			return append(keep, out[i:]...)
		}
		if m.next.After(now) {
			keep = append(keep, m)
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := n.cfg.Mailer.Send(sctx, m.msg)
		cancel()
		if err == nil {
			n.log.Info("events: mailed", "to", m.person, "events", m.events)
			if n.cfg.Sent != nil {
				n.cfg.Sent(m.msg, m.events)
			}
			continue
		}
		if now.Sub(m.queued) >= n.cfg.RetryFor {
			n.log.Error("events: mail dropped after retrying", "to", m.person, "events", m.events, "err", err)
			continue
		}
		m.backoff = min(max(2*m.backoff, time.Second), time.Minute)
		m.next = now.Add(m.backoff)
		n.log.Warn("events: mail server refused; will retry", "to", m.person, "events", m.events, "in", m.backoff, "err", err)
		keep = append(keep, m)
	}
	return keep
}

// nextWake is how long until a mail is due or a digest may go.
func (n *Notifier) nextWake(out []*pending, people map[string]*person, now time.Time) time.Duration {
	wake := time.Hour
	for _, m := range out {
		wake = min(wake, m.next.Sub(now))
	}
	for _, st := range people {
		if len(st.digest) > 0 && len(st.sent) > 0 {
			wake = min(wake, st.sent[0].Add(n.cfg.DigestWindow).Sub(now))
		}
	}
	return max(wake, time.Millisecond)
}

// recipients are the people e is mailed to: members with an address of
// each Rapid Response team subscribed to e's priority that may reach e's
// host; each once.
func (n *Notifier) recipients(ctx context.Context, e store.Event) ([]store.Person, error) {
	h, err := n.cfg.Directory.Host(ctx, e.Host)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	teams, err := n.cfg.Directory.Teams(ctx)
	if err != nil {
		return nil, err
	}
	subs, err := n.cfg.Directory.EventSubscriptions(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, t := range teams {
		if !t.RapidResponse || !Subscribed(subs[t.Name], Priority(e.Priority)) {
			continue
		}
		if !auth.MayReach(auth.Team{Name: t.Name, RapidResponse: true, Hosts: t.Hosts}, auth.Host{Name: h.Name, Labels: h.Labels}) {
			continue
		}
		names = append(names, t.Members...)
	}
	if len(names) == 0 {
		return nil, nil
	}
	all, err := n.cfg.Directory.People(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.Person
	for _, p := range all {
		if slices.Contains(names, p.Name) && p.Email != "" && (p.Role == auth.RoleAdvanced || p.Role == auth.RoleAdmin) {
			out = append(out, p)
		}
	}
	return out, nil
}

// Subscribed reports whether a team subscribed with sub ("" is
// DefaultSubscription) is mailed an event of priority p.
func Subscribed(sub string, p Priority) bool {
	if sub == "" {
		sub = DefaultSubscription
	}
	min, ok := ParsePriority(sub)
	return ok && p.AtLeast(min)
}

// ValidSubscription reports whether s is a priority name or "off".
func ValidSubscription(s string) bool {
	_, ok := ParsePriority(s)
	return ok || s == SubscriptionOff
}

// message is the mail of one event.
func (n *Notifier) message(to string, e store.Event) auth.Message {
	var b strings.Builder
	fmt.Fprintf(&b, "A security event fired on %s.\n\n", e.Host)
	writeEvent(&b, e)
	fmt.Fprintf(&b, "\nTo respond, open a recorded session on %s:\n\n    %s\n\n", e.Host, Command(n.cfg.Address, e.ID))
	fmt.Fprintf(&b, "It asks the same as for the host (team, passphrase, code). In the rr-admin console:\n"+
		"event show %s, event ack %s NOTE, event resolve %s NOTE.\n", e.ID, e.ID, e.ID)
	return auth.Message{To: to, Subject: fmt.Sprintf("[rr] %s: %s on %s (%s)", Priority(e.Priority), e.Rule, e.Host, e.ID),
		Body: b.String()}
}

// digest is the one mail of events held back.
func (n *Notifier) digest(to string, es []store.Event) auth.Message {
	var b strings.Builder
	fmt.Fprintf(&b, "%d more security events fired while you were being mailed often; one mail for them all.\n", len(es))
	for _, e := range es {
		b.WriteString("\n")
		writeEvent(&b, e)
		fmt.Fprintf(&b, "respond:   %s\n", Command(n.cfg.Address, e.ID))
	}
	return auth.Message{To: to, Subject: fmt.Sprintf("[rr] %d security events (digest)", len(es)), Body: b.String()}
}

func writeEvent(b *strings.Builder, e store.Event) {
	fmt.Fprintf(b, "event:     %s\nrule:      %s\npriority:  %s\nhost:      %s\ntime:      %s\nsummary:   %s\n",
		e.ID, e.Rule, Priority(e.Priority), e.Host, e.Time.UTC().Format(time.RFC3339), e.Summary)
}
