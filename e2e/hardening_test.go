package e2e

import (
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"

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
