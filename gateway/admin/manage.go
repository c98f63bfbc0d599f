package admin

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/store"
)

// serviceLogin is the gateway's service login (gateway.ServiceLogin): no
// person may take its name.
const serviceLogin = auth.ServiceLogin

type userJSON struct {
	Name     string   `json:"name"`
	Email    string   `json:"email"`
	Role     string   `json:"role"`
	Keys     int      `json:"keys"`
	Teams    []string `json:"teams"`
	Password bool     `json:"password"`
	TOTP     bool     `json:"totp"`
}

func (c *Console) users(x *call) error {
	if _, err := x.parse(x.flags(), 0, 0); err != nil {
		return err
	}
	people, err := c.cfg.Store.People(x.ctx)
	if err != nil {
		return c.storeErr(err)
	}
	teams, err := c.cfg.Store.Teams(x.ctx)
	if err != nil {
		return c.storeErr(err)
	}
	keys, err := c.cfg.Store.KeyCounts(x.ctx)
	if err != nil {
		return c.storeErr(err)
	}
	teamsOf := map[string][]string{}
	for _, t := range teams {
		for _, m := range t.Members {
			teamsOf[m] = append(teamsOf[m], t.Name)
		}
	}
	list := []userJSON{}
	for _, p := range people {
		list = append(list, userJSON{Name: p.Name, Email: p.Email, Role: p.Role, Keys: keys[p.Name],
			Teams: orEmpty(teamsOf[p.Name]), Password: p.PasswordHash != "", TOTP: p.TOTPSecret != ""})
	}
	if x.json {
		return writeJSON(x.out, list)
	}
	t := newTable(x.out, "NAME", "EMAIL", "ROLE", "KEYS", "TEAMS", "PASSWORD", "TOTP")
	for _, u := range list {
		t.add(u.Name, u.Email, u.Role, strconv.Itoa(u.Keys), strings.Join(u.Teams, ","), yesNo(u.Password), yesNo(u.TOTP))
	}
	return t.flush()
}

// personFlags defines the flags that set a person's fields.
type personFlags struct {
	email, role, passwordHash string
	clearPassword             bool
}

func (f *personFlags) define(fs *flag.FlagSet, withClear bool) {
	fs.StringVar(&f.email, "email", "", "`address` the login codes go to")
	fs.StringVar(&f.role, "role", "", "admin, advanced or standard")
	fs.StringVar(&f.passwordHash, "password-hash", "", "password `hash` (argon2id or bcrypt)")
	if withClear {
		fs.BoolVar(&f.clearPassword, "clear-password", false, "remove the password (key-only login)")
	}
}

// apply checks the flags set in fs and copies them onto p, returning what
// changed (for the audit trail, never a hash).
func (f *personFlags) apply(fs *flag.FlagSet, p *store.Person) ([]string, error) {
	var changed []string
	var err error
	fs.Visit(func(fl *flag.Flag) {
		if err != nil {
			return
		}
		switch fl.Name {
		case "email":
			if !strings.Contains(f.email, "@") {
				err = fmt.Errorf("bad email %q", f.email)
			}
			p.Email = f.email
			changed = append(changed, "email "+f.email)
		case "role":
			if !auth.ValidRole(f.role) {
				err = fmt.Errorf("bad role %q: want admin, advanced or standard", f.role)
			}
			p.Role = f.role
			changed = append(changed, "role "+f.role)
		case "password-hash":
			err = checkVerifier(f.passwordHash)
			p.PasswordHash = f.passwordHash
			changed = append(changed, "password set")
		case "clear-password":
			p.PasswordHash = ""
			changed = append(changed, "password cleared")
		}
	})
	if err == nil && f.passwordHash != "" && f.clearPassword {
		err = errors.New("--password-hash and --clear-password do not go together")
	}
	return changed, err
}

func checkPersonName(name string) error {
	if err := checkName("person", name); err != nil {
		return err
	}
	if name == serviceLogin {
		return fmt.Errorf("%q is the gateway's service login, not a person's name", name)
	}
	return nil
}

func (c *Console) userAdd(x *call) error {
	fs := x.flags()
	var f personFlags
	f.define(fs, false)
	args, err := x.parse(fs, 1, 1)
	if err != nil {
		return err
	}
	if f.email == "" || f.role == "" {
		return fmt.Errorf("--email and --role are required; usage: %s", x.cmd.usage())
	}
	if err := checkPersonName(args[0]); err != nil {
		return err
	}
	p := store.Person{Name: args[0]}
	changed, err := f.apply(fs, &p)
	if err != nil {
		return err
	}
	if err := c.cfg.Store.CreatePerson(x.ctx, p); err != nil {
		return c.storeErr(err)
	}
	x.detail = strings.Join(changed, ", ")
	return done(x, "added person "+p.Name)
}

