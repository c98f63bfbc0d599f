package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/internal/testtool"
	"github.com/rr-gateway/rr/store"
)

// The admin subsystem and the recordings tree, driven with the real ssh,
// scp (both protocols) and sftp.

// someone is a person of a test world, as the OpenSSH tools present them.
type someone struct {
	name string
	key  gatewaytest.Key
	mail string
}

// staffWorld adds to the world: dave, alice's teammate in ops_RR; bob, in
// db_RR, another Rapid Response team that also reaches web-01; ann, an
// admin in no team.
func staffWorld(t *testing.T) (w *world, alice, dave, bob, ann someone) {
	w = newWorld(t)
	alice = someone{"alice", w.alice, aliceMail}
	dave = someone{"dave", gatewaytest.NewKey(t, "dave"), "dave@example.test"}
	bob = someone{"bob", gatewaytest.NewKey(t, "bob"), "bob@example.test"}
	ann = someone{"ann", gatewaytest.NewKey(t, "ann"), "ann@example.test"}
	w.gw.AddPerson("dave", "advanced", dave.mail, "", dave.key)
	w.gw.AddPerson("bob", "advanced", bob.mail, "", bob.key)
	w.gw.AddPerson("ann", "admin", ann.mail, "", ann.key)
	w.gw.AddTeam("ops_RR", true, []string{"alice", "dave"}, "web-01", "web-02")
	w.gw.AddTeam("db_RR", true, []string{"bob"}, "web-01")
	return w, alice, dave, bob, ann
}

// openSSHArgs are the options every OpenSSH tool here takes; portFlag is
// "-p" for ssh and "-P" for scp and sftp.
func (w *world) openSSHArgs(p someone, portFlag string) []string {
	_, port, _ := net.SplitHostPort(w.gw.PeopleAddr)
	return []string{"-F", "none", portFlag, port, "-i", p.key.Path,
		"-o", "IdentitiesOnly=yes", "-o", "NumberOfPasswordPrompts=1",
		"-o", "UserKnownHostsFile=" + w.gw.KnownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "LogLevel=ERROR"}
}

// tool runs an OpenSSH tool as p, answering prompts as p would.
func (w *world) tool(t *testing.T, ctx context.Context, p someone, name string, args ...string) *exec.Cmd {
	flag := "-P"
	if name == "ssh" {
		flag = "-p"
	}
	cmd := exec.CommandContext(ctx, name, append(w.openSSHArgs(p, flag), args...)...)
	cmd.Env = w.answers(t, map[string]string{"RR_MAIL_TO": p.mail})
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// console feeds lines to `ssh rr@gateway -s rr-admin` as p, without a
// terminal, and returns stdout, stderr and the exit code.
func (w *world) console(t *testing.T, p someone, lines ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := w.tool(t, ctx, p, "ssh", "-s", "rr@127.0.0.1", "rr-admin")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return o.String(), e.String(), exitCode(err)
}

type sessionJSON struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Person string `json:"person"`
	Team   string `json:"team"`
	Host   string `json:"host"`
}

// listed runs `sessions --json` as p and returns the sessions' ids.
func (w *world) listed(t *testing.T, p someone) map[string]sessionJSON {
	t.Helper()
	out, errOut, code := w.console(t, p, "sessions --json")
	if code != 0 {
		t.Fatalf("%s: sessions --json: exit %d: %s", p.name, code, errOut)
	}
	var xs []sessionJSON
	if err := json.Unmarshal([]byte(out), &xs); err != nil {
		t.Fatalf("%s: sessions --json is not one JSON array: %v\n%s", p.name, err, out)
	}
	m := map[string]sessionJSON{}
	for _, x := range xs {
		m[x.ID] = x
	}
	return m
}

// startLong starts a session as p on web-01 that prints "started" and
// then runs `sleep secs`; it returns the running ssh, its stdout lines and
// stderr.
func (w *world) startLong(t *testing.T, ctx context.Context, p someone, secs string) (*exec.Cmd, *bufio.Reader, *bytes.Buffer) {
	t.Helper()
	cmd := w.tool(t, ctx, p, "ssh", "rr+web-01@127.0.0.1", "echo started; exec sleep "+secs)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil || line != "started\n" {
		t.Fatalf("long session: %q %v; stderr %s", line, err, errb.String())
	}
	return cmd, r, &errb
}

