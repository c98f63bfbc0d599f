package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
)

// codeFactor is a SecondFactor that asks for "123456" once per Login,
// as auth.Service does per connection, and records what it asked.
type codeFactor struct {
	asked []string // instruction|prompt|echo
	given map[*auth.Login]bool
}

func (f *codeFactor) check(ctx context.Context, who Caller, p auth.Prompter) error {
	if f.given[who.Login] {
		return nil
	}
	answer, err := p.Ask(ctx, "Changes need your second factor, once per connection.", "Code sent to a***@example.com: ", false)
	f.asked = append(f.asked, fmt.Sprintf("%q", answer))
	if err != nil {
		return err
	}
	if answer != "123456" {
		return errors.New("wrong code")
	}
	f.given[who.Login] = true
	return nil
}

// TestChangesNeedTheSecondFactor: reading needs no code; the first change
// asks it, the next input line answers (on a terminal without echo), and
// later changes on that connection go through without asking; a wrong
// answer refuses the change, which is audited and leaves the store as it
// was; a console with nothing to ask on (Exec) changes nothing.
func TestChangesNeedTheSecondFactor(t *testing.T) {
	e := newEnv(t)
	f := &codeFactor{given: map[*auth.Login]bool{}}
	e.factor = f.check
	ctx := context.Background()
	alice := admin
	alice.Login = &auth.Login{}

	// Piped: the question on stderr, the answer the next line.
	out, errOut, failed := e.run(alice, "users\nteam add red\n000000\nhosts\n", false)
	if failed != 1 || !strings.Contains(errOut, "Code sent to a***@example.com: ") ||
		!strings.Contains(errOut, "rr-admin: change refused: wrong code") || strings.Contains(out, "added") {
		t.Fatalf("wrong code: failed %d, out %q, stderr %q", failed, out, errOut)
	}
	if len(f.asked) != 1 || f.asked[0] != `"000000"` {
		t.Fatalf("asked %v; want once, with the line after the change as the answer", f.asked)
	}
	if teams, _ := e.st.Teams(ctx); len(teams) != 2 {
		t.Fatalf("a refused change went through: teams %+v", teams)
	}
	if got := e.audited(t, "admin.team.add"); len(got) != 1 || got[0] != "alice denied  second factor: wrong code" {
		t.Fatalf("audit of the refused change: %q", got)
	}

	// On a terminal: the code is not echoed; one code, then two changes.
	out, _, failed = e.run(alice, "team add red\r123456\rteam add blue\r", true)
	if failed != 0 || strings.Contains(out, "123456") || !strings.Contains(out, "added team red") ||
		!strings.Contains(out, "added team blue") || !strings.Contains(out, "Changes need your second factor") {
		t.Fatalf("tty: failed %d, out %q", failed, out)
	}
	if len(f.asked) != 2 {
		t.Fatalf("asked %v; want one more question for both changes", f.asked)
	}

	// No input to ask on, and this connection never gave it.
	carol := admin
	carol.Login = &auth.Login{}
	if _, msg := e.exec(carol, "team add green"); msg != "change refused: the second factor cannot be asked here" {
		t.Fatalf("Exec without the factor: %q", msg)
	}
	teams, _ := e.st.Teams(ctx)
	if len(teams) != 4 { // ops, sec, red, blue
		t.Fatalf("teams %+v", teams)
	}
	// A piped console whose input ends at the question.
	if _, errOut, failed := e.run(carol, "team add green\n", false); failed != 1 || !strings.Contains(errOut, "no answer: the input ended") {
		t.Fatalf("input ended at the question: %d %q", failed, errOut)
	}
}

// TestAdminsAreToldOfChanges: every change that went through reaches
// Notify (who, what, when, from where); a refused or failed one does not.
func TestAdminsAreToldOfChanges(t *testing.T) {
	e := newEnv(t)
	e.exec(admin, "team add red --rapid-response")
	e.exec(admin, "team add red")                   // exists: failed
	e.exec(bob, "team add blue")                    // not an admin
	e.exec(admin, "team member add red bob")        // allowed
	e.exec(admin, "sessions")                       // reads nothing to tell
	e.exec(admin, "user set bob --password-hash x") // bad hash: failed
	want := []Change{
		{Time: now, Actor: "alice", Source: admin.Source, Action: "admin.team.add", Target: "red", Detail: "rapid response on"},
		{Time: now, Actor: "alice", Source: admin.Source, Action: "admin.team.member.add", Target: "red", Detail: "bob"},
	}
	if fmt.Sprint(e.changes) != fmt.Sprint(want) {
		t.Fatalf("told %+v\nwant %+v", e.changes, want)
	}
}

