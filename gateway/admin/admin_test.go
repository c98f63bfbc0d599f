package admin

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

var (
	t0    = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	now   = t0.Add(time.Hour)
	admin = Caller{Person: "alice", Role: auth.RoleAdmin, Source: "192.0.2.1:5000"}
	bob   = Caller{Person: "bob", Role: auth.RoleAdvanced, Team: "ops", Source: "192.0.2.2:5000"}
	carol = Caller{Person: "carol", Role: auth.RoleAdvanced, Team: "sec", Source: "192.0.2.3:5000"}
)

// env is a console over a real store holding two teams' sessions:
//
//	ops-live    ops  bob    web-01  live
//	ops-done    ops  bob    web-01  closed, exit 0
//	sec-live    sec  carol  db-01   live
//	sec-killed  sec  carol  db-01   killed by alice
type env struct {
	st      *sqlite.Store
	console *Console

	mu      sync.Mutex
	kills   []string // "id by reason"
	online  map[string]bool
	changes []Change // told to Notify
	drops   []string // hosts whose agents DropAgents dropped
	// factor is Config.SecondFactor (default: every connection gave it).
	factor func(ctx context.Context, who Caller, p auth.Prompter) error
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{st: st, online: map[string]bool{"web-01": true}}
	e.console, err = New(Config{
		Store: st,
		Kill: func(ctx context.Context, id, by, reason string) error {
			e.mu.Lock()
			e.kills = append(e.kills, id+" "+by+" "+reason)
			e.mu.Unlock()
			switch id {
			case "elsewhere":
				return ErrNotLive
			case "racing":
				return ErrEndedFirst
			}
			return st.FinishSession(ctx, id, store.SessionEnd{State: store.StateKilled, Ended: now, KilledBy: by})
		},
		Online: func(host string) bool { e.mu.Lock(); defer e.mu.Unlock(); return e.online[host] },
		Live: func(id string) (int64, int64, bool) {
			return 11, 22, id == "ops-live"
		},
		DownloadCommand: func(id string) string { return "scp -P 2222 rr@gw.example.com:recordings/" + id + ".gz ." },
		SecondFactor: func(ctx context.Context, who Caller, p auth.Prompter) error {
			if e.factor == nil {
				return nil
			}
			return e.factor(ctx, who, p)
		},
		Notify: func(_ context.Context, ch Change) {
			e.mu.Lock()
			e.changes = append(e.changes, ch)
			e.mu.Unlock()
		},
		DropAgents: func(host string) int {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.drops = append(e.drops, host)
			return 1
		},
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []store.Person{
		{Name: "alice", Role: auth.RoleAdmin, Email: "alice@example.com"},
		{Name: "bob", Role: auth.RoleAdvanced, Email: "bob@example.com", PasswordHash: "$2b$secret"},
		{Name: "carol", Role: auth.RoleAdvanced, Email: "carol@example.com", TOTPSecret: "TOTPSECRET"},
	} {
		must(t, st.CreatePerson(ctx, p))
	}
	must(t, st.UpsertTeam(ctx, store.Team{Name: "ops", RapidResponse: true, Members: []string{"bob"}, Hosts: []string{"web-01"}}))
	must(t, st.UpsertTeam(ctx, store.Team{Name: "sec", RapidResponse: true, Members: []string{"carol"}, Hosts: []string{"*"}}))
	must(t, st.CreateHost(ctx, "web-01", []string{"env=prod"}))
	must(t, st.CreateHost(ctx, "db-01", nil))
	zero := 0
	for i, s := range []struct {
		id, team, person, host string
		end                    *store.SessionEnd
	}{
		{"ops-done", "ops", "bob", "web-01", &store.SessionEnd{State: store.StateClosed, Ended: t0.Add(90 * time.Second), BytesIn: 5, BytesOut: 7, ExitStatus: &zero}},
		{"sec-killed", "sec", "carol", "db-01", &store.SessionEnd{State: store.StateKilled, Ended: t0.Add(5 * time.Minute), KilledBy: "alice"}},
		{"ops-live", "ops", "bob", "web-01", nil},
		{"sec-live", "sec", "carol", "db-01", nil},
	} {
		must(t, st.CreateSession(ctx, store.Session{ID: s.id, Person: s.person, Team: s.team, Host: s.host, State: store.StateLive,
			Started: t0.Add(time.Duration(i) * time.Minute), Recording: "/spool/" + s.id + ".gz", Source: "198.51.100.1:22",
			Gateway: "gw-" + strconv.Itoa(1+i%2), GatewayAdvertise: "gw-" + strconv.Itoa(1+i%2) + ".example.com:2222"}))
		if s.end != nil {
			must(t, st.FinishSession(ctx, s.id, *s.end))
			must(t, st.SetSessionRecording(ctx, s.id, "/spool/"+s.id+".gz", 1234, "abcd"))
		}
	}
	return e
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// exec runs one line and returns its output and error message.
func (e *env) exec(who Caller, line string) (string, string) {
	var out bytes.Buffer
	err := e.console.Exec(context.Background(), who, line, &out)
	if err != nil {
		return out.String(), err.Error()
	}
	return out.String(), ""
}

// audited returns the audit events for action, as "actor outcome target detail".
func (e *env) audited(t *testing.T, action string) []string {
	t.Helper()
	evs, err := e.st.AuditEvents(context.Background(), store.AuditFilter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, strings.Join([]string{ev.Actor, ev.Outcome, ev.Target, ev.Detail}, " "))
	}
	return out
}

// column returns the first column of a table's rows (header dropped).
func column(out string) []string {
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		ids = append(ids, strings.Fields(l)[0])
	}
	return ids
}

func TestNewRequires(t *testing.T) {
	_, err := New(Config{})
	for _, want := range []string{"Store", "Kill", "Online", "SecondFactor", "Notify", "DropAgents"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(Config{}) = %v; want it to name %s", err, want)
		}
	}
}

