package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/events"
	"github.com/rr-gateway/rr/store"
)

// maxEventsLimit bounds events --limit.
const maxEventsLimit = 10000

// eventCommands are the security event commands, for commands().
func eventCommands() []*command {
	return []*command{
		{name: "events", args: "[--since S] [--priority P] [--host H] [--status S] [--limit N]",
			summary: "list security events on the hosts you may reach, newest first",
			detail: "--priority P keeps P and more severe (emergency, alert, critical, error, warning,\n" +
				"notice, informational, debug); --status: open, responding, acknowledged or resolved.\n" +
				"--since takes a duration ago (2h), RFC 3339 or YYYY-MM-DD; --limit defaults to 100,\n" +
				"at most 10000. Admins see every event, those on unknown hosts too.",
			run: (*Console).events},
		{name: "event show", args: "ID", summary: "show one event: its payload, its sessions and how to respond",
			run: (*Console).eventShow},
		{name: "event ack", args: "ID [NOTE...]", summary: "acknowledge an event, with a note", run: (*Console).eventAck},
		{name: "event resolve", args: "ID [NOTE...]", summary: "resolve an event, with a note", run: (*Console).eventResolve},
		{name: "team events", args: "TEAM PRIORITY|off|default",
			summary: "mail a team's members the events of this priority and above on their hosts",
			detail:  "default is critical (and alert, emergency); off mails none.",
			admin:   true, change: true, edits: "team", run: (*Console).teamEvents},
	}
}

// eventJSON is an event as the console prints it.
type eventJSON struct {
	ID         string     `json:"id"`
	Source     string     `json:"source"`
	Rule       string     `json:"rule"`
	Priority   string     `json:"priority"`
	Host       string     `json:"host"`        // the rr host; "" when unknown
	SourceHost string     `json:"source_host"` // as the source named it
	Time       time.Time  `json:"time"`
	Status     string     `json:"status"`
	StatusBy   string     `json:"status_by"`
	StatusNote string     `json:"status_note"`
	StatusTime *time.Time `json:"status_time"`
	Summary    string     `json:"summary"`
}

func eventView(e store.Event) eventJSON {
	v := eventJSON{ID: e.ID, Source: e.Source, Rule: e.Rule, Priority: events.Priority(e.Priority).String(), Host: e.Host,
		SourceHost: e.SourceHost, Time: e.Time.UTC(), Status: string(e.Status), StatusBy: e.StatusBy,
		StatusNote: e.StatusNote, Summary: e.Summary}
	if !e.StatusTime.IsZero() {
		t := e.StatusTime.UTC()
		v.StatusTime = &t
	}
	return v
}

// hostCell is the HOST column: the rr host, or the source's name of it.
func (v eventJSON) hostCell() string {
	if v.Host != "" {
		return v.Host
	}
	if v.SourceHost != "" {
		return "unknown (" + v.SourceHost + ")"
	}
	return "unknown"
}

// reach is the hosts whose events who may see: nil for an admin (all),
// else the hosts of the team they logged in under (none without one).
func (c *Console) reach(ctx context.Context, who Caller) ([]string, error) {
	if isAdmin(who) {
		return nil, nil
	}
	reach := []string{}
	if who.Team == "" {
		return reach, nil
	}
	teams, err := c.cfg.Store.Teams(ctx)
	if err != nil {
		return nil, err
	}
	var team *store.Team
	for i := range teams {
		if teams[i].Name == who.Team && teams[i].RapidResponse {
			team = &teams[i]
		}
	}
	if team == nil {
		return reach, nil
	}
	hosts, err := c.cfg.Store.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	at := auth.Team{Name: team.Name, RapidResponse: true, Hosts: team.Hosts}
	for _, h := range hosts {
		if auth.MayReach(at, auth.Host{Name: h.Name, Labels: h.Labels}) {
			reach = append(reach, h.Name)
		}
	}
	return reach, nil
}

func (c *Console) events(x *call) error {
	fs := x.flags()
	since := &timeFlag{now: c.cfg.Now}
	fs.Var(since, "since", "only events since")
	prio := fs.String("priority", "", "only `priority` and more severe")
	host := fs.String("host", "", "only events on `host`")
	status := fs.String("status", "", "only events in `status`")
	limit := fs.Int("limit", 100, "at most `n` events")
	if _, err := x.parse(fs, 0, 0); err != nil {
		return err
	}
	if err := checkLimit(*limit, maxEventsLimit); err != nil {
		return err
	}
	f := store.EventFilter{Since: since.t, MaxPriority: -1, Host: *host, Status: store.EventStatus(*status), Limit: *limit}
	if *prio != "" {
		p, ok := events.ParsePriority(*prio)
		if !ok {
			return fmt.Errorf("--priority %q: want one of %s", *prio, strings.Join(events.PriorityNames(), ", "))
		}
		f.MaxPriority = int(p)
	}
	switch f.Status {
	case "", store.EventOpen, store.EventResponding, store.EventAcknowledged, store.EventResolved:
	default:
		return fmt.Errorf("--status %q: want open, responding, acknowledged or resolved", *status)
	}
	reach, err := c.reach(x.ctx, x.who)
	if err != nil {
		return c.storeErr(err)
	}
	f.Hosts = reach
	es, err := c.cfg.Store.Events(x.ctx, f)
	if err != nil {
		return c.storeErr(err)
	}
	list := make([]eventJSON, 0, len(es))
	for _, e := range es {
		list = append(list, eventView(e))
	}
	if x.json {
		return writeJSON(x.out, list)
	}
	t := newTable(x.out, "ID", "TIME", "PRIORITY", "HOST", "STATUS", "SOURCE", "RULE")
	for _, v := range list {
		t.add(v.ID, stamp(v.Time), v.Priority, v.hostCell(), v.Status, v.Source, v.Rule)
	}
	return t.flush()
}

