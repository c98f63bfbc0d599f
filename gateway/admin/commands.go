package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rr-gateway/rr/evidence"
	"github.com/rr-gateway/rr/store"
)

// command is one console command.
type command struct {
	name    string // one to three words: "sessions", "team member add"
	args    string // what follows the name in its usage
	summary string // one line for help
	detail  string // more for "help NAME"; optional
	admin   bool   // admins only
	change  bool   // changes the store: audited as admin.<name>
	// edits is the kind of what the first argument names ("person",
	// "team", "host") when the command changes it: refused for what the
	// configuration file declares (Config.Declared).
	edits string
	run   func(c *Console, x *call) error
}

// usage is the command's synopsis.
func (cmd *command) usage() string {
	if cmd.args == "" {
		return cmd.name
	}
	return cmd.name + " " + cmd.args
}

// action names the command in the audit trail: "admin.team.member.add".
func (cmd *command) action() string { return "admin." + strings.ReplaceAll(cmd.name, " ", ".") }

// commands lists every command, in the order help shows them.
func commands() []*command {
	cmds := []*command{
		{name: "help", args: "[COMMAND]", summary: "list the commands you may run, or show one's usage", run: (*Console).help},
		{name: "whoami", summary: "show who you are logged in as: person, role, team", run: (*Console).whoami},
		{name: "sessions", args: "[--live] [--host H] [--user U] [--event ID] [--since S] [--limit N]",
			summary: "list live sessions, then recent closed ones",
			detail: "Shows the sessions of the team you logged in under (admins: every session), on\n" +
				"every gateway sharing this one's store; GATEWAY is the one holding each.\n" +
				"--since takes a duration ago (2h), RFC 3339 or YYYY-MM-DD; --limit defaults to 100,\n" +
				"at most 10000 (narrow with --since, --host or --user for older ones).",
			run: (*Console).sessions},
		{name: "show", args: "ID", summary: "show one session and where its recording is", run: (*Console).show},
		{name: "watch", args: "ID", summary: "follow a live session's terminal, read-only, until q or Ctrl-C",
			detail: "Starts with the screen as it stands (its recent output replayed), then follows it live.\n" +
				"Asks the passphrase of the session's host, as reading its recording would; its person\n" +
				"is told who watches. One step from a shell: ssh -t rr@GATEWAY watch:ID",
			run: (*Console).watch},
		{name: "kill", args: "ID [REASON...]", summary: "close a live session; its person sees who closed it and why",
			detail: "A session another gateway holds is closed by that gateway; kill answers once it is\n" +
				"finalized there (or says that gateway is gone).",
			run: (*Console).kill},
		{name: "audit", args: "[--since S] [--until S] [--actor A] [--action X] [--session ID] [--limit N]",
			summary: "show the audit trail, oldest first", admin: true,
			detail: "--action matches exactly, or as a prefix when it ends with '.' or '*' (session., auth.*).\n" +
				"--limit defaults to 1000, at most 100000 (narrow with --since and --until).\n" +
				"With --json, prints JSON Lines (one object per event\n" +
				"and line, for SIEMs) instead of one document, each with its seq, prev and\n" +
				"hash in the chain, then the signed checkpoints as {\"checkpoint\": …} lines:\n" +
				"what rr verify-audit checks.",
			run: (*Console).auditTrail},
		{name: "audit verify", summary: "check the audit trail's hash chain and signed checkpoints", admin: true,
			detail: "Walks every event in the store, checks each one's hash and link to the one\n" +
				"before, and each checkpoint's signature and head; says where the chain first\n" +
				"breaks. Offline, from an export: audit --json | rr verify-audit -key KEY",
			run: (*Console).auditVerify},
		{name: "users", summary: "list people: email, role, keys, teams, whether a password or TOTP is set",
			admin: true, run: (*Console).users},
		{name: "user add", args: "NAME --email E --role R [--password-hash H]", summary: "add a person",
			detail: passwordHelp, admin: true, change: true, edits: "person", run: (*Console).userAdd},
		{name: "user set", args: "NAME [--email E] [--role R] [--password-hash H] [--clear-password]",
			summary: "change a person's email, role or password", detail: passwordHelp, admin: true, change: true,
			edits: "person", run: (*Console).userSet},
		{name: "user remove", args: "NAME", summary: "remove a person with their keys and memberships",
			admin: true, change: true, edits: "person", run: (*Console).userRemove},
		{name: "keys", args: "NAME", summary: "list a person's public keys", admin: true, run: (*Console).keys},
		{name: "key add", args: "NAME AUTHORIZED_KEY...", summary: "register a public key (an authorized_keys line) to a person",
			detail: "Put -- before a key line whose comment starts with '-'.",
			admin:  true, change: true, edits: "person", run: (*Console).keyAdd},
		{name: "key remove", args: "NAME FINGERPRINT", summary: "remove a person's key (SHA256:… fingerprint)",
			admin: true, change: true, edits: "person", run: (*Console).keyRemove},
		{name: "teams", summary: "list teams: Rapid Response, members, hosts", admin: true, run: (*Console).teams},
		{name: "team add", args: "NAME [--rapid-response]", summary: "add a team", admin: true, change: true,
			edits: "team", run: (*Console).teamAdd},
		{name: "team remove", args: "NAME", summary: "remove a team", admin: true, change: true, edits: "team", run: (*Console).teamRemove},
		{name: "team rapid-response", args: "NAME on|off", summary: "switch a team's Rapid Response on or off",
			admin: true, change: true, edits: "team", run: (*Console).teamRapidResponse},
		{name: "team member add", args: "TEAM PERSON", summary: "put a person in a team", admin: true, change: true,
			edits: "team", run: (*Console).teamMemberAdd},
		{name: "team member remove", args: "TEAM PERSON", summary: "take a person out of a team", admin: true,
			change: true, edits: "team", run: (*Console).teamMemberRemove},
		{name: "team host add", args: "TEAM PATTERN", summary: "let a team reach hosts: a name, label:K=V or *",
			admin: true, change: true, edits: "team", run: (*Console).teamHostAdd},
		{name: "team host remove", args: "TEAM PATTERN", summary: "remove a host pattern from a team", admin: true,
			change: true, edits: "team", run: (*Console).teamHostRemove},
		{name: "hosts", summary: "list hosts: online, last seen, gateways holding it, enrolled, labels, passphrase set", admin: true,
			run: (*Console).hosts},
		{name: "gateways", summary: "list the gateways sharing this store: advertise address, lease, alive",
			admin: true, run: (*Console).gateways},
		{name: "host add", args: "NAME [--label K=V]...", summary: "add a host", admin: true, change: true,
			edits: "host", run: (*Console).hostAdd},
		{name: "host remove", args: "NAME", summary: "remove a host and its enrollment tokens (its sessions stay)",
			admin: true, change: true, edits: "host", run: (*Console).hostRemove},
		{name: "host labels", args: "NAME [K=V...]", summary: "replace a host's labels (none: clear them)",
			admin: true, change: true, edits: "host", run: (*Console).hostLabels},
		{name: "host passphrase", args: "NAME VERIFIER", summary: "set a host's passphrase verifier (an argon2id hash)",
			detail: "The console never takes a passphrase: make the verifier with: rr-gateway passphrase-hash",
			admin:  true, change: true, edits: "host", run: (*Console).hostPassphrase},
		{name: "host token", args: "NAME [--ttl 24h]", summary: "make a one-time enrollment token for a host's agent",
			detail: "The token is shown once; the gateway keeps only its SHA-256. The agent's first\n" +
				"connection with it binds the agent's key to the host. A host whose agent is\n" +
				"enrolled takes no token: replacing its agent is host reenroll.",
			admin: true, change: true, run: (*Console).hostToken},
		{name: "host reenroll", args: "NAME [--ttl 24h]", summary: "replace a host's agent: unbind its key, drop it, print a new token",
			detail: "The bound key stops working at once and the host's live agent connections are\n" +
				"closed (their sessions end); the new agent enrolls with the one-time token printed.",
			admin: true, change: true, run: (*Console).hostReenroll},
	}
	cmds = append(cmds, eventCommands()...)
	return append(cmds, []*command{
		{name: "quit", summary: "end the console (also: exit, Ctrl-D)", run: quit},
		{name: "exit", summary: "end the console", run: quit},
	}...)
}