func TestSessionsVisibility(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		who  Caller
		line string
		want string
	}{
		{admin, "sessions", "[sec-live ops-live sec-killed ops-done]"},
		{bob, "sessions", "[ops-live ops-done]"},
		{carol, "sessions", "[sec-live sec-killed]"},
		{Caller{Person: "dave", Role: auth.RoleAdvanced}, "sessions", "[]"},
		{admin, "sessions --live", "[sec-live ops-live]"},
		{admin, "sessions --host db-01", "[sec-live sec-killed]"},
		{admin, "sessions --user bob --limit 1", "[ops-live]"},
		{admin, "sessions --since 2026-11-24T10:01:30Z", "[sec-live ops-live]"},
		{admin, "sessions --since 57m", "[sec-live]"},
		{bob, "sessions --host db-01", "[]"},
	} {
		out, msg := e.exec(tc.who, tc.line)
		if msg != "" {
			t.Fatalf("%s %q: %s", tc.who.Person, tc.line, msg)
		}
		if got := strings.Fields(out); len(got) < 11 || got[0] != "ID" || got[5] != "GATEWAY" || got[10] != "EXIT" {
			t.Fatalf("%q: header %q", tc.line, out)
		}
		if got := column(out); fmt.Sprint(got) != tc.want {
			t.Errorf("%s %q: %v, want %s", tc.who.Person, tc.line, got, tc.want)
		}
	}
	out, _ := e.exec(bob, "sessions")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^ops-live +live +bob +ops +web-01 +gw-1 +2026-11-24T10:02:00Z +58m0s +11 +22 +-$`),
		regexp.MustCompile(`(?m)^ops-done +closed +bob +ops +web-01 +gw-1 +2026-11-24T10:00:00Z +1m30s +5 +7 +0$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("sessions table:\n%s\nwant a line matching %s", out, want)
		}
	}
	out, _ = e.exec(carol, "sessions")
	if !strings.Contains(out, "killed by alice") {
		t.Errorf("EXIT of a killed session:\n%s", out)
	}
	if _, msg := e.exec(admin, "sessions --since yesterday"); !strings.Contains(msg, "want a duration ago") {
		t.Errorf("bad --since: %q", msg)
	}
}

