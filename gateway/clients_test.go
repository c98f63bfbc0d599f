package gateway_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/store"
)

// kiLog is a keyboard-interactive method that records every round (its
// instruction and questions) and answers from answers by prefix.
type kiLog struct {
	codes  *gatewaytest.Outbox // if set, answers the mailed code from it
	mu     sync.Mutex
	rounds []string // "instruction|question"
}

func (k *kiLog) method(answers map[string]string) ssh.AuthMethod {
	n := 0
	if k.codes != nil {
		n = k.codes.Count()
	}
	return ssh.KeyboardInteractive(func(_, instruction string, questions []string, _ []bool) ([]string, error) {
		k.mu.Lock()
		defer k.mu.Unlock()
		out := make([]string, len(questions))
		for i, q := range questions {
			k.rounds = append(k.rounds, instruction+"|"+q)
			for prefix, a := range answers {
				if strings.HasPrefix(q, prefix) {
					out[i] = a
				}
			}
			if strings.HasPrefix(q, "Code sent to") && k.codes != nil {
				code, err := k.codes.CodeAfter(n)
				if err != nil {
					return nil, err
				}
				out[i] = code
			}
		}
		return out, nil
	})
}

func (k *kiLog) String() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return strings.Join(k.rounds, "; ")
}

// dialWith logs in as user with auths, and returns the client (closed at
// the test's end), the banners the server sent, and the error.
func (e *env) dialWith(t *testing.T, user string, auths ...ssh.AuthMethod) (*ssh.Client, string, error) {
	t.Helper()
	var banners strings.Builder
	c, err := ssh.Dial("tcp", e.gw.PeopleAddr, &ssh.ClientConfig{User: user, Auth: auths,
		HostKeyCallback: ssh.FixedHostKey(e.gw.HostKey.PublicKey()), Timeout: 10 * time.Second,
		BannerCallback: func(m string) error { banners.WriteString(m); return nil }})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, banners.String(), err
}

// A key login that needs nothing asked at login ends with the key alone:
// clients that never go on to keyboard-interactive (BatchMode, sftp -b,
// paramiko, rclone) get in. What the login did not ask is asked later:
// a session without a terminal is still refused its host.
func TestKeyAloneFinishesLoginWhenNothingIsAsked(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c, _, err := e.dialWith(t, "rr", ssh.PublicKeys(e.alice.Signer))
	if err != nil {
		t.Fatalf("key alone, nothing to ask: %v", err)
	}
	_, errOut, err := run(t, c, "web-01 -- echo nope", nil)
	if exitStatus(err) != 1 || !strings.Contains(errOut, "cannot be asked without a terminal") {
		t.Fatalf("a session without a terminal after a key-alone login: status %v, stderr %q", err, errOut)
	}
	if _, _, err := e.dialWith(t, "alice", ssh.PublicKeys(e.alice.Signer)); err != nil {
		t.Fatalf("key alone under her own name: %v", err)
	}

	// The host in the login, or two teams: questions at login, so the key
	// alone is not enough, and keyboard-interactive asks them.
	if _, _, err := e.dialWith(t, "rr+web-01", ssh.PublicKeys(e.alice.Signer)); err == nil {
		t.Fatal("rr+web-01 logged in with the key alone")
	}
	e.gw.AddTeam("more_RR", true, []string{"alice"}, "web-01")
	if _, _, err := e.dialWith(t, "rr", ssh.PublicKeys(e.alice.Signer)); err == nil {
		t.Fatal("a person in two teams logged in with the key alone, no team chosen")
	}
	var ki kiLog
	if _, _, err := e.dialWith(t, "rr", ssh.PublicKeys(e.alice.Signer), ki.method(map[string]string{"Team": "more_RR"})); err != nil {
		t.Fatalf("two teams, Team answered: %v", err)
	}
	if got := ki.String(); !strings.Contains(got, "Team: ") {
		t.Fatalf("rounds %q, want the Team prompt", got)
	}

	// A refusal after the key still says why, in a banner, and ends the
	// login: no Username: prompt follows, which could not help.
	bob := gatewaytest.NewKey(t, "bob")
	e.gw.AddPerson("bob", "standard", "bob@example.com", "bobs password", bob)
	var asked kiLog
	_, banner, err := e.dialWith(t, "rr", ssh.PublicKeys(bob.Signer), asked.method(map[string]string{"Username": "bob", "Password": "bobs password"}))
	if err == nil || !strings.Contains(banner, "your role (standard) may not open sessions") || asked.String() != "" {
		t.Fatalf("standard role, key: err %v, banner %q, then asked %q", err, banner, asked.String())
	}
}

// The instruction line of a keyboard-interactive round ends with a line
// break, so clients that print it as sent (Dropbear) do not glue it to the
// prompt ("Team: ops_RRPassphrase for web-01:").
func TestInstructionEndsWithNewline(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	ki := kiLog{codes: e.gw.Outbox}
	if _, _, err := e.dialWith(t, "rr+web-01", ssh.PublicKeys(e.alice.Signer), ki.method(map[string]string{"Passphrase for web-01": "pp-web-01"})); err != nil {
		t.Fatal(err)
	}
	if got := ki.String(); !strings.HasPrefix(got, "Team: ops_RR\n|Passphrase for web-01: ") {
		t.Fatalf("rounds %q, want the instruction Team: ops_RR and a line break", got)
	}
}