func (c *Console) userSet(x *call) error {
	fs := x.flags()
	var f personFlags
	f.define(fs, true)
	args, err := x.parse(fs, 1, 1)
	if err != nil {
		return err
	}
	p, err := c.cfg.Store.PersonByName(x.ctx, args[0])
	if err != nil {
		return c.storeErr(err)
	}
	wasAdmin := p.Role == auth.RoleAdmin
	changed, err := f.apply(fs, &p)
	if err != nil {
		return err
	}
	if len(changed) == 0 {
		return fmt.Errorf("nothing to change; usage: %s", x.cmd.usage())
	}
	if p.Name == x.who.Person && wasAdmin && p.Role != auth.RoleAdmin {
		return errors.New("you cannot give up your own admin role (another admin can)") // as with removing yourself: never lock the last admin out
	}
	if err := c.cfg.Store.UpdatePerson(x.ctx, p); err != nil {
		return c.storeErr(err)
	}
	x.detail = strings.Join(changed, ", ")
	return done(x, "updated person "+p.Name+": "+x.detail)
}

func (c *Console) userRemove(x *call) error {
	args, err := x.parse(x.flags(), 1, 1)
	if err != nil {
		return err
	}
	if args[0] == x.who.Person {
		return errors.New("you cannot remove yourself")
	}
	if err := c.cfg.Store.DeletePerson(x.ctx, args[0]); err != nil {
		return c.storeErr(err)
	}
	return done(x, "removed person "+args[0])
}

type keyJSON struct {
	Fingerprint   string `json:"fingerprint"`
	Type          string `json:"type"`
	AuthorizedKey string `json:"authorized_key"`
}

func (c *Console) keys(x *call) error {
	args, err := x.parse(x.flags(), 1, 1)
	if err != nil {
		return err
	}
	if _, err := c.cfg.Store.PersonByName(x.ctx, args[0]); err != nil {
		return c.storeErr(err)
	}
	keys, err := c.cfg.Store.PersonKeys(x.ctx, args[0])
	if err != nil {
		return c.storeErr(err)
	}
	list := []keyJSON{}
	for _, k := range keys {
		typ, _, _ := strings.Cut(k.AuthorizedKey, " ")
		list = append(list, keyJSON{Fingerprint: k.Fingerprint, Type: typ, AuthorizedKey: k.AuthorizedKey})
	}
	if x.json {
		return writeJSON(x.out, list)
	}
	t := newTable(x.out, "FINGERPRINT", "TYPE")
	for _, k := range list {
		t.add(k.Fingerprint, k.Type)
	}
	return t.flush()
}

func (c *Console) keyAdd(x *call) error {
	args, err := x.parse(x.flags(), 2, -1)
	if err != nil {
		return err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.Join(args[1:], " ")))
	if err != nil {
		return errors.New("not an authorized_keys line (want: TYPE BASE64 [COMMENT])")
	}
	fp := ssh.FingerprintSHA256(pub)
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	if err := c.cfg.Store.AddPersonKey(x.ctx, args[0], fp, line); err != nil {
		return c.storeErr(err)
	}
	x.detail = fp
	return done(x, fmt.Sprintf("added key %s to %s", fp, args[0]))
}

func (c *Console) keyRemove(x *call) error {
	args, err := x.parse(x.flags(), 2, 2)
	if err != nil {
		return err
	}
	if err := c.cfg.Store.RemovePersonKey(x.ctx, args[0], args[1]); err != nil {
		return c.storeErr(err)
	}
	x.detail = args[1]
	return done(x, fmt.Sprintf("removed key %s from %s", args[1], args[0]))
}

type teamJSON struct {
	Name          string   `json:"name"`
	RapidResponse bool     `json:"rapid_response"`
	Members       []string `json:"members"`
	Hosts         []string `json:"hosts"`
}

func (c *Console) teams(x *call) error {
	if _, err := x.parse(x.flags(), 0, 0); err != nil {
		return err
	}
	teams, err := c.cfg.Store.Teams(x.ctx)
	if err != nil {
		return c.storeErr(err)
	}
	list := []teamJSON{}
	for _, t := range teams {
		list = append(list, teamJSON{Name: t.Name, RapidResponse: t.RapidResponse,
			Members: orEmpty(t.Members), Hosts: orEmpty(t.Hosts)})
	}
	if x.json {
		return writeJSON(x.out, list)
	}
	t := newTable(x.out, "NAME", "RAPID-RESPONSE", "MEMBERS", "HOSTS")
	for _, v := range list {
		t.add(v.Name, yesNo(v.RapidResponse), strings.Join(v.Members, ","), strings.Join(v.Hosts, ","))
	}
	return t.flush()
}