func TestShow(t *testing.T) {
	e := newEnv(t)
	out, msg := e.exec(bob, "show ops-done")
	for _, want := range []string{"id:", "ops-done", "exit status:", "sha256:", "abcd", "size:", "1234",
		"download:", "scp -P 2222 rr@gw.example.com:recordings/ops-done.gz .", "/spool/ops-done.gz", "(shell)",
		"gateway:      gw-1 (gw-1.example.com:2222)"} {
		if msg != "" || !strings.Contains(out, want) {
			t.Fatalf("show: %q %q; want %q in it", out, msg, want)
		}
	}
	out, _ = e.exec(bob, "show --json ops-live")
	var v struct {
		ID        string
		BytesIn   int64 `json:"bytes_in"`
		Ended     *time.Time
		Recording struct{ Download string }
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID != "ops-live" || v.BytesIn != 11 || v.Ended != nil ||
		v.Recording.Download != "available once the session is closed" {
		t.Fatalf("show --json of a live session: %s %v", out, err)
	}
	// Another team's session reads exactly like an unknown one.
	_, hidden := e.exec(bob, "show sec-live")
	_, unknown := e.exec(bob, "show nope")
	if hidden != `no session "sec-live"` || unknown != `no session "nope"` {
		t.Fatalf("hidden %q, unknown %q", hidden, unknown)
	}
	if _, msg := e.exec(admin, "show sec-live"); msg != "" {
		t.Fatalf("admin show: %s", msg)
	}
}

func TestKill(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		who       Caller
		line, out string
		msg       string
	}{
		{bob, "kill sec-live", "", `no session "sec-live"`},
		{bob, "kill nope", "", `no session "nope"`},
		{bob, "kill ops-done", "", "session ops-done is not live (state closed)"},
		{bob, "kill", "", "usage: kill ID [REASON...]"},
		{bob, "kill ops-live stop it now", "killed session ops-live (host web-01, person bob)\n", ""},
		{bob, "kill ops-live", "", "session ops-live is not live (state killed)"},
		{admin, "kill sec-live --json", `{"ok":true,"message":"killed session sec-live (host db-01, person carol)"}` + "\n", ""},
	} {
		out, msg := e.exec(tc.who, tc.line)
		if out != tc.out || msg != tc.msg {
			t.Errorf("%s %q: %q %q; want %q %q", tc.who.Person, tc.line, out, msg, tc.out, tc.msg)
		}
	}
	if fmt.Sprint(e.kills) != "[ops-live bob stop it now sec-live alice ]" {
		t.Fatalf("kills %q", e.kills)
	}
	want := []string{
		`bob denied sec-live no session "sec-live"`,
		`bob denied nope no session "nope"`,
		"bob denied ops-done session ops-done is not live (state closed)",
		"bob allowed ops-live stop it now",
		"bob denied ops-live session ops-live is not live (state killed)",
		"alice allowed sec-live ",
	}
	if got := e.audited(t, "session.kill"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Live in the store but not on this gateway.
	must(t, e.st.CreateSession(context.Background(), store.Session{ID: "elsewhere", Person: "bob", Team: "ops", Host: "web-01",
		State: store.StateLive, Started: t0}))
	if _, msg := e.exec(bob, "kill elsewhere"); msg != "session elsewhere is not live on this gateway" {
		t.Fatalf("kill elsewhere: %q", msg)
	}
	// Ended on its own while the kill was on its way: not reported killed.
	must(t, e.st.CreateSession(context.Background(), store.Session{ID: "racing", Person: "bob", Team: "ops", Host: "web-01",
		State: store.StateLive, Started: t0}))
	if out, msg := e.exec(bob, "kill racing"); msg != "session racing ended before this kill reached it (show racing says how)" || out != "" {
		t.Fatalf("kill racing: %q %q", out, msg)
	}
}

// adminLines are one of each admin command, as a non-admin would try them.
var adminLines = []string{
	"audit", "users", "user add x --email x@example.com --role standard", "user set bob --role admin",
	"user remove carol", "keys bob", "key add bob ssh-ed25519 AAAA", "key remove bob SHA256:x", "teams",
	"team add x", "team remove ops", "team rapid-response ops off", "team member add ops bob",
	"team member remove ops bob", "team host add ops *", "team host remove ops web-01", "hosts",
	"host add x", "host remove web-01", "host labels web-01 a=b", "host passphrase web-01 x", "host token web-01",
}

func TestAdminOnly(t *testing.T) {
	e := newEnv(t)
	for _, line := range adminLines {
		out, msg := e.exec(bob, line)
		if out != "" || msg != "permission denied: admins only" {
			t.Errorf("bob %q: %q %q", line, out, msg)
		}
		out, msg = e.exec(bob, line+" --json")
		if out != "" || msg != "permission denied: admins only" {
			t.Errorf("bob %q --json: %q %q", line, out, msg)
		}
	}
	if got := e.audited(t, "admin.*"); len(got) != 2*len(adminLines) || got[0] != "bob denied  admins only" {
		t.Fatalf("%d denials audited (want %d): %q", len(got), 2*len(adminLines), got)
	}
	// Nothing changed.
	if p, _ := e.st.PersonByName(context.Background(), "bob"); p.Role != auth.RoleAdvanced {
		t.Fatalf("bob became %s", p.Role)
	}
	// help shows bob only what he may run.
	out, _ := e.exec(bob, "help")
	if strings.Contains(out, "users") || !strings.Contains(out, "kill ID") {
		t.Fatalf("bob's help:\n%s", out)
	}
	if _, msg := e.exec(bob, "help users"); msg != `unknown command "users"; type help` {
		t.Fatalf("help users for bob: %q", msg)
	}
}

func newKey(t *testing.T) (line, fingerprint string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))), ssh.FingerprintSHA256(k)
}

