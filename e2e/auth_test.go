package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/store"
)

// attempt runs one login with the real ssh, its prompts answered by
// askpass from vars (over alice's defaults), and the command that proves
// a shell: it prints "ok-2". It returns the prompts asked, stdout, stderr
// and the exit code.
func (w *world) attempt(t *testing.T, login string, vars map[string]string, extra ...string) (prompts []string, out, errOut string, code int) {
	t.Helper()
	os.Remove(w.log)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append(extra, login+"@127.0.0.1", "echo ok-$((1+1))")
	cmd := exec.CommandContext(ctx, "ssh", w.sshArgs(args...)...)
	cmd.Env = w.answers(t, vars)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	b, _ := os.ReadFile(w.log)
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			// OpenSSH prefixes each prompt with "(login@host) ".
			if i := strings.Index(l, ") "); strings.HasPrefix(l, "(") && i > 0 {
				l = l[i+2:]
			}
			prompts = append(prompts, l)
		}
	}
	return prompts, o.String(), e.String(), exitCode(err)
}

func (w *world) audited(t *testing.T, action, outcome, detail string) bool {
	t.Helper()
	evs, err := w.gw.Store.AuditEvents(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Action == action && e.Outcome == outcome && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}

func samePrompts(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !strings.HasPrefix(got[i], want[i]) {
			return false
		}
	}
	return true
}

func TestLoginHappyPaths(t *testing.T) {
	w := newWorld(t)
	w.logLevel = "INFO"
	w.gw.AddPerson("bob", "advanced", "bob@example.test", "bobs password")
	w.gw.AddTeam("more_RR", true, []string{"bob"}, "web-01")
	w.gw.AddTeam("ops_RR", true, []string{"alice", "bob"}, "web-01", "web-02")

	// A key, one team: the team is named, then passphrase, then code.
	prompts, out, errOut, code := w.attempt(t, "rr+web-01", nil)
	if code != 0 || out != "ok-2\n" || !samePrompts(prompts, "Passphrase for web-01:", "Code sent to a***@example.test:") {
		t.Fatalf("key login: exit %d, out %q, prompts %q, stderr %q", code, out, prompts, errOut)
	}
	if !strings.Contains(errOut, "Team: ops_RR") || strings.Contains(errOut, "Team: ops_RR\n\r\n") {
		t.Errorf("the team was not named on a line of its own: stderr %q", errOut)
	}

	// No key: username and password first; bob is in two teams.
	vars := map[string]string{"RR_USERNAME": "bob", "RR_PASSWORD": "bobs password", "RR_TEAM": "more_RR",
		"RR_MAIL_TO": "bob@example.test"}
	prompts, out, errOut, code = w.attempt(t, "rr+web-01", vars, "-o", "PubkeyAuthentication=no")
	if code != 0 || out != "ok-2\n" ||
		!samePrompts(prompts, "Username:", "Password:", "Team:", "Passphrase for web-01:", "Code sent to b***@example.test:") {
		t.Fatalf("password login: exit %d, out %q, prompts %q, stderr %q", code, out, prompts, errOut)
	}
	if !strings.Contains(errOut, "1) more_RR") || !strings.Contains(errOut, "2) ops_RR") {
		t.Errorf("the team choices were not listed: %q", errOut)
	}
	rows, _ := w.gw.Store.Sessions(context.Background(), store.SessionFilter{Person: "bob"})
	if len(rows) != 1 || rows[0].Team != "more_RR" {
		t.Fatalf("bob's session row: %+v", rows)
	}

	// Under one's own name the username is not asked.
	prompts, _, _, code = w.attempt(t, "bob+web-01", vars, "-o", "PubkeyAuthentication=no")
	if code != 0 || !samePrompts(prompts, "Password:", "Team:", "Passphrase for web-01:", "Code sent to") {
		t.Fatalf("bob+web-01: exit %d, prompts %q", code, prompts)
	}
	for _, a := range []string{"auth.passphrase", "auth.code", "auth.code.send", "auth.team"} {
		if !w.audited(t, a, "allowed", "") {
			t.Errorf("no allowed %s in the audit", a)
		}
	}
}

