package admin

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/store"
)

// errEnrolled refuses a token for a host whose agent is enrolled.
func errEnrolled(host string) error {
	return fmt.Errorf("host %s has an enrolled agent; to replace it: host reenroll %s", host, host)
}

// tokenArgs parses NAME [--ttl D] of host token and host reenroll, and
// checks the file's rule for tokens (Config.TokenRule). It returns the
// host, the token's expiry and what the audit adds to the detail.
func (c *Console) tokenArgs(x *call) (host string, expires time.Time, auditReason string, err error) {
	fs := x.flags()
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token stays valid")
	args, err := x.parse(fs, 1, 1)
	if err != nil {
		return "", time.Time{}, "", err
	}
	if *ttl <= 0 {
		return "", time.Time{}, "", errors.New("--ttl must be positive")
	}
	host = args[0]
	if err := checkName("host", host); err != nil {
		return "", time.Time{}, "", err
	}
	reason, err := c.tokenRule(host)
	if err != nil {
		return "", time.Time{}, "", err
	}
	if reason != "" {
		auditReason = "; the configuration file allows it: " + reason
	}
	return host, c.cfg.Now().Add(*ttl).UTC(), auditReason, nil
}

// tokenRule is Config.TokenRule, or, without one, the refusal of hosts
// the configuration file declares.
func (c *Console) tokenRule(host string) (string, error) {
	if c.cfg.TokenRule != nil {
		return c.cfg.TokenRule(host)
	}
	if c.cfg.Declared != nil && c.cfg.Declared("host", host) {
		return "", fmt.Errorf("host %s is declared in the gateway's configuration file, which is applied at every start; change it there", host)
	}
	return "", nil
}

// printToken shows a new token, once.
func printToken(x *call, host, token string, expires time.Time) error {
	if x.json {
		return writeJSON(x.out, struct {
			Host    string    `json:"host"`
			Token   string    `json:"token"`
			Expires time.Time `json:"expires"`
		}{host, token, expires})
	}
	_, err := fmt.Fprintf(x.out, "one-time enrollment token for %s, valid until %s (shown once):\n%s\n",
		host, expires.Format(time.RFC3339), token)
	return err
}

// hostReenroll replaces a host's agent: the bound key is cleared and the
// host's unused tokens spent (one transaction, so the old key stops
// working before anything else), then its live agent connections are
// dropped, and a new token is shown. In that order: an agent dropped
// first could reconnect with the old key before it was cleared.
func (c *Console) hostReenroll(x *call) error {
	host, expires, reason, err := c.tokenArgs(x)
	if err != nil {
		return err
	}
	token, hash := store.NewEnrollToken()
	old, err := c.cfg.Store.ReenrollHost(x.ctx, host, hash, expires, c.cfg.Now())
	if err != nil {
		return c.storeErr(err)
	}
	dropped := c.cfg.DropAgents(host)
	var d strings.Builder
	if old == "" {
		d.WriteString("no key was bound")
	} else {
		d.WriteString("unbound key " + fingerprint(old))
	}
	fmt.Fprintf(&d, ", %d agent connections dropped, new token expires %s%s", dropped, expires.Format(time.RFC3339), reason)
	x.detail = d.String()
	c.log.Warn("host reenrolled", "host", host, "by", x.who.Person, "detail", x.detail)
	return printToken(x, host, token, expires)
}

// fingerprint is the SHA256: fingerprint of an authorized_keys line, or
// "(unreadable key)".
func fingerprint(authorizedKey string) string {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return "(unreadable key)"
	}
	return ssh.FingerprintSHA256(k)
}