func TestManage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bcryptHash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	argon, err := auth.HashSecret("host secret")
	must(t, err)
	key, fp := newKey(t)
	steps := []struct {
		line, out, msg string
	}{
		{"user add dave --email dave@example.com --role advanced --password-hash " + string(bcryptHash), "added person dave\n", ""},
		{"user add dave --email d@example.com --role advanced", "", "conflict: person dave exists"},
		{"user add eve --role advanced", "", "--email and --role are required; usage: user add NAME --email E --role R [--password-hash H]"},
		{"user add eve --email eve@example.com --role root", "", `bad role "root": want admin, advanced or standard`},
		{"user add eve --email eve@example.com --role standard --password-hash hunter2", "", "not an argon2id or bcrypt hash (make one with: rr-gateway passphrase-hash)"},
		{"user add rr --email rr@example.com --role standard", "", `"rr" is the gateway's service login, not a person's name`},
		{"user add 'bad name' --email e@example.com --role standard", "", `bad person name "bad name": want 1 to 64 letters, digits, '.', '_' or '-'`},
		{"user set dave --role admin --clear-password", "updated person dave: password cleared, role admin\n", ""},
		{"user set dave", "", "nothing to change; usage: user set NAME [--email E] [--role R] [--password-hash H] [--clear-password]"},
		{"user set zed --role admin", "", "not found: person zed"},
		{"user remove alice", "", "you cannot remove yourself"},
		{"key add dave " + key + " dave@laptop", "added key " + fp + " to dave\n", ""},
		{"key add carol " + key, "", "conflict: key " + fp + " belongs to dave"},
		{"key add carol ssh-ed25519 notbase64", "", "not an authorized_keys line (want: TYPE BASE64 [COMMENT])"},
		{"key add zed " + key, "", "not found: person zed"},
		{"keys dave", "FINGERPRINT" + strings.Repeat(" ", len(fp)-9) + "TYPE\n" + fp + "  ssh-ed25519\n", ""},
		{"keys zed", "", "not found: person zed"},
		{"team add night --rapid-response", "added team night\n", ""},
		{"team add night", "", "conflict: team night exists"},
		{"team member add night dave", "added dave to team night\n", ""},
		{"team member add night dave", "", "conflict: dave is already a member of night"},
		{"team member add night zed", "", "not found: person zed"},
		{"team host add night label:env=prod", "team night now reaches label:env=prod\n", ""},
		{"team host add night 'web 01'", "", `bad host pattern "web 01": want a host name, label:K=V or *`},
		{"team host add night label:oops", "", `bad label "oops": want K=V (no commas)`},
		{"team rapid-response night maybe", "", "usage: team rapid-response NAME on|off"},
		{"team rapid-response night off", "team night: rapid response off\n", ""},
		{"host add app-01 --label env=prod --label role=app", "added host app-01\n", ""},
		{"host add app-01", "", "conflict: host app-01 exists"},
		{"host add app-02 --label noequals", "", `bad label "noequals": want K=V (no commas)`},
		{"host labels app-01 role=db", "host app-01: labels role=db\n", ""},
		{"host passphrase app-01 " + string(bcryptHash), "", "not an argon2id hash (make one with: rr-gateway passphrase-hash)"},
		{"host passphrase app-01 " + argon, "set the passphrase verifier of host app-01\n", ""},
		{"host passphrase zz-01 " + argon, "", "not found: host zz-01"},
		{"key remove dave " + fp, "removed key " + fp + " from dave\n", ""},
		{"key remove dave " + fp, "", "not found: key " + fp + " of dave"},
		{"team member remove night dave", "removed dave from team night\n", ""},
		{"team host remove night label:env=prod", "team night no longer reaches label:env=prod\n", ""},
		{"team remove night", "removed team night\n", ""},
		{"team remove night", "", "not found: team night"},
		{"user remove dave", "removed person dave\n", ""},
		{"host remove app-01", "removed host app-01\n", ""},
		{"host remove app-01", "", "not found: host app-01"},
	}
	for _, s := range steps {
		out, msg := e.exec(admin, s.line)
		if out != s.out || msg != s.msg {
			t.Errorf("%q:\n got %q %q\nwant %q %q", s.line, out, msg, s.out, s.msg)
		}
	}
	// Each attempted change is one audit event; hashes never reach it.
	evs, err := e.st.AuditEvents(ctx, store.AuditFilter{Action: "admin."})
	must(t, err)
	if changes := len(steps) - 2; len(evs) != changes { // keys NAME reads
		t.Errorf("%d admin events for %d changes", len(evs), changes)
	}
	for _, ev := range evs {
		if strings.Contains(ev.Detail, "$2") || strings.Contains(ev.Detail, "$argon2id$") {
			t.Errorf("a hash in the audit trail: %+v", ev)
		}
		if ev.Actor != "alice" || ev.Source != admin.Source || !ev.Time.Equal(now) {
			t.Errorf("event %+v", ev)
		}
	}
	if got := e.audited(t, "admin.user.set"); got[0] != "alice allowed dave password cleared, role admin" ||
		got[2] != "alice failed zed not found: person zed" {
		t.Errorf("user set events: %q", got)
	}
	if h, err := e.st.Host(ctx, "app-01"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removed host still there: %+v %v", h, err)
	}
}