const passwordHelp = "Passwords are given only as hashes (argon2id, or bcrypt $2a$/$2b$/$2y$): the console\n" +
	"never sees a plaintext secret. Make one with: rr-gateway passphrase-hash"

func quit(_ *Console, x *call) error {
	if _, err := x.parse(x.flags(), 0, 0); err != nil {
		return err
	}
	return errQuit
}

// mayRun reports whether who may run cmd.
func mayRun(who Caller, cmd *command) bool { return !cmd.admin || isAdmin(who) }

func (c *Console) help(x *call) error {
	args, err := x.parse(x.flags(), 0, 3)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return c.listHelp(x, "")
	}
	name := strings.Join(args, " ")
	if cmd := c.byName[name]; cmd != nil && mayRun(x.who, cmd) {
		return c.helpFor(x, cmd)
	}
	if c.isGroup(name) {
		return c.listHelp(x, name+" ")
	}
	return fmt.Errorf("unknown command %q; type help", name)
}

type helpJSON struct {
	Command string `json:"command"`
	Usage   string `json:"usage"`
	Summary string `json:"summary"`
	Detail  string `json:"detail,omitempty"`
}

// listHelp lists the commands who may run whose names start with prefix.
func (c *Console) listHelp(x *call, prefix string) error {
	var list []helpJSON
	for _, cmd := range c.cmds {
		if mayRun(x.who, cmd) && strings.HasPrefix(cmd.name, prefix) {
			list = append(list, helpJSON{Command: cmd.name, Usage: cmd.usage(), Summary: cmd.summary})
		}
	}
	if x.json {
		return writeJSON(x.out, list)
	}
	fmt.Fprintln(x.out, "Commands (flags may come anywhere after the name; every command takes --json):")
	tw := tabwriter.NewWriter(x.out, 0, 8, 2, ' ', 0)
	for _, h := range list {
		fmt.Fprintf(tw, "  %s\t%s\n", h.Usage, h.Summary)
	}
	return tw.Flush()
}

