package main

import (
	"fmt"
	"slices"

	"golang.org/x/crypto/ssh"
)

// tokenRule is the file's rule for enrollment tokens (console's host
// token and host reenroll, and rr-gateway enroll): a host the file does
// not declare takes them; a declared host whose agent key the file gives
// (agent_key, agent_key_file) never does, its key is the file's; any other
// declared host only with enroll: token, whose enroll_reason is audited
// with each token. A token would otherwise let whoever holds an admin's
// key bind a rogue agent to a host the file vouches for.
func (c *fileConfig) tokenRule(host string) (reason string, err error) {
	i := slices.IndexFunc(c.Hosts, func(h fileHost) bool { return h.Name == host })
	if i < 0 {
		return "", nil
	}
	h := c.Hosts[i]
	switch {
	case h.AgentKey != "" || h.AgentKeyFile != "":
		return "", fmt.Errorf("host %s: its agent key is declared in the gateway's configuration file (agent_key); change it there", host)
	case h.Enroll != "token":
		return "", fmt.Errorf("host %s is declared in the gateway's configuration file without enroll: token; its agent takes no token", host)
	}
	return h.EnrollReason, nil
}

// checkEnroll checks hosts[i]'s enroll and enroll_reason.
func (h *fileHost) checkEnroll(i int) error {
	switch {
	case h.Enroll == "" && h.EnrollReason != "":
		return fmt.Errorf("hosts[%d] %s: enroll_reason without enroll: token", i, h.Name)
	case h.Enroll == "":
		return nil
	case h.Enroll != "token":
		return fmt.Errorf("hosts[%d] %s: enroll %q: want token, or leave it out", i, h.Name, h.Enroll)
	case h.EnrollReason == "":
		return fmt.Errorf("hosts[%d] %s: enroll: token needs enroll_reason (why this host's agent enrolls with a token; audited)", i, h.Name)
	case h.AgentKey != "" || h.AgentKeyFile != "":
		return fmt.Errorf("hosts[%d] %s: enroll: token and an agent key in the file do not go together", i, h.Name)
	}
	return nil
}

// keyFingerprint is the fingerprint of an authorized_keys line, "none"
// for "".
func keyFingerprint(line string) string {
	if line == "" {
		return "none"
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return "(unreadable key)"
	}
	return ssh.FingerprintSHA256(k)
}