func TestListings(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	must(t, e.st.SetAgentKey(ctx, "web-01", "ssh-ed25519 AAAA"))
	must(t, e.st.TouchHost(ctx, "web-01", t0))
	key, _ := newKey(t)
	_, msg := e.exec(admin, "key add bob "+key)
	must(t, errIf(msg))

	out, _ := e.exec(admin, "users")
	want := "NAME   EMAIL              ROLE      KEYS  TEAMS  PASSWORD  TOTP\n" +
		"alice  alice@example.com  admin     0     -      no        no\n" +
		"bob    bob@example.com    advanced  1     ops    yes       no\n" +
		"carol  carol@example.com  advanced  0     sec    no        yes\n"
	if out != want {
		t.Errorf("users:\n%s\nwant:\n%s", out, want)
	}
	if strings.Contains(out, "secret") || strings.Contains(out, "TOTPSECRET") {
		t.Error("users shows a secret")
	}
	out, _ = e.exec(admin, "teams")
	want = "NAME  RAPID-RESPONSE  MEMBERS  HOSTS\n" +
		"ops   yes             bob      web-01\n" +
		"sec   yes             carol    *\n"
	if out != want {
		t.Errorf("teams:\n%s\nwant:\n%s", out, want)
	}
	// db-01's agent is connected to a peer gateway only, web-01's to
	// this one and to a peer whose lease expired (so not counted).
	must(t, e.st.RenewLease(ctx, store.Lease{Gateway: "gw-2", Renewed: now, Expires: now.Add(15 * time.Second)}))
	must(t, e.st.RenewLease(ctx, store.Lease{Gateway: "gw-3", Renewed: now, Expires: now.Add(-time.Second)}))
	must(t, e.st.SetPresence(ctx, "db-01", "gw-2", now.Add(-time.Minute)))
	must(t, e.st.SetPresence(ctx, "web-01", "gw-3", now))
	out, _ = e.exec(admin, "hosts")
	want = "NAME    ONLINE  LAST-SEEN             GATEWAYS       ENROLLED  LABELS    PASSPHRASE\n" +
		"db-01   yes     -                     gw-2@10:59:00  no        -         no\n" +
		"web-01  yes     2026-11-24T10:00:00Z  -              yes       env=prod  no\n"
	if out != want {
		t.Errorf("hosts:\n%s\nwant:\n%s", out, want)
	}
	out, _ = e.exec(admin, "gateways")
	want = "NAME  ADVERTISE  RENEWED               EXPIRES               ALIVE\n" +
		"gw-2  -          2026-11-24T11:00:00Z  2026-11-24T11:00:15Z  yes\n" +
		"gw-3  -          2026-11-24T11:00:00Z  2026-11-24T10:59:59Z  no\n"
	if out != want {
		t.Errorf("gateways:\n%s\nwant:\n%s", out, want)
	}
	out, _ = e.exec(bob, "whoami")
	if want := "PERSON  ROLE      TEAM\nbob     advanced  ops\n"; out != want {
		t.Errorf("whoami %q", out)
	}
	out, _ = e.exec(admin, "whoami")
	if want := "PERSON  ROLE   TEAM\nalice   admin  -\n"; out != want {
		t.Errorf("whoami %q", out)
	}
}