// helpFor shows one command's usage.
func (c *Console) helpFor(x *call, cmd *command) error {
	if x.json {
		return writeJSON(x.out, helpJSON{Command: cmd.name, Usage: cmd.usage(), Summary: cmd.summary, Detail: cmd.detail})
	}
	fmt.Fprintf(x.out, "usage: %s [--json]\n%s\n", cmd.usage(), cmd.summary)
	if cmd.detail != "" {
		fmt.Fprintln(x.out, cmd.detail)
	}
	return nil
}

func (c *Console) whoami(x *call) error {
	if _, err := x.parse(x.flags(), 0, 0); err != nil {
		return err
	}
	if x.json {
		return writeJSON(x.out, struct {
			Person string `json:"person"`
			Role   string `json:"role"`
			Team   string `json:"team"`
		}{x.who.Person, x.who.Role, x.who.Team})
	}
	t := newTable(x.out, "PERSON", "ROLE", "TEAM")
	t.add(x.who.Person, x.who.Role, x.who.Team)
	return t.flush()
}

// sessionJSON is a session as the console prints it.
type sessionJSON struct {
	ID              string     `json:"id"`
	State           string     `json:"state"`
	Person          string     `json:"person"`
	Team            string     `json:"team"`
	Host            string     `json:"host"`
	Command         string     `json:"command"`
	PTY             bool       `json:"pty"`
	Source          string     `json:"source"`
	Started         time.Time  `json:"started"`
	Ended           *time.Time `json:"ended"`
	DurationSeconds float64    `json:"duration_seconds"`
	BytesIn         int64      `json:"bytes_in"`
	BytesOut        int64      `json:"bytes_out"`
	ExitStatus      *int       `json:"exit_status"`
	EndReason       string     `json:"end_reason"`
	KilledBy        string     `json:"killed_by"`
	Event           string     `json:"event"`
	EventRule       string     `json:"event_rule"`
	Gateway         string     `json:"gateway"`
	GatewayAddress  string     `json:"gateway_advertise"`
}