// A second session over a connection whose login named the host (an
// OpenSSH ControlMaster's) is told what is true: the passphrase went to
// the first session; -t asks it again, or a new connection.
func TestSecondSessionOnLoginHostSaysWhy(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c := e.dial(t, "rr+web-01", e.alice.Signer)
	if out, _, err := run(t, c, "echo first", nil); err != nil || out != "first\n" {
		t.Fatalf("first session: %q %v", out, err)
	}
	_, errOut, err := run(t, c, "echo second", nil)
	if exitStatus(err) != 1 || !strings.Contains(errOut, "was used by this connection's first session") ||
		!strings.Contains(errOut, "add -t") || !strings.Contains(errOut, "-S none") || strings.Contains(errOut, "name the host in the login") {
		t.Fatalf("second session without a terminal: %v, stderr %q", err, errOut)
	}
	// With a terminal it is asked there (the code, given on this
	// connection, is not asked again).
	s, stdin, out := ptyStart(t, c, "xterm", 24, 80, "echo third-$((1+2))")
	waitFor(t, out, "Passphrase for web-01: ")
	io.WriteString(stdin, "pp-web-01\r")
	waitFor(t, out, "third-3")
	if err := s.Wait(); err != nil {
		t.Fatalf("third session: %v\n%s", err, out.String())
	}
}

// Ctrl-C at the passphrase prompt on the terminal is a cancel, not a
// refusal.
func TestCtrlCAtPassphrasePromptSaysCancelled(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c := e.dial(t, "rr", e.alice.Signer)
	s, stdin, out := ptyStart(t, c, "xterm", 24, 80, "web-01")
	waitFor(t, out, "Passphrase for web-01: ")
	io.WriteString(stdin, "\x03")
	waitFor(t, out, "rr: cancelled")
	if err := s.Wait(); exitStatus(err) != 1 || strings.Contains(out.String(), "permission denied") {
		t.Fatalf("exit %v, output %q", err, out.String())
	}
}

// The mail limit is checked before anything is asked, and the refusal says
// when to try again.
func TestMailLimitBeforeAnyPrompt(t *testing.T) {
	e := newEnvWith(t, gatewaytest.Config{Auth: auth.Config{Limits: auth.Limits{MailsPerPerson: 1, MailWindow: 10 * time.Minute}}})
	e.dial(t, "rr+web-01", e.alice.Signer) // the one code of the window
	var ki kiLog
	_, banner, err := e.dialWith(t, "rr+web-01", ssh.PublicKeys(e.alice.Signer), ki.method(map[string]string{"Passphrase": "pp-web-01"}))
	if err == nil {
		t.Fatal("a second code was mailed within the limit")
	}
	if got := ki.String(); got != "" {
		t.Fatalf("over the mail limit, still asked: %q", got)
	}
	if !strings.Contains(banner, "1 login codes were mailed to you within 10m0s") || !strings.Contains(banner, "try again in ") || !strings.Contains(banner, "UTC)") {
		t.Fatalf("banner %q, want the limit and when to try again", banner)
	}
	// On the terminal too: nothing is asked.
	c, _, err := e.dialWith(t, "rr", ssh.PublicKeys(e.alice.Signer))
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, c)
	s.RequestPty("xterm", 24, 80, ssh.TerminalModes{})
	out := &syncBuffer{}
	s.Stdout, s.Stderr = out, out
	if err := s.Start("web-01"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "try again in")
	if err := s.Wait(); exitStatus(err) != 1 || strings.Contains(out.String(), "Passphrase") {
		t.Fatalf("exit %v, output %q", err, out.String())
	}
}

// Commands a file-transfer client runs to probe the server (rclone: echo,
// md5sum, sha1sum) on a login without a host are refused without a word
// and summed up in one audit row; a real host name still gets a reason.
func TestProbeCommandsRefusedQuietly(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c, _, err := e.dialWith(t, "rr", ssh.PublicKeys(e.alice.Signer))
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"echo 'rclone'", "md5sum", "sha1sum", "md5sum"} {
		out, errOut, err := run(t, c, cmd, nil)
		if exitStatus(err) != 127 || out != "" || errOut != "" {
			t.Fatalf("%q: status %v, stdout %q, stderr %q; want 127 and nothing said", cmd, err, out, errOut)
		}
	}
	if _, errOut, err := run(t, c, "db-09 uptime", nil); exitStatus(err) != 1 || !strings.Contains(errOut, `no host "db-09"`) {
		t.Fatalf("a host name: %v %q", err, errOut)
	}
	c.Close()
	ctx := context.Background()
	var rows []store.AuditEvent
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		evs, err := e.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: "session.open"})
		if err != nil {
			t.Fatal(err)
		}
		rows = evs
		if len(evs) >= 2 {
			break
		}
	}
	var probes, hosts int
	for _, ev := range rows {
		switch {
		case strings.Contains(ev.Detail, "probe"):
			probes++
			if !strings.HasPrefix(ev.Detail, "4 commands") || !strings.Contains(ev.Detail, "echo, md5sum, sha1sum") {
				t.Errorf("summary row %q", ev.Detail)
			}
		case ev.Target == "db-09":
			hosts++
		}
	}
	if probes != 1 || hosts != 1 {
		t.Fatalf("audit: %d probe summaries, %d refusals of db-09; want 1 and 1: %+v", probes, hosts, rows)
	}
}