func errIf(msg string) error {
	if msg != "" {
		return errors.New(msg)
	}
	return nil
}

func TestHostToken(t *testing.T) {
	e := newEnv(t)
	out, msg := e.exec(admin, "host token new-01 --ttl 2h")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if msg != "" || len(lines) != 2 || lines[0] != "one-time enrollment token for new-01, valid until 2026-11-24T13:00:00Z (shown once):" ||
		len(lines[1]) != 43 {
		t.Fatalf("host token: %q %q", out, msg)
	}
	ctx := context.Background()
	if ok, _ := e.st.HasEnrollToken(ctx, "new-01", now); !ok {
		t.Fatal("no token stored")
	}
	sum := sha256sum(lines[1])
	must(t, e.st.UseEnrollToken(ctx, "new-01", sum, "ssh-ed25519 AGENT", now))
	if got := e.audited(t, "admin.host.token"); len(got) != 1 || strings.Contains(got[0], lines[1]) ||
		got[0] != "alice allowed new-01 expires 2026-11-24T13:00:00Z" {
		t.Fatalf("audit %q", got)
	}
	if _, msg := e.exec(admin, "host token new-01 --ttl -1h"); msg != "--ttl must be positive" {
		t.Fatalf("negative ttl: %q", msg)
	}
}

func TestAudit(t *testing.T) {
	e := newEnv(t)
	e.exec(bob, "kill ops-live because")
	e.exec(bob, "users")
	out, msg := e.exec(admin, "audit --action session. --json")
	if msg != "" {
		t.Fatal(msg)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("JSON Lines: %q", out)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatal(err)
	}
	// Its place in the hash chain (the first event is the kill's).
	if ev["seq"] != 1.0 || ev["prev"] != "" || len(ev["hash"].(string)) != 64 {
		t.Fatalf("chain fields: %v", ev)
	}
	delete(ev, "seq")
	delete(ev, "prev")
	delete(ev, "hash")
	want := map[string]any{"time": "2026-11-24T11:00:00Z", "actor": "bob", "action": "session.kill", "target": "ops-live",
		"outcome": "allowed", "detail": "because", "source": bob.Source, "session_id": "ops-live"}
	if fmt.Sprint(ev) != fmt.Sprint(want) {
		t.Fatalf("event %v\nwant %v", ev, want)
	}
	out, _ = e.exec(admin, "audit --actor bob")
	if got := column(out); len(got) != 2 || !strings.Contains(out, "admin.users") || !strings.Contains(out, "OUTCOME") {
		t.Fatalf("audit table:\n%s", out)
	}
	for line, n := range map[string]int{
		"audit --session ops-live": 1, "audit --until 2026-11-24": 0, "audit --since 2026-11-24 --limit 1": 1,
		"audit --action admin.*": 1, "audit --action admin": 0,
	} {
		if out, _ := e.exec(admin, line); len(column(out)) != n {
			t.Errorf("%q: %d rows, want %d:\n%s", line, len(column(out)), n, out)
		}
	}
}