func TestLoginRefusals(t *testing.T) {
	// Many failures in a row here: keep the lockout (tested apart) away.
	w := newWorldWith(t, auth.Config{Limits: auth.Limits{FailuresBeforeLockout: 1000}}, nil)
	w.logLevel = "INFO"
	w.gw.AddPerson("bob", "advanced", "bob@example.test", "bobs password")
	w.gw.AddPerson("carol", "advanced", "carol@example.test", "carols password")
	w.gw.AddPerson("dave", "standard", "dave@example.test", "daves password")
	w.gw.AddTeam("more_RR", true, []string{"bob", "dave"}, "*")
	w.gw.AddTeam("plain", false, []string{"carol"}, "*")
	noKey := []string{"-o", "PubkeyAuthentication=no"}
	pw := func(user, password string) map[string]string {
		return map[string]string{"RR_USERNAME": user, "RR_PASSWORD": password, "RR_MAIL_TO": user + "@example.test"}
	}
	tests := []struct {
		name    string
		login   string
		vars    map[string]string
		args    []string
		prompts []string // prefixes, in order
		banner  string   // what stderr must say
	}{
		{"wrong password", "rr+web-01", pw("bob", "nope"), noKey, []string{"Username:", "Password:"}, ""},
		{"unknown person", "rr+web-01", pw("mallory", "nope"), noKey, []string{"Username:", "Password:"}, ""},
		{"wrong passphrase, three tries", "rr+web-01", map[string]string{"RR_PASSPHRASE": "nope"}, nil,
			[]string{"Passphrase for web-01:", "Passphrase for web-01:", "Passphrase for web-01:"}, "rr: wrong passphrase for web-01"},
		{"host of no team of theirs", "rr+db-09", nil, nil,
			[]string{"Passphrase for db-09:", "Passphrase for db-09:", "Passphrase for db-09:"}, `rr: no host "db-09" that you may reach`},
		{"wrong code, three tries", "rr+web-01", map[string]string{"RR_CODE": "000000"}, nil,
			[]string{"Passphrase for web-01:", "Code sent to", "Code sent to", "Code sent to"}, "rr: wrong code"},
		{"in no Rapid Response team", "rr+web-01", pw("carol", "carols password"), noKey,
			[]string{"Username:", "Password:"}, "rr: you are in no team with Rapid Response enabled"},
		{"standard role", "rr+web-01", pw("dave", "daves password"), noKey,
			[]string{"Username:", "Password:"}, "rr: your role (standard) may not open sessions"},
	}
	for _, tt := range tests {
		prompts, out, errOut, code := w.attempt(t, tt.login, tt.vars, tt.args...)
		if code != 255 || out != "" || !samePrompts(prompts, tt.prompts...) || !strings.Contains(errOut, tt.banner) {
			t.Errorf("%s: exit %d, out %q, prompts %q, stderr %q; want 255, prompts %q, %q",
				tt.name, code, out, prompts, errOut, tt.prompts, tt.banner)
		}
	}
	for _, reason := range []string{"wrong password", "unknown person", "wrong passphrase", "wrong code",
		"in no Rapid Response team", "role standard", "no such host for this team"} {
		if !w.audited(t, "auth.login", "denied", reason) && !w.audited(t, "auth.passphrase", "denied", reason) &&
			!w.audited(t, "auth.code", "denied", reason) && !w.audited(t, "auth.team", "denied", reason) {
			t.Errorf("no denial %q in the audit", reason)
		}
	}
}

