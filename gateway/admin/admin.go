package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/shlex"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/store"
)

// Caller is who runs the console: filled by the gateway from the login.
type Caller struct {
	Person string
	Role   string // auth.RoleAdmin, auth.RoleAdvanced
	Team   string // the Rapid Response team logged in under; "" for an admin in no such team
	Source string // client address, for the audit trail
	// Login is the connection's authentication: whether it gave the
	// second factor, which admin changes need (Config.SecondFactor).
	Login *auth.Login
}

// Store is the subset of a store backend (*sqlite.Store) the console uses.
type Store interface {
	Session(ctx context.Context, id string) (store.Session, error)
	Sessions(ctx context.Context, f store.SessionFilter) ([]store.Session, error)
	Audit(ctx context.Context, e store.AuditEvent) error
	AuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error)

	People(ctx context.Context) ([]store.Person, error)
	PersonByName(ctx context.Context, name string) (store.Person, error)
	CreatePerson(ctx context.Context, p store.Person) error
	UpdatePerson(ctx context.Context, p store.Person) error
	DeletePerson(ctx context.Context, name string) error
	PersonKeys(ctx context.Context, person string) ([]store.PersonKey, error)
	KeyCounts(ctx context.Context) (map[string]int, error)
	AddPersonKey(ctx context.Context, person, fingerprint, authorizedKey string) error
	RemovePersonKey(ctx context.Context, person, fingerprint string) error

	Teams(ctx context.Context) ([]store.Team, error)
	CreateTeam(ctx context.Context, name string, rapidResponse bool) error
	DeleteTeam(ctx context.Context, name string) error
	SetTeamRapidResponse(ctx context.Context, name string, on bool) error
	AddTeamMember(ctx context.Context, team, person string) error
	RemoveTeamMember(ctx context.Context, team, person string) error
	AddTeamHost(ctx context.Context, team, pattern string) error
	RemoveTeamHost(ctx context.Context, team, pattern string) error

	Events(ctx context.Context, f store.EventFilter) ([]store.Event, error)
	Event(ctx context.Context, id string) (store.Event, error)
	SetEventStatus(ctx context.Context, id string, status store.EventStatus, by, note string, at time.Time) error
	SetEventSubscription(ctx context.Context, team, sub string) error

	Hosts(ctx context.Context) ([]store.Host, error)
	// Presence says which gateways hold which hosts' tunnels (hosts);
	// Leases lists the gateways sharing the store (gateways).
	Presence(ctx context.Context, now time.Time) ([]store.Presence, error)
	Leases(ctx context.Context) ([]store.Lease, error)
	CreateHost(ctx context.Context, name string, labels []string) error
	UpsertHost(ctx context.Context, name string) error
	DeleteHost(ctx context.Context, name string) error
	SetHostLabels(ctx context.Context, host string, labels []string) error
	SetHostPassphrase(ctx context.Context, host, verifier string) error
	Host(ctx context.Context, name string) (store.Host, error)
	CreateEnrollToken(ctx context.Context, host string, tokenHash []byte, expires time.Time) error
	ReenrollHost(ctx context.Context, host string, tokenHash []byte, expires, now time.Time) (old string, err error)
}