// view is x as shown now: live counters from the gateway, duration so far.
func (c *Console) view(x store.Session) sessionJSON {
	v := sessionJSON{ID: x.ID, State: string(x.State), Person: x.Person, Team: x.Team, Host: x.Host,
		Command: x.Command, PTY: x.PTY, Source: x.Source, Started: x.Started, BytesIn: x.BytesIn,
		BytesOut: x.BytesOut, ExitStatus: x.ExitStatus, EndReason: x.EndReason, KilledBy: x.KilledBy,
		Event: x.EventID, EventRule: x.EventRule, Gateway: x.Gateway, GatewayAddress: x.GatewayAdvertise}
	end := c.cfg.Now()
	if x.State == store.StateLive {
		if c.cfg.Live != nil {
			if in, out, ok := c.cfg.Live(x.ID); ok {
				v.BytesIn, v.BytesOut = in, out
			}
		}
	} else {
		end = x.Ended
		v.Ended = &end
	}
	v.DurationSeconds = max(0, end.Sub(x.Started)).Round(time.Second).Seconds()
	return v
}

// exit is the EXIT column: the exit status, or how the session ended.
func (v sessionJSON) exit() string {
	switch {
	case v.State == string(store.StateLive):
		return "-"
	case v.ExitStatus != nil:
		return strconv.Itoa(*v.ExitStatus)
	case v.KilledBy != "":
		return "killed by " + v.KilledBy
	case v.EndReason != "":
		return v.EndReason
	}
	return v.State
}

func (v sessionJSON) duration() string {
	return (time.Duration(v.DurationSeconds) * time.Second).String()
}