func TestCodeReuseAndExpiry(t *testing.T) {
	w := newWorldWith(t, auth.Config{CodeTTL: 3 * time.Second}, nil)
	w.logLevel = "INFO"
	if _, out, errOut, code := w.attempt(t, "rr+web-01", nil); code != 0 || out != "ok-2\n" {
		t.Fatalf("first login: %d %q %q", code, out, errOut)
	}
	old, err := newestCode(w.mail.API, aliceMail, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A code is good for the login it was mailed for, once.
	_, out, errOut, code := w.attempt(t, "rr+web-01", map[string]string{"RR_CODE": old})
	if code != 255 || out != "" || !strings.Contains(errOut, "rr: wrong code") {
		t.Fatalf("reused code: exit %d, out %q, stderr %q", code, out, errOut)
	}
	// A code answered after its time is refused even when right.
	_, out, errOut, code = w.attempt(t, "rr+web-01", map[string]string{"RR_CODE_DELAY": "4s"})
	if code != 255 || out != "" || !strings.Contains(errOut, "rr: the code expired") {
		t.Fatalf("late code: exit %d, out %q, stderr %q", code, out, errOut)
	}
}

func TestLockout(t *testing.T) {
	w := newWorld(t)
	w.logLevel = "INFO"
	w.gw.AddPerson("bob", "advanced", "bob@example.test", "bobs password")
	w.gw.AddTeam("more_RR", true, []string{"bob"}, "*")
	noKey := []string{"-o", "PubkeyAuthentication=no"}
	for i := 0; i < auth.DefaultLimits.FailuresBeforeLockout; i++ {
		if _, _, _, code := w.attempt(t, "rr+web-01", map[string]string{"RR_USERNAME": "bob", "RR_PASSWORD": "guess"}, noKey...); code != 255 {
			t.Fatalf("guess %d let bob in", i)
		}
	}
	good := map[string]string{"RR_USERNAME": "bob", "RR_PASSWORD": "bobs password", "RR_MAIL_TO": "bob@example.test"}
	if _, out, _, code := w.attempt(t, "rr+web-01", good, noKey...); code != 255 || out != "" {
		t.Fatalf("locked-out bob got in with the right password: %d %q", code, out)
	}
	if !w.audited(t, "auth.lockout", "denied", "") {
		t.Fatal("no lockout in the audit")
	}
	// Others are not locked out with him.
	if _, out, _, code := w.attempt(t, "rr+web-01", nil); code != 0 || out != "ok-2\n" {
		t.Fatalf("alice: %d %q", code, out)
	}
}

func TestMailServerDown(t *testing.T) {
	dead, err := auth.NewSMTPMailer(auth.SMTPConfig{Host: "127.0.0.1", Port: freePort(t), TLS: "none", From: "rr@gateway.test",
		Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorldWith(t, auth.Config{Mailer: dead}, nil)
	w.logLevel = "INFO"
	prompts, out, errOut, code := w.attempt(t, "rr+web-01", nil)
	if code != 255 || out != "" || !strings.Contains(errOut, "rr: the code could not be sent") ||
		!samePrompts(prompts, "Passphrase for web-01:") {
		t.Fatalf("exit %d, out %q, prompts %q, stderr %q", code, out, prompts, errOut)
	}
	if !w.audited(t, "auth.code.send", "failed", "") {
		t.Fatal("the failed mail is not in the audit")
	}
}

func TestMailOverSTARTTLS(t *testing.T) {
	cert, key := selfSigned(t)
	mp := startMailpit(t, "--smtp-tls-cert", cert, "--smtp-tls-key", key, "--smtp-require-starttls")
	pem, _ := os.ReadFile(cert)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	m, err := auth.NewSMTPMailer(auth.SMTPConfig{Host: "127.0.0.1", Port: mp.SMTPPort, TLS: "starttls",
		From: "rr@gateway.test", RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorldWith(t, auth.Config{Mailer: m}, mp)
	if _, out, errOut, code := w.attempt(t, "rr+web-01", nil); code != 0 || out != "ok-2\n" {
		t.Fatalf("login with the code mailed over STARTTLS: %d %q %q", code, out, errOut)
	}
	// The same server refuses a client that will not use STARTTLS.
	plain, _ := auth.NewSMTPMailer(auth.SMTPConfig{Host: "127.0.0.1", Port: mp.SMTPPort, TLS: "none", From: "rr@gateway.test"})
	if err := plain.Send(context.Background(), auth.Message{To: aliceMail, Subject: "x", Body: "x"}); err == nil {
		t.Fatal("mail without STARTTLS accepted by a server that requires it")
	}
}

// TestMailOverImplicitTLSWithAuth: tls "tls" (port 465's implicit TLS)
// with a username and password, against a mailpit that requires both.
// A wrong password, no password and an untrusted certificate are refused.
func TestMailOverImplicitTLSWithAuth(t *testing.T) {
	cert, key := selfSigned(t)
	users := filepath.Join(t.TempDir(), "smtp-users")
	if err := os.WriteFile(users, []byte("rr-gateway:s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mp := startMailpit(t, "--smtp-tls-cert", cert, "--smtp-tls-key", key, "--smtp-require-tls", "--smtp-auth-file", users)
	pem, _ := os.ReadFile(cert)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	mailer := func(user, pw string, roots *x509.CertPool) *auth.SMTPMailer {
		m, err := auth.NewSMTPMailer(auth.SMTPConfig{Host: "127.0.0.1", Port: mp.SMTPPort, TLS: "tls",
			Username: user, Password: auth.NewSecret(pw), From: "rr@gateway.test", RootCAs: roots, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	w := newWorldWith(t, auth.Config{Mailer: mailer("rr-gateway", "s3cret-pw", roots)}, mp)
	if _, out, errOut, code := w.attempt(t, "rr+web-01", nil); code != 0 || out != "ok-2\n" {
		t.Fatalf("login with the code mailed over implicit TLS with a password: %d %q %q", code, out, errOut)
	}
	for name, m := range map[string]*auth.SMTPMailer{
		"a wrong password":         mailer("rr-gateway", "guess", roots),
		"no password":              mailer("", "", roots),
		"an untrusted certificate": mailer("rr-gateway", "s3cret-pw", nil),
	} {
		if err := m.Send(context.Background(), auth.Message{To: aliceMail, Subject: "x", Body: "x"}); err == nil {
			t.Errorf("mail with %s accepted", name)
		}
	}
}