// Config configures a Console. Store, Kill, Online, SecondFactor, Notify
// and DropAgents are required.
type Config struct {
	Store Store
	// Kill ends live session id on behalf of by, telling its person reason. It returns
	// after the session is finalized. ErrNotLive when the session is not live here.
	Kill func(ctx context.Context, id, by, reason string) error
	// Online reports whether host's agent is connected to this gateway
	// now (peers' tunnels are in Store.Presence).
	Online func(host string) bool
	// Live returns a live session's byte counters so far (in = person→host).
	// Optional: without it, live sessions show the counters the store has.
	Live func(id string) (in, out int64, ok bool)
	// DownloadCommand returns the command that fetches id's recording, e.g.
	// "scp -P 2222 rr@gw.example.com:recordings/ID.gz ." Optional.
	DownloadCommand func(id string) string
	// Declared reports whether a person, team or host (kind "person",
	// "team", "host") is declared in the gateway's configuration file,
	// which is applied at every start: the console refuses to change
	// those, as its change would be undone. Optional: nil declares none.
	Declared func(kind, name string) bool
	// SecondFactor makes sure who's connection has given the second
	// factor, asking on p if not (see Console.RunAs for where p asks).
	// Every change runs after it, and is refused if it fails: its error
	// is the short message the person sees.
	SecondFactor func(ctx context.Context, who Caller, p auth.Prompter) error
	// Notify tells the admins of a change that went through (a mail each).
	// It must not block: the console waits for it.
	Notify func(ctx context.Context, ch Change)
	// DropAgents closes host's live agent connections (host reenroll) and
	// says how many there were.
	DropAgents func(host string) int
	// TokenRule says whether host's agent may be enrolled with a token
	// (host token, host reenroll): the reason to audit with it, or the
	// refusal. Optional: nil refuses hosts Declared declares and allows
	// the rest.
	TokenRule func(host string) (reason string, err error)
	// EventCommand returns the command that opens a session from event
	// id, e.g. "ssh -t -p 2222 rr@gw.example.com event:e-7f3a9c". Optional.
	EventCommand func(id string) string
	// Evidence lets audit verify check the live trail and show report a
	// recording's manifest. Optional: without it, audit verify says the
	// gateway has no audit key.
	Evidence *Evidence
	// Watch follows live session id for who on t (the watch command)
	// until the watcher stops, the session ends or ctx ends; the gateway
	// checks that who may see it and asks its host's passphrase on t.
	// Its error is the line the person reads. Optional: nil, no watching.
	Watch func(ctx context.Context, who Caller, id string, t WatchTerminal) error
	// Watchers lists who watches live session id now (show). Optional.
	Watchers func(id string) []string
	Now      func() time.Time // default time.Now
	Logger   *slog.Logger     // default: discard
}

// ErrNotLive is Config.Kill's answer for a session that is not live here.
var ErrNotLive = errors.New("admin: session is not live")

// ErrEndedFirst is Config.Kill's answer when the session ended on its own
// (exit, client gone…) before the kill reached it.
var ErrEndedFirst = errors.New("admin: the session ended before the kill")

// GatewayGoneError is Config.Kill's answer for a session held by a peer
// gateway whose lease expired: it is gone, and the session will be marked
// interrupted by whichever peer notices first.
type GatewayGoneError struct{ Gateway string }

func (e *GatewayGoneError) Error() string {
	return fmt.Sprintf("the gateway holding it, %s, is gone (its lease expired)", e.Gateway)
}