func (c *Console) sessions(x *call) error {
	fs := x.flags()
	live := fs.Bool("live", false, "only live sessions")
	host := fs.String("host", "", "only sessions on `host`")
	user := fs.String("user", "", "only sessions of `person`")
	event := fs.String("event", "", "only sessions opened from event `id`")
	since := &timeFlag{now: c.cfg.Now}
	fs.Var(since, "since", "only sessions started since")
	limit := fs.Int("limit", 100, "at most `n` sessions")
	if _, err := x.parse(fs, 0, 0); err != nil {
		return err
	}
	if err := checkLimit(*limit, maxSessionsLimit); err != nil {
		return err
	}
	var list []sessionJSON
	if isAdmin(x.who) || x.who.Team != "" {
		f := store.SessionFilter{LiveOnly: *live, Host: *host, Person: *user, EventID: *event, Since: since.t, Limit: *limit}
		if !isAdmin(x.who) {
			f.Team = x.who.Team
		}
		xs, err := c.cfg.Store.Sessions(x.ctx, f)
		if err != nil {
			return c.storeErr(err)
		}
		for _, s := range xs {
			if MaySee(x.who, s) {
				list = append(list, c.view(s))
			}
		}
	}
	if x.json {
		return writeJSON(x.out, orEmpty(list))
	}
	t := newTable(x.out, "ID", "STATE", "INITIATOR", "TEAM", "HOST", "GATEWAY", "STARTED", "DURATION", "IN", "OUT", "EXIT")
	for _, v := range list {
		t.add(v.ID, v.State, v.Person, v.Team, v.Host, orDash(v.Gateway), stamp(v.Started), v.duration(),
			strconv.FormatInt(v.BytesIn, 10), strconv.FormatInt(v.BytesOut, 10), v.exit())
	}
	return t.flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// where says which gateway holds (or held) a session, and where peers and
// people reach it directly.
func (v sessionJSON) where() string {
	if v.Gateway == "" || v.GatewayAddress == "" {
		return orDash(v.Gateway)
	}
	return v.Gateway + " (" + v.GatewayAddress + ")"
}

// orEmpty makes a nil list encode as [] rather than null.
func orEmpty[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

// visibleSession returns session id if who may see it; one they may not
// see reads exactly like one that does not exist.
func (c *Console) visibleSession(ctx context.Context, who Caller, id string) (store.Session, error) {
	s, err := c.cfg.Store.Session(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !MaySee(who, s)) {
		return store.Session{}, fmt.Errorf("no session %q", id)
	}
	if err != nil {
		return store.Session{}, c.storeErr(err)
	}
	return s, nil
}

type recordingJSON struct {
	Location string `json:"location"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	Download string `json:"download"`
	Manifest string `json:"manifest"`
}

func (c *Console) show(x *call) error {
	args, err := x.parse(x.flags(), 1, 1)
	if err != nil {
		return err
	}
	s, err := c.visibleSession(x.ctx, x.who, args[0])
	if err != nil {
		return err
	}
	v := c.view(s)
	rec := recordingJSON{Location: s.Recording, Size: s.RecordingSize, SHA256: s.RecordingSHA256}
	switch {
	case s.State == store.StateLive:
		rec.Download = "available once the session is closed"
	case !Downloadable(s) && s.Gateway != "" && strings.HasPrefix(s.EndReason, store.EndReasonGatewayLost):
		rec.Download = fmt.Sprintf("not yet: the recording is in %s's spool; %s seals and uploads it when it restarts", s.Gateway, s.Gateway)
	case !Downloadable(s):
		rec.Download = "not available: the recording was not finalized"
	case c.cfg.DownloadCommand != nil:
		rec.Download = c.cfg.DownloadCommand(s.ID)
	}
	rec.Manifest = c.manifestState(x.ctx, s)
	var watchers []string
	if s.State == store.StateLive && c.cfg.Watchers != nil {
		watchers = c.cfg.Watchers(s.ID)
	}
	if x.json {
		return writeJSON(x.out, struct {
			sessionJSON
			Watchers  []string      `json:"watchers"`
			Recording recordingJSON `json:"recording"`
		}{v, orEmpty(watchers), rec})
	}
	ended, exit := "-", v.exit()
	if v.Ended != nil {
		ended = stamp(*v.Ended)
	}
	if v.ExitStatus == nil {
		exit = "-"
	}
	command := s.Command
	if command == "" {
		command = "(shell)"
	}
	tw := tabwriter.NewWriter(x.out, 0, 8, 2, ' ', 0)
	for _, f := range [][2]string{
		{"id", v.ID}, {"state", v.State}, {"person", v.Person}, {"team", v.Team}, {"host", v.Host},
		{"gateway", v.where()}, {"command", command}, {"pty", yesNo(v.PTY)}, {"source", v.Source},
		{"started", stamp(v.Started)}, {"ended", ended}, {"duration", v.duration()},
		{"bytes in", strconv.FormatInt(v.BytesIn, 10)}, {"bytes out", strconv.FormatInt(v.BytesOut, 10)},
		{"exit status", exit}, {"end reason", v.EndReason}, {"killed by", v.KilledBy},
		{"event", strings.TrimSpace(v.Event + " " + v.EventRule)},
		{"watchers", strings.Join(watchers, ", ")},
		{"recording", rec.Location}, {"size", strconv.FormatInt(rec.Size, 10)}, {"sha256", rec.SHA256},
		{"download", rec.Download}, {"manifest", rec.Manifest},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", f[0], cell(f[1]))
	}
	return tw.Flush()
}

func (c *Console) kill(x *call) error {
	args, err := x.parse(x.flags(), 1, -1)
	if err != nil {
		return err
	}
	id, reason := args[0], strings.Join(args[1:], " ")
	e := store.AuditEvent{Action: "session.kill", Target: id, SessionID: id, Outcome: "denied"}
	defer func() { c.audit(x.ctx, x.who, e) }()
	s, err := c.visibleSession(x.ctx, x.who, id)
	if err != nil {
		e.Detail = err.Error()
		return err
	}
	if s.State != store.StateLive {
		err := fmt.Errorf("session %s is not live (state %s)", id, s.State)
		e.Detail = err.Error()
		return err
	}
	err = c.cfg.Kill(x.ctx, id, x.who.Person, reason)
	switch {
	case errors.Is(err, ErrNotLive):
		e.Outcome, e.Detail = "failed", "not live on this gateway"
		return fmt.Errorf("session %s is not live on this gateway", id)
	case errors.As(err, new(*GatewayGoneError)):
		e.Outcome, e.Detail = "failed", err.Error()
		return fmt.Errorf("session %s: %w; a peer marks it interrupted within the lease", id, err)
	case errors.Is(err, ErrEndedFirst):
		e.Outcome, e.Detail = "failed", "ended before the kill"
		return fmt.Errorf("session %s ended before this kill reached it (show %s says how)", id, id)
	case errors.Is(err, context.DeadlineExceeded):
		e.Outcome, e.Detail = "failed", err.Error()
		return fmt.Errorf("session %s was told to close but is not finalized yet", id)
	case err != nil:
		e.Outcome, e.Detail = "failed", err.Error()
		c.log.Error("admin: kill", "session", id, "by", x.who.Person, "err", err)
		return errInternal
	}
	e.Outcome, e.Detail = "allowed", reason
	return done(x, fmt.Sprintf("killed session %s (host %s, person %s)", id, s.Host, s.Person))
}

func (c *Console) auditTrail(x *call) error {
	fs := x.flags()
	since, until := &timeFlag{now: c.cfg.Now}, &timeFlag{now: c.cfg.Now}
	fs.Var(since, "since", "events at or after")
	fs.Var(until, "until", "events before")
	var f store.AuditFilter
	fs.StringVar(&f.Actor, "actor", "", "only events by `person`")
	fs.StringVar(&f.Action, "action", "", "only `action` (a prefix when it ends with . or *)")
	fs.StringVar(&f.SessionID, "session", "", "only events of session `id`")
	fs.IntVar(&f.Limit, "limit", 1000, "at most `n` events")
	if _, err := x.parse(fs, 0, 0); err != nil {
		return err
	}
	if err := checkLimit(f.Limit, maxAuditLimit); err != nil {
		return err
	}
	f.Since, f.Until = since.t, until.t
	evs, err := c.cfg.Store.AuditEvents(x.ctx, f)
	if err != nil {
		return c.storeErr(err)
	}
	if x.json {
		// In chain order, which rr verify-audit streams (clocks may
		// disagree with it by a little).
		slices.SortStableFunc(evs, func(a, b store.AuditEvent) int { return cmp.Compare(a.Seq, b.Seq) })
		for _, e := range evs {
			if err := writeJSON(x.out, evidence.ToJSON(e)); err != nil {
				return err
			}
		}
		return c.exportCheckpoints(x, evs, f.Until.IsZero() && f.Actor == "" && f.Action == "" && f.Target == "" && f.SessionID == "")
	}
	t := newTable(x.out, "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "SESSION", "SOURCE", "DETAIL")
	for _, e := range evs {
		t.add(stamp(e.Time), e.Actor, e.Action, e.Target, e.Outcome, e.SessionID, e.Source, e.Detail)
	}
	return t.flush()
}