// agentKey returns an authorized_keys line of a fresh key.
func agentKey(t *testing.T) string {
	line, _ := newKey(t)
	return line
}

// TestEnrolledHostsTakeNoToken: host token refuses a host whose agent is
// enrolled (a rogue agent would take its sessions); host reenroll unbinds
// the key, drops the host's agents, and prints a token that enrolls the
// next agent; both are audited.
func TestEnrolledHostsTakeNoToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	good := agentKey(t)
	must(t, e.st.SetAgentKey(ctx, "web-01", good))

	out, msg := e.exec(admin, "host token web-01")
	if msg != "host web-01 has an enrolled agent; to replace it: host reenroll web-01" || out != "" {
		t.Fatalf("token for an enrolled host: %q %q", out, msg)
	}
	if ok, _ := e.st.HasEnrollToken(ctx, "web-01", now); ok {
		t.Fatal("a token was stored for an enrolled host")
	}
	if got := e.audited(t, "admin.host.token"); len(got) != 1 || !strings.HasPrefix(got[0], "alice failed web-01 host web-01 has an enrolled agent") {
		t.Fatalf("audit of the refused token: %q", got)
	}

	out, msg = e.exec(admin, "host reenroll web-01 --ttl 1h")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if msg != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], "one-time enrollment token for web-01") {
		t.Fatalf("reenroll: %q %q", out, msg)
	}
	if h, _ := e.st.Host(ctx, "web-01"); h.AgentKey != "" {
		t.Fatalf("the old key is still bound: %q", h.AgentKey)
	}
	if fmt.Sprint(e.drops) != "[web-01]" {
		t.Fatalf("agents dropped for %v", e.drops)
	}
	pub, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(good))
	got := e.audited(t, "admin.host.reenroll")
	if len(got) != 1 || strings.Contains(got[0], lines[1]) ||
		got[0] != "alice allowed web-01 unbound key "+ssh.FingerprintSHA256(pub)+", 1 agent connections dropped, new token expires 2026-11-24T12:00:00Z" {
		t.Fatalf("audit of the reenroll: %q", got)
	}
	if len(e.changes) != 1 || e.changes[0].Action != "admin.host.reenroll" {
		t.Fatalf("admins told %+v", e.changes)
	}
	must(t, e.st.UseEnrollToken(ctx, "web-01", sha256sum(lines[1]), agentKey(t), now))
	if _, msg := e.exec(admin, "host reenroll nowhere"); msg != "not found: host nowhere" {
		t.Fatalf("reenroll of a missing host: %q", msg)
	}
}

// TestTokenRuleOfTheFile: with a TokenRule, its refusal stands for both
// token commands, and the reason it allows one with is audited.
func TestTokenRuleOfTheFile(t *testing.T) {
	e := newEnv(t)
	e.console.cfg.Declared = func(kind, name string) bool { return kind == "host" }
	e.console.cfg.TokenRule = func(host string) (string, error) {
		if host == "db-01" {
			return "agents of the db fleet enroll from their image", nil
		}
		return "", fmt.Errorf("host %s: its agent key is the file's", host)
	}
	for _, line := range []string{"host token web-01", "host reenroll web-01"} {
		if _, msg := e.exec(admin, line); msg != "host web-01: its agent key is the file's" {
			t.Errorf("%q: %q", line, msg)
		}
	}
	if _, msg := e.exec(admin, "host token db-01 --ttl 1h"); msg != "" {
		t.Fatal(msg)
	}
	if got := e.audited(t, "admin.host.token"); len(got) != 2 ||
		got[1] != "alice allowed db-01 expires 2026-11-24T12:00:00Z; the configuration file allows it: agents of the db fleet enroll from their image" {
		t.Fatalf("audit %q", got)
	}
}