// Console runs rr-admin commands. It is safe for concurrent use: it keeps
// no state between commands.
type Console struct {
	cfg    Config
	log    *slog.Logger
	cmds   []*command
	byName map[string]*command
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Console, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("admin: Config.Store is required"))
	}
	if cfg.Kill == nil {
		errs = append(errs, errors.New("admin: Config.Kill is required"))
	}
	if cfg.Online == nil {
		errs = append(errs, errors.New("admin: Config.Online is required"))
	}
	if cfg.SecondFactor == nil {
		errs = append(errs, errors.New("admin: Config.SecondFactor is required"))
	}
	if cfg.Notify == nil {
		errs = append(errs, errors.New("admin: Config.Notify is required"))
	}
	if cfg.DropAgents == nil {
		errs = append(errs, errors.New("admin: Config.DropAgents is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{cfg: cfg, log: cfg.Logger, cmds: commands(), byName: map[string]*command{}}
	for _, cmd := range c.cmds {
		c.byName[cmd.name] = cmd
	}
	return c, nil
}

// Downloadable reports whether x's recording may be downloaded: the
// session is over and its file was finalized (size and checksum taken).
// The console's show and the gateway's downloads both go by it.
func Downloadable(x store.Session) bool {
	return x.State != store.StateLive && x.Recording != "" && x.RecordingSHA256 != ""
}

// MaySee reports whether who may see session x: admins see every session,
// everyone else the sessions of the team they logged in under.
func MaySee(who Caller, x store.Session) bool {
	return isAdmin(who) || (who.Team != "" && x.Team == who.Team)
}

func isAdmin(who Caller) bool { return who.Role == auth.RoleAdmin }

// maxLine bounds a command line, in bytes.
const maxLine = 4096

var (
	errLineTooLong = fmt.Errorf("line too long (max %d bytes)", maxLine)
	errAdminsOnly  = errors.New("permission denied: admins only")
	errInternal    = errors.New("internal error; the gateway log has the details")
	// errQuit ends Run; Exec treats it as success.
	errQuit = errors.New("quit")
)

// Exec runs one command line for who, writing its output to out. The
// returned error is the one-line message shown to the person.
//
// Exec has no input to ask the second factor on: a change goes through
// only on a connection that gave it already.
func (c *Console) Exec(ctx context.Context, who Caller, line string, out io.Writer) error {
	if _, err := c.exec(ctx, who, line, out, term{ask: noPrompter{}}); err != nil && !errors.Is(err, errQuit) {
		return err
	}
	return nil
}

// exec runs one line and reports, beside the error, whether the command
// asked for JSON (so that its error is JSON too). t is where a change's
// second factor is asked, and the terminal a watch takes.
func (c *Console) exec(ctx context.Context, who Caller, line string, out io.Writer, t term) (asJSON bool, err error) {
	if err := checkLine(line); err != nil {
		return false, err
	}
	if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
		return false, nil
	}
	words, err := shlex.Split(line)
	if err != nil {
		return false, fmt.Errorf("bad quoting: %v", err)
	}
	if len(words) == 0 {
		return false, nil
	}
	asJSON = jsonRequested(words[1:])
	cmd, args, err := c.lookup(words)
	if err != nil {
		return asJSON, err
	}
	if cmd.admin && !isAdmin(who) {
		c.audit(ctx, who, store.AuditEvent{Action: cmd.action(), Outcome: "denied", Detail: "admins only"}) // no target: its words are unparsed, and a flag's may be a secret
		return asJSON, errAdminsOnly
	}
	if cmd.change {
		if err := c.secondFactor(ctx, who, cmd, t.ask); err != nil {
			return asJSON, err
		}
	}
	x := &call{ctx: ctx, who: who, out: out, cmd: cmd, args: args, declared: c.cfg.Declared, term: t}
	err = cmd.run(c, x)
	if errors.Is(err, flag.ErrHelp) {
		return false, c.helpFor(x, cmd)
	}
	if cmd.change {
		c.auditChange(x, err)
	}
	return asJSON || x.json, err
}

// lookup finds the command the first words name (the longest match) and
// returns it with the words that follow.
func (c *Console) lookup(words []string) (*command, []string, error) {
	for n := min(3, len(words)); n > 0; n-- {
		if cmd := c.byName[strings.Join(words[:n], " ")]; cmd != nil {
			return cmd, words[n:], nil
		}
	}
	name := strings.Join(words[:min(3, len(words))], " ")
	if c.isGroup(words[0]) {
		return nil, nil, fmt.Errorf("unknown command %q; type help %s", name, words[0])
	}
	return nil, nil, fmt.Errorf("unknown command %q; type help", name)
}

// isGroup reports whether word starts multi-word commands ("team", "host").
func (c *Console) isGroup(word string) bool {
	for _, cmd := range c.cmds {
		if strings.HasPrefix(cmd.name, word+" ") {
			return true
		}
	}
	return false
}

// audit appends e on behalf of who, stamped now, even if the person has
// gone (ctx cancelled). A failure to write is logged: the command's own
// outcome stands.
func (c *Console) audit(ctx context.Context, who Caller, e store.AuditEvent) {
	e.Time, e.Actor, e.Source = c.cfg.Now(), who.Person, who.Source
	if err := c.cfg.Store.Audit(context.WithoutCancel(ctx), e); err != nil {
		c.log.Error("admin: audit event lost", "action", e.Action, "target", e.Target, "outcome", e.Outcome, "err", err)
	}
}

// auditChange records an administrative change: allowed, or failed with
// the message the person saw.
func (c *Console) auditChange(x *call, err error) {
	e := store.AuditEvent{Action: x.cmd.action(), Target: x.target, Outcome: "allowed", Detail: x.detail}
	if err != nil {
		e.Outcome, e.Detail = "failed", err.Error()
	}
	c.audit(x.ctx, x.who, e)
	if err == nil {
		c.cfg.Notify(x.ctx, Change{Time: c.cfg.Now(), Actor: x.who.Person, Source: x.who.Source, Action: e.Action,
			Target: e.Target, Detail: e.Detail})
	}
}

// storeErr turns a store error into what the person sees: not-found and
// conflict errors say what (names only); anything else is logged and
// reported as internal.
func (c *Console) storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
		return errors.New(strings.TrimPrefix(err.Error(), "store: "))
	}
	c.log.Error("admin: store", "err", err)
	return errInternal
}