// TestJSON runs every command with --json and checks that it prints
// exactly one JSON document (audit: JSON Lines).
func TestJSON(t *testing.T) {
	e := newEnv(t)
	key, _ := newKey(t)
	for _, line := range []string{
		"help", "help team", "help sessions", "whoami", "sessions", "sessions --live", "show ops-done", "users", "teams",
		"hosts", "keys bob", "key add bob " + key, "team add x", "host add y", "host token y", "user add z --email z@example.com --role standard",
		"kill sec-live", "sessions --host nowhere", "nope", "show nope", "sessions --limit x", "user add",
	} {
		var buf bytes.Buffer
		e.console.Run(context.Background(), admin, strings.NewReader(line+" --json\n"), &buf, io.Discard, false)
		out := buf.String()
		dec := json.NewDecoder(strings.NewReader(out))
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Errorf("%q --json: %v in %q", line, err, out)
			continue
		}
		if dec.More() {
			t.Errorf("%q --json: more than one document in %q", line, out)
		}
		if _, isList := v.([]any); line == "sessions" && !isList {
			t.Errorf("%q --json: %q is not a list", line, out)
		}
	}
}

func sha256sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// TestDeclaredInTheFileAreRefused: people, teams and hosts the gateway's
// configuration file declares are rewritten at every start, so the console
// refuses to change them (the refusal is audited) and changes the rest;
// without a TokenRule, a declared host gets no enrollment token either.
func TestDeclaredInTheFileAreRefused(t *testing.T) {
	e := newEnv(t)
	e.console.cfg.Declared = func(kind, name string) bool {
		return kind+":"+name == "person:bob" || kind+":"+name == "team:ops" || kind+":"+name == "host:web-01"
	}
	key, _ := newKey(t)
	for _, line := range []string{
		"user set bob --role standard", "user remove bob", "key add bob " + key, "user add bob --email b@x --role standard",
		"team rapid-response ops off", "team member add ops carol", "team host remove ops web-01", "team remove ops",
		"host labels web-01 env=dev", "host remove web-01", "host passphrase web-01 $argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
		"host token web-01", "host reenroll web-01",
	} {
		if _, msg := e.exec(admin, line); !strings.Contains(msg, "declared in the gateway's configuration file") {
			t.Errorf("%q: %q, want a refusal naming the configuration file", line, msg)
		}
	}
	if p, err := e.st.PersonByName(context.Background(), "bob"); err != nil || p.Role != auth.RoleAdvanced {
		t.Errorf("bob after the refusals: %+v, %v", p, err)
	}
	if got := e.audited(t, "admin.user.set"); len(got) != 1 || !strings.Contains(got[0], "alice failed bob") {
		t.Errorf("audit of the refused user set: %q", got)
	}
	for _, line := range []string{"user set carol --role standard", "team member add sec bob", "host labels db-01 env=dev", "host token db-01"} {
		if _, msg := e.exec(admin, line); msg != "" {
			t.Errorf("%q: %s", line, msg)
		}
	}
}

// TestAdminKeepsOwnRole: an admin cannot demote themself (the last admin
// would lock everyone out), as they cannot remove themself.
func TestAdminKeepsOwnRole(t *testing.T) {
	e := newEnv(t)
	if _, msg := e.exec(admin, "user set alice --role standard"); !strings.Contains(msg, "your own admin role") {
		t.Fatalf("self-demotion: %q", msg)
	}
	if p, _ := e.st.PersonByName(context.Background(), "alice"); p.Role != auth.RoleAdmin {
		t.Fatalf("alice is %s now", p.Role)
	}
	if _, msg := e.exec(admin, "user set alice --email alice@example.org"); msg != "" {
		t.Fatalf("changing one's own email: %s", msg)
	}
}

// TestShowOffersOnlyWhatDownloads: a closed session whose recording was
// never finalized (no checksum) is not offered for download.
func TestShowOffersOnlyWhatDownloads(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	must(t, e.st.CreateSession(ctx, store.Session{ID: "ops-broken", Person: "bob", Team: "ops", Host: "web-01",
		State: store.StateLive, Started: t0, Recording: "/spool/ops-broken.gz"}))
	must(t, e.st.FinishSession(ctx, "ops-broken", store.SessionEnd{State: store.StateClosed, Ended: t0.Add(time.Minute)}))
	out, msg := e.exec(bob, "show ops-broken")
	if msg != "" || strings.Contains(out, "scp ") || !strings.Contains(out, "not finalized") {
		t.Fatalf("show of an unfinalized recording: %q %q", out, msg)
	}
	if out, _ := e.exec(bob, "show ops-done"); !strings.Contains(out, "scp -P 2222") {
		t.Fatalf("show of a finalized recording: %q", out)
	}
}