// liveID is the id of the one live session.
func (w *world) liveID(t *testing.T) string {
	t.Helper()
	rows, err := w.gw.Store.Sessions(context.Background(), store.SessionFilter{LiveOnly: true})
	if err != nil || len(rows) != 1 {
		t.Fatalf("live sessions %v %v", rows, err)
	}
	return rows[0].ID
}

func TestConsoleListsAndKills(t *testing.T) {
	testtool.Need(t, "gzip", "openssl")
	w, alice, dave, bob, ann := staffWorld(t)
	ctx := testCtx(t, 3*time.Minute)

	// bob, of another team, runs a short session of his own.
	if out, err := w.tool(t, ctx, bob, "ssh", "rr+web-01@127.0.0.1", "echo bob-was-here").Output(); err != nil || string(out) != "bob-was-here\n" {
		t.Fatalf("bob's session: %q %v", out, err)
	}
	cmd, _, errb := w.startLong(t, ctx, alice, "6001")
	id := w.liveID(t)
	rows, _ := w.gw.Store.Sessions(ctx, store.SessionFilter{Person: "bob"})
	bobs := rows[0].ID

	// Who sees what: teammates their team's sessions, admins all.
	if got := w.listed(t, dave); got[id].State != "live" || got[id].Person != "alice" || len(got) != 1 {
		t.Fatalf("dave (ops_RR) sees %+v; want alice's live session only", got)
	}
	if got := w.listed(t, bob); len(got) != 1 || got[bobs].State != "closed" {
		t.Fatalf("bob (db_RR) sees %+v; want only his own closed session", got)
	}
	if got := w.listed(t, ann); len(got) != 2 || got[id].State != "live" || got[bobs].Team != "db_RR" {
		t.Fatalf("ann (admin) sees %+v; want both", got)
	}
	// Live first, as a table without --json.
	out, _, _ := w.console(t, ann, "sessions")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[1], id) {
		t.Fatalf("sessions table:\n%s", out)
	}

	// Outside the team: the session does not exist for bob, and he cannot
	// kill it; the console carries on after the error.
	out, errOut, code := w.console(t, bob, "kill "+id+" not yours", "whoami")
	if code == 0 || !strings.Contains(errOut, `no session "`+id+`"`) || !strings.Contains(out, "bob") {
		t.Fatalf("bob's kill: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !w.audited(t, "session.kill", "denied", "") {
		t.Error("the refused kill is not in the audit trail")
	}
	// Bad input gets one line and the console carries on.
	out, errOut, _ = w.console(t, dave, "frobnicate", strings.Repeat("x", 10000), "show\x01", "whoami")
	if !strings.Contains(errOut, `unknown command "frobnicate"`) || !strings.Contains(errOut, "too long") ||
		!strings.Contains(out, "dave") {
		t.Fatalf("bad input: stdout %q stderr %q", out, errOut)
	}

	// dave, a teammate, kills it: alice is told who and why, her ssh ends.
	out, errOut, code = w.console(t, dave, "kill "+id+" incident contained")
	if code != 0 || !strings.Contains(out, "killed session "+id) {
		t.Fatalf("dave's kill: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	err := cmd.Wait()
	if exitCode(err) == 0 || !strings.Contains(errb.String(), "Session closed by dave: incident contained") {
		t.Fatalf("alice's ssh: exit %d, stderr %q", exitCode(err), errb.String())
	}
	row, err := w.gw.Store.Session(ctx, id)
	if err != nil || row.State != store.StateKilled || row.KilledBy != "dave" || row.RecordingSHA256 == "" {
		t.Fatalf("row after the kill: %+v %v", row, err)
	}
	// The host-side process is gone.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, _ := exec.Command("pgrep", "-f", "^sleep 6001$").Output()
		if len(out) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host-side process survived the kill: pids %s", out)
		}
	}
	// The recording decrypts with the stock tools and ends with the kill.
	plain, err := exec.Command("bash", "-c", `set -o pipefail; gzip -dc "$1" | openssl enc -d -aes-256-ctr -pbkdf2 -k "$2"`,
		"x", row.Recording, "pp-web-01").Output()
	if err != nil {
		t.Fatalf("stock decryption: %v", err)
	}
	ls := strings.Split(strings.TrimSpace(string(plain)), "\n")
	if last := ls[len(ls)-1]; !strings.Contains(last, `"x"`) || !strings.Contains(last, "dave") {
		t.Errorf("last event %q does not say dave killed it", last)
	}
	// Killing it again, or something unknown, is a clear error.
	_, errOut, code = w.console(t, dave, "kill "+id)
	if code == 0 || !strings.Contains(errOut, "not live") {
		t.Fatalf("second kill: exit %d, stderr %q", code, errOut)
	}
	_, errOut, _ = w.console(t, dave, "kill 0123456789abcdef")
	if !strings.Contains(errOut, "no session") {
		t.Fatalf("unknown kill: %q", errOut)
	}
	// show tells where the recording is and how to fetch it.
	out, _, _ = w.console(t, dave, "show "+id)
	for _, want := range []string{row.RecordingSHA256, "scp ", "recordings/" + id + ".gz", "killed"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	// An admin kills in any team: bob's session, with the default reason.
	cmd, _, errb = w.startLong(t, ctx, bob, "6003")
	bobLive := w.liveID(t)
	if out, errOut, code := w.console(t, ann, "kill --json "+bobLive); code != 0 || !strings.Contains(out, `"ok":true`) {
		t.Fatalf("ann's kill: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if err := cmd.Wait(); exitCode(err) == 0 || !strings.Contains(errb.String(), "Session closed by ann") {
		t.Fatalf("bob's ssh: exit %d, stderr %q", exitCode(err), errb.String())
	}
	if row, _ := w.gw.Store.Session(ctx, bobLive); row.State != store.StateKilled || row.KilledBy != "ann" {
		t.Fatalf("bob's row after ann's kill: %+v", row)
	}

	// Admin-only commands are refused to team members.
	_, errOut, _ = w.console(t, dave, "users")
	if !strings.Contains(errOut, "admins only") {
		t.Errorf("dave ran users: %q", errOut)
	}
}

// TestConsoleOnATerminal: ann, an admin in no team, logs in with her key
// alone (nothing to answer); reading asks nothing more, the first change
// asks the mailed code on the terminal (not echoed), the next goes
// through without asking, and ann is mailed each change.
func TestConsoleOnATerminal(t *testing.T) {
	w, _, _, _, ann := staffWorld(t)
	ssh := "ssh " + shellQuote(append(w.openSSHArgs(ann, "-p"), "-t", "-s", "rr@127.0.0.1", "rr-admin"))
	m := startTmux(t, 120, 30, ssh+"; echo EXIT=$?; sleep 600")
	m.waitFor("rr-admin>")
	m.line("hosts")
	m.waitFor("web-01")
	before, err := mails(w.mail.API, ann.mail)
	if err != nil || len(before) != 0 {
		t.Fatalf("mail to ann before any change: %v %v", before, err)
	}
	m.line("user add erin --email erin@example.test --role advanced")
	m.waitFor("Changes need your second factor, once per connection.")
	m.waitFor("Code sent to a***@example.test:") // tmux drops the trailing space
	code, err := newestCode(w.mail.API, ann.mail, 0)
	if err != nil || code == "" {
		t.Fatalf("no code mailed to ann: %q %v", code, err)
	}
	m.line(code)
	m.waitFor("added person erin")
	if strings.Contains(m.screen(), code) {
		t.Fatalf("the code was echoed:\n%s", m.screen())
	}
	m.line("team member add ops_RR erin")
	m.line("users")
	m.waitForLast(func(l string) bool { return strings.HasSuffix(l, "rr-admin>") })
	if s := m.screen(); !strings.Contains(s, "erin@example.test") {
		t.Fatalf("users after adding erin:\n%s", s)
	}
	m.line("quit")
	m.waitFor("EXIT=0")
	// The change took effect at once, and is in the audit trail.
	teams, err := w.gw.Store.TeamsOf(context.Background(), "erin")
	if err != nil || len(teams) != 1 || teams[0].Name != "ops_RR" {
		t.Fatalf("erin's teams %v %v", teams, err)
	}
	if !w.audited(t, "admin.user.add", "allowed", "") {
		t.Error("adding a person is not audited")
	}
	if n := strings.Count(m.screen(), "Code sent to"); n != 1 {
		t.Errorf("the code was asked %d times for two changes", n)
	}
	// The code, then a notice of each change.
	notices := waitMails(t, w.mail.API, ann.mail, 3)
	var subjects []string
	for _, n := range notices {
		subjects = append(subjects, n.Subject)
	}
	for _, want := range []string{"rr: ann ran user add erin on ", "rr: ann ran team member add ops_RR on "} {
		if !strings.Contains(strings.Join(subjects, "\n"), want) {
			t.Errorf("no notice %q to ann: %q", want, subjects)
		}
	}
}

// waitMails waits (up to 20 s; mailpit offers no event) until addr has n
// mails, and returns them, newest first.
func waitMails(t *testing.T, api, addr string, n int) []mailSummary {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msgs, err := mails(api, addr)
		if err == nil && len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails to %s, want %d (%v)", len(msgs), addr, n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestScriptedChangeWithAuthenticator: without a terminal, a script
// answers the code on the line after its first change; an authenticator's
// code lets it do that without reading mail.
func TestScriptedChangeWithAuthenticator(t *testing.T) {
	w, _, _, _, ann := staffWorld(t)
	ctx := context.Background()
	key, err := auth.NewTOTPKey("rr", "ann")
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.gw.Store.PersonByName(ctx, "ann")
	if err != nil {
		t.Fatal(err)
	}
	p.TOTPSecret = key.Secret()
	if err := w.gw.Store.UpdatePerson(ctx, p); err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(key.Secret(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, exit := w.console(t, ann, "team add scripted_RR --rapid-response", code, "team member add scripted_RR dave")
	if exit != 0 || !strings.Contains(out, "added team scripted_RR") || !strings.Contains(out, "added dave to team scripted_RR") ||
		!strings.Contains(errOut, "Authenticator code: ") {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", exit, out, errOut)
	}
	// Without the code, a script's change is refused, and the exit says so.
	out, errOut, exit = w.console(t, ann, "team remove scripted_RR")
	if exit != 1 || !strings.Contains(errOut, "rr-admin: change refused: no answer: the input ended") {
		t.Fatalf("without the code: exit %d\nstdout %q\nstderr %q", exit, out, errOut)
	}
	if teams, _ := w.gw.Store.TeamsOf(ctx, "dave"); len(teams) != 2 {
		t.Fatalf("dave's teams %+v", teams)
	}
}

func TestDownloads(t *testing.T) {
	testtool.Need(t, "scp", "sftp", "gzip", "openssl")
	w, alice, _, bob, ann := staffWorld(t)
	ctx := testCtx(t, 3*time.Minute)
	if out, err := w.tool(t, ctx, alice, "ssh", "rr+web-01@127.0.0.1", "echo recorded-$((20+22))").Output(); err != nil || string(out) != "recorded-42\n" {
		t.Fatalf("alice's session: %q %v", out, err)
	}
	rows, _ := w.gw.Store.Sessions(ctx, store.SessionFilter{})
	row := rows[0]
	stored, err := os.ReadFile(row.Recording)
	if err != nil {
		t.Fatal(err)
	}
	decrypts := func(path string) {
		t.Helper()
		plain, err := exec.Command("bash", "-c", `set -o pipefail; gzip -dc "$1" | openssl enc -d -aes-256-ctr -pbkdf2 -k "$2"`,
			"x", path, "pp-web-01").Output()
		if err != nil || !strings.Contains(string(plain), "recorded-42") {
			t.Fatalf("%s does not decrypt to the session: %v", path, err)
		}
	}

	// scp, SFTP under the hood (OpenSSH 9's default) and the legacy
	// protocol: byte-identical files that decrypt.
	for _, mode := range [][]string{nil, {"-O"}} {
		dst := filepath.Join(t.TempDir(), "got.gz")
		args := append(append([]string{}, mode...), "rr@127.0.0.1:recordings/"+row.ID+".gz", dst)
		if out, err := w.tool(t, ctx, alice, "scp", args...).CombinedOutput(); err != nil {
			t.Fatalf("scp %v: %v: %s", mode, err, out)
		}
		got, _ := os.ReadFile(dst)
		if !bytes.Equal(got, stored) {
			t.Fatalf("scp %v: %d bytes, not the stored %d", mode, len(got), len(stored))
		}
		decrypts(dst)
	}

	// sftp lists recordings/ with names that say id, host and start; the
	// tree is read-only and closed to traversal.
	sftp := func(p someone, cmds string) string {
		cmd := w.tool(t, ctx, p, "sftp", "rr@127.0.0.1")
		cmd.Stdin = strings.NewReader(cmds)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	long := row.ID + "_web-01_" + row.Started.UTC().Format("20060102T150405Z") + ".gz"
	dir := t.TempDir()
	out := sftp(alice, "ls -l recordings\nget recordings/"+long+" "+dir+"/long.gz\nput /etc/hostname recordings/x\n"+
		"rm recordings/"+long+"\nrename recordings/"+long+" recordings/y\nmkdir recordings/z\nget ../../../etc/passwd "+dir+"/p\n")
	if !strings.Contains(out, long) {
		t.Fatalf("sftp ls does not list %s:\n%s", long, out)
	}
	if got, _ := os.ReadFile(dir + "/long.gz"); !bytes.Equal(got, stored) {
		t.Fatalf("sftp get: %d bytes, not the stored %d", len(got), len(stored))
	}
	if n := strings.Count(out, "Permission denied"); n < 4 {
		t.Errorf("sftp writes: %d refusals, want 4 (put, rm, rename, mkdir):\n%s", n, out)
	}
	if _, err := os.Stat(dir + "/p"); err == nil {
		t.Error("a path outside recordings/ was served")
	}

	// Another team's person sees nothing and fetches nothing; an admin can.
	if out := sftp(bob, "ls -l recordings\n"); strings.Contains(out, row.ID) {
		t.Fatalf("bob lists alice's recording:\n%s", out)
	}
	if out, err := w.tool(t, ctx, bob, "scp", "rr@127.0.0.1:recordings/"+row.ID+".gz", dir+"/bob.gz").CombinedOutput(); err == nil {
		t.Fatalf("bob fetched alice's recording: %s", out)
	}
	if out, err := w.tool(t, ctx, ann, "scp", "-O", "rr@127.0.0.1:recordings/"+row.ID+".gz", dir+"/ann.gz").CombinedOutput(); err != nil {
		t.Fatalf("ann's scp: %v %s", err, out)
	}

	// A live session's recording is refused, with the reason.
	cmd, _, _ := w.startLong(t, ctx, alice, "6002")
	live := w.liveID(t)
	for _, mode := range [][]string{nil, {"-O"}} {
		args := append(append([]string{}, mode...), "rr@127.0.0.1:recordings/"+live+".gz", dir+"/live.gz")
		out, err := w.tool(t, ctx, alice, "scp", args...).CombinedOutput()
		if err == nil {
			t.Fatalf("scp %v fetched a live session's recording", mode)
		}
		if len(mode) > 0 && !strings.Contains(string(out), "live") {
			t.Errorf("scp -O of a live recording says %q", out)
		}
	}
	cmd.Process.Kill()

	// Every download is in the audit trail, and so is every refused one:
	// bob's try at another team's recording, alice's at a live one.
	evs, _ := w.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: "recording.download"})
	var allowed int
	var bobDenied, liveDenied bool
	for _, ev := range evs {
		switch {
		case ev.Outcome == "allowed":
			allowed++
		case ev.Outcome == "denied" && ev.Actor == "bob" && strings.Contains(ev.Target, row.ID):
			bobDenied = true
		case ev.Outcome == "denied" && ev.Actor == "alice" && strings.Contains(ev.Target, live) &&
			strings.Contains(ev.Detail, "still live"):
			liveDenied = true
		}
	}
	if allowed < 4 || !bobDenied || !liveDenied {
		t.Errorf("audited: %d downloads (want at least 4), bob's refusal %v, the live one's %v:\n%+v",
			allowed, bobDenied, liveDenied, evs)
	}

	// Refused reads past the 20th on one connection are summed up in one
	// row when it ends: asking in a loop cannot fill the audit table.
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("recordings/%016x.gz", i))
	}
	if out, err := w.tool(t, ctx, bob, "scp", "-O", "rr@127.0.0.1:"+strings.Join(names, " "), dir).CombinedOutput(); err == nil {
		t.Fatalf("scp -O of 30 recordings that are not there: %s", out)
	}
	listed, summed := 0, ""
	for deadline := time.Now().Add(10 * time.Second); summed == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		evs, _ = w.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: "recording.download", Actor: "bob"})
		listed, summed = gatewaytest.RefusedReads(evs, "recordings/000000000000")
	}
	if listed != 20 || !strings.HasPrefix(summed, "10 more refused reads") {
		t.Errorf("30 refused reads on one connection: %d audited one by one, summed up as %q; want 20 and the 10 others", listed, summed)
	}
}