// visibleEvent returns event id if who may see it; one they may not see
// reads exactly like one that does not exist.
func (c *Console) visibleEvent(ctx context.Context, who Caller, id string) (store.Event, error) {
	if !events.ValidID(id) {
		return store.Event{}, fmt.Errorf("bad event id %q: want e- and hex digits (e-7f3a9c)", id)
	}
	e, err := c.cfg.Store.Event(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Event{}, fmt.Errorf("no event %q", id)
	}
	if err != nil {
		return store.Event{}, c.storeErr(err)
	}
	reach, err := c.reach(ctx, who)
	if err != nil {
		return store.Event{}, c.storeErr(err)
	}
	if reach != nil && (e.Host == "" || !contains(reach, e.Host)) {
		return store.Event{}, fmt.Errorf("no event %q", id)
	}
	return e, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *Console) eventShow(x *call) error {
	args, err := x.parse(x.flags(), 1, 1)
	if err != nil {
		return err
	}
	e, err := c.visibleEvent(x.ctx, x.who, args[0])
	if err != nil {
		return err
	}
	xs, err := c.cfg.Store.Sessions(x.ctx, store.SessionFilter{EventID: e.ID, Limit: 100})
	if err != nil {
		return c.storeErr(err)
	}
	var ids []string
	for _, s := range xs {
		if MaySee(x.who, s) {
			ids = append(ids, s.ID)
		}
	}
	respond := "none: the event's host is not one rr knows"
	if e.Host != "" && c.cfg.EventCommand != nil {
		respond = c.cfg.EventCommand(e.ID)
	}
	v := eventView(e)
	if x.json {
		return writeJSON(x.out, struct {
			eventJSON
			Respond  string   `json:"respond"`
			Sessions []string `json:"sessions"`
			Payload  string   `json:"payload"`
		}{v, respond, orEmpty(ids), string(e.Raw)})
	}
	tw := tabwriter.NewWriter(x.out, 0, 8, 2, ' ', 0)
	for _, f := range [][2]string{
		{"id", v.ID}, {"source", v.Source}, {"rule", v.Rule}, {"priority", v.Priority}, {"host", v.hostCell()},
		{"time", stamp(v.Time)}, {"summary", v.Summary}, {"status", v.Status}, {"by", v.StatusBy},
		{"note", v.StatusNote}, {"sessions", strings.Join(ids, " ")}, {"respond", respond},
		{"payload", string(e.Raw)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", f[0], cell(f[1]))
	}
	return tw.Flush()
}

func (c *Console) eventAck(x *call) error { return c.setEventStatus(x, store.EventAcknowledged) }

func (c *Console) eventResolve(x *call) error { return c.setEventStatus(x, store.EventResolved) }

func (c *Console) setEventStatus(x *call, status store.EventStatus) error {
	args, err := x.parse(x.flags(), 1, -1)
	if err != nil {
		return err
	}
	id, note := args[0], strings.Join(args[1:], " ")
	if len(note) > 1024 {
		return errors.New("note too long (max 1024 bytes)")
	}
	action := "event.ack"
	if status == store.EventResolved {
		action = "event.resolve"
	}
	e := store.AuditEvent{Action: action, Target: id, Outcome: "denied"}
	defer func() { c.audit(x.ctx, x.who, e) }()
	if _, err := c.visibleEvent(x.ctx, x.who, id); err != nil {
		e.Detail = err.Error()
		return err
	}
	err = c.cfg.Store.SetEventStatus(x.ctx, id, status, x.who.Person, note, c.cfg.Now())
	if errors.Is(err, store.ErrConflict) {
		e.Detail = "resolved already"
		return fmt.Errorf("event %s is resolved already", id)
	}
	if err != nil {
		e.Outcome, e.Detail = "failed", err.Error()
		return c.storeErr(err)
	}
	e.Outcome, e.Detail = "allowed", note
	return done(x, fmt.Sprintf("event %s %s", id, status))
}

func (c *Console) teamEvents(x *call) error {
	args, err := x.parse(x.flags(), 2, 2)
	if err != nil {
		return err
	}
	sub := args[1]
	if sub == "default" {
		sub = ""
	} else if !events.ValidSubscription(sub) {
		return fmt.Errorf("bad subscription %q: want off, default or a priority (%s)", sub, strings.Join(events.PriorityNames(), ", "))
	}
	x.detail = "events " + args[1]
	if err := c.storeErr(c.cfg.Store.SetEventSubscription(x.ctx, args[0], sub)); err != nil {
		return err
	}
	shown := sub
	if shown == "" {
		shown = events.DefaultSubscription + " (default)"
	}
	return done(x, fmt.Sprintf("team %s is mailed events of priority %s", args[0], shown))
}