func (c *Console) teamAdd(x *call) error {
	fs := x.flags()
	rr := fs.Bool("rapid-response", false, "members may open sessions and see the team's")
	args, err := x.parse(fs, 1, 1)
	if err != nil {
		return err
	}
	if err := checkName("team", args[0]); err != nil {
		return err
	}
	if err := c.cfg.Store.CreateTeam(x.ctx, args[0], *rr); err != nil {
		return c.storeErr(err)
	}
	x.detail = "rapid response " + onOff(*rr)
	return done(x, "added team "+args[0])
}

func (c *Console) teamRemove(x *call) error {
	args, err := x.parse(x.flags(), 1, 1)
	if err != nil {
		return err
	}
	if err := c.cfg.Store.DeleteTeam(x.ctx, args[0]); err != nil {
		return c.storeErr(err)
	}
	return done(x, "removed team "+args[0])
}

func (c *Console) teamRapidResponse(x *call) error {
	args, err := x.parse(x.flags(), 2, 2)
	if err != nil {
		return err
	}
	if args[1] != "on" && args[1] != "off" {
		return fmt.Errorf("usage: %s", x.cmd.usage())
	}
	if err := c.cfg.Store.SetTeamRapidResponse(x.ctx, args[0], args[1] == "on"); err != nil {
		return c.storeErr(err)
	}
	x.detail = args[1]
	return done(x, fmt.Sprintf("team %s: rapid response %s", args[0], args[1]))
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// teamPair parses TEAM and a second argument, and sets the audit detail.
func teamPair(x *call) (team, arg string, err error) {
	args, err := x.parse(x.flags(), 2, 2)
	if err != nil {
		return "", "", err
	}
	x.detail = args[1]
	return args[0], args[1], nil
}

func (c *Console) teamMemberAdd(x *call) error {
	team, person, err := teamPair(x)
	if err != nil {
		return err
	}
	if err := c.cfg.Store.AddTeamMember(x.ctx, team, person); err != nil {
		return c.storeErr(err)
	}
	return done(x, fmt.Sprintf("added %s to team %s", person, team))
}

func (c *Console) teamMemberRemove(x *call) error {
	team, person, err := teamPair(x)
	if err != nil {
		return err
	}
	if err := c.cfg.Store.RemoveTeamMember(x.ctx, team, person); err != nil {
		return c.storeErr(err)
	}
	return done(x, fmt.Sprintf("removed %s from team %s", person, team))
}

func (c *Console) teamHostAdd(x *call) error {
	team, pattern, err := teamPair(x)
	if err != nil {
		return err
	}
	if err := checkPattern(pattern); err != nil {
		return err
	}
	if err := c.cfg.Store.AddTeamHost(x.ctx, team, pattern); err != nil {
		return c.storeErr(err)
	}
	return done(x, fmt.Sprintf("team %s now reaches %s", team, pattern))
}

func (c *Console) teamHostRemove(x *call) error {
	team, pattern, err := teamPair(x)
	if err != nil {
		return err
	}
	if err := c.cfg.Store.RemoveTeamHost(x.ctx, team, pattern); err != nil {
		return c.storeErr(err)
	}
	return done(x, fmt.Sprintf("team %s no longer reaches %s", team, pattern))
}

type hostJSON struct {
	Name       string     `json:"name"`
	Online     bool       `json:"online"`
	Gateways   []seenBy   `json:"gateways"`
	LastSeen   *time.Time `json:"last_seen"`
	Enrolled   bool       `json:"enrolled"`
	Labels     []string   `json:"labels"`
	Passphrase bool       `json:"passphrase"`
}

// seenBy is one gateway holding a host's tunnel, as last renewed.
type seenBy struct {
	Gateway  string    `json:"gateway"`
	LastSeen time.Time `json:"last_seen"`
}

func (c *Console) hosts(x *call) error {
	if _, err := x.parse(x.flags(), 0, 0); err != nil {
		return err
	}
	hosts, err := c.cfg.Store.Hosts(x.ctx)
	if err != nil {
		return c.storeErr(err)
	}
	presence, err := c.cfg.Store.Presence(x.ctx, c.cfg.Now())
	if err != nil {
		return c.storeErr(err)
	}
	by := map[string][]seenBy{}
	for _, p := range presence {
		by[p.Host] = append(by[p.Host], seenBy{Gateway: p.Gateway, LastSeen: p.LastSeen})
	}
	list := []hostJSON{}
	for _, h := range hosts {
		// Online if any gateway holds its tunnel: this one says so at
		// once, peers through the store.
		v := hostJSON{Name: h.Name, Online: c.cfg.Online(h.Name) || len(by[h.Name]) > 0, Gateways: orEmpty(by[h.Name]),
			Enrolled: h.AgentKey != "", Labels: orEmpty(h.Labels), Passphrase: h.PassphraseVerifier != ""}
		if !h.LastSeen.IsZero() {
			v.LastSeen = &h.LastSeen
		}
		list = append(list, v)
	}
	if x.json {
		return writeJSON(x.out, list)
	}
	t := newTable(x.out, "NAME", "ONLINE", "LAST-SEEN", "GATEWAYS", "ENROLLED", "LABELS", "PASSPHRASE")
	for _, h := range list {
		seen := "-"
		if h.LastSeen != nil {
			seen = stamp(*h.LastSeen)
		}
		gws := make([]string, 0, len(h.Gateways))
		for _, g := range h.Gateways {
			gws = append(gws, g.Gateway+"@"+g.LastSeen.Format("15:04:05"))
		}
		t.add(h.Name, yesNo(h.Online), seen, orDash(strings.Join(gws, ",")), yesNo(h.Enrolled), strings.Join(h.Labels, ","), yesNo(h.Passphrase))
	}
	return t.flush()
}

func checkLabels(labels []string) error {
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return err
		}
	}
	return nil
}

