package e2e

import (
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/internal/rrtest"
)

// auditFinding matches one verdict of ssh-audit's text output, on an
// algorithm's line or on a "`- " line under it.
var auditFinding = regexp.MustCompile(`\[(fail|warn)\] (.*)$`)

// TestSSHAudit runs Debian's ssh-audit against both ports of a real
// gateway: no [fail] and no [warn], except "unknown algorithm" for what is
// newer than the tool (mlkem768x25519-sha256, kex-strict-s-v00@openssh.com
// for ssh-audit 2.5.0).
func TestSSHAudit(t *testing.T) {
	audit := rrtest.Tool(t, "ssh-audit", "run `make test`, which installs it (apt-get install ssh-audit)")
	g, _ := startProcGateway(t, "")
	for name, addr := range map[string]string{"people": g.people, "agents": g.agents} {
		_, port, _ := net.SplitHostPort(addr)
		// ssh-audit exits non-zero for any warning, unknown algorithms
		// included: its verdicts are read from the output instead.
		out, _ := exec.Command(audit, "-n", "-t", "10", "-p", port, "127.0.0.1").CombinedOutput()
		if !strings.Contains(string(out), "(kex) ") || !strings.Contains(string(out), "(mac) ") {
			t.Fatalf("%s port: ssh-audit did not audit it:\n%s", name, out)
		}
		var bad []string
		algo := ""
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[0], "(") {
				algo = f[0] + " " + f[1]
			}
			m := auditFinding.FindStringSubmatch(line)
			if m == nil || (m[1] == "warn" && m[2] == "unknown algorithm") {
				continue
			}
			bad = append(bad, algo+": ["+m[1]+"] "+m[2])
		}
		if len(bad) > 0 {
			t.Errorf("%s port: ssh-audit found:\n  %s\nfull output:\n%s", name, strings.Join(bad, "\n  "), out)
		}
	}
}

// TestKillReasonEscaped: a kill reason typed by someone else reaches the
// killed person's terminal (the real ssh's stderr) with its bidi override
// and zero-width space escaped, not acting on their terminal.
func TestKillReasonEscaped(t *testing.T) {
	w, alice, dave, _, _ := staffWorld(t)
	ctx := testCtx(t, 2*time.Minute)
	cmd, _, errb := w.startLong(t, ctx, alice, "6001")
	id := w.liveID(t)
	const reason = "contained \u202etxt.exe\u200b now"
	if out, errOut, code := w.console(t, dave, "kill "+id+" "+reason); code != 0 || !strings.Contains(out, "killed session "+id) {
		t.Fatalf("dave's kill: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	err := cmd.Wait()
	got := errb.String()
	if exitCode(err) == 0 || !strings.Contains(got, `Session closed by dave: contained \u202etxt.exe\u200b now`) ||
		strings.ContainsAny(got, "\u202e\u200b") {
		t.Fatalf("alice's ssh: exit %d, stderr %q; want the reason escaped", exitCode(err), got)
	}
}