func (c *Console) hostAdd(x *call) error {
	fs := x.flags()
	var labels listFlag
	fs.Var(&labels, "label", "a `K=V` label (repeatable)")
	args, err := x.parse(fs, 1, 1)
	if err != nil {
		return err
	}
	if err := checkName("host", args[0]); err != nil {
		return err
	}
	if err := checkLabels(labels); err != nil {
		return err
	}
	if err := c.cfg.Store.CreateHost(x.ctx, args[0], labels); err != nil {
		return c.storeErr(err)
	}
	x.detail = labels.String()
	return done(x, "added host "+args[0])
}

func (c *Console) hostRemove(x *call) error {
	args, err := x.parse(x.flags(), 1, 1)
	if err != nil {
		return err
	}
	if err := c.cfg.Store.DeleteHost(x.ctx, args[0]); err != nil {
		return c.storeErr(err)
	}
	return done(x, "removed host "+args[0])
}

func (c *Console) hostLabels(x *call) error {
	args, err := x.parse(x.flags(), 1, -1)
	if err != nil {
		return err
	}
	labels := args[1:]
	if err := checkLabels(labels); err != nil {
		return err
	}
	if err := c.cfg.Store.SetHostLabels(x.ctx, args[0], labels); err != nil {
		return c.storeErr(err)
	}
	x.detail = strings.Join(labels, ",")
	return done(x, fmt.Sprintf("host %s: labels %s", args[0], cell(x.detail)))
}

func (c *Console) hostPassphrase(x *call) error {
	args, err := x.parse(x.flags(), 2, 2)
	if err != nil {
		return err
	}
	// Host passphrases take argon2id only, as in the gateway's config
	// file: bcrypt would silently ignore a long passphrase's tail.
	if !strings.HasPrefix(args[1], "$argon2id$") || checkVerifier(args[1]) != nil {
		return errors.New("not an argon2id hash (make one with: rr-gateway passphrase-hash)")
	}
	if err := c.cfg.Store.SetHostPassphrase(x.ctx, args[0], args[1]); err != nil {
		return c.storeErr(err)
	}
	return done(x, "set the passphrase verifier of host "+args[0])
}

func (c *Console) hostToken(x *call) error {
	host, expires, reason, err := c.tokenArgs(x)
	if err != nil {
		return err
	}
	if h, err := c.cfg.Store.Host(x.ctx, host); err == nil && h.AgentKey != "" {
		return errEnrolled(host)
	}
	if err := c.cfg.Store.UpsertHost(x.ctx, host); err != nil {
		return c.storeErr(err)
	}
	token, hash := store.NewEnrollToken()
	err = c.cfg.Store.CreateEnrollToken(x.ctx, host, hash, expires)
	if errors.Is(err, store.ErrEnrolled) {
		return errEnrolled(host) // enrolled since the check
	}
	if err != nil {
		return c.storeErr(err)
	}
	x.detail = "expires " + expires.Format(time.RFC3339) + reason
	return printToken(x, host, token, expires)
}
