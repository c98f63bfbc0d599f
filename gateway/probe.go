package gateway

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/rr-gateway/rr/store"
)

// probeCommands are the commands file-transfer clients run, unasked, to
// learn what the server's shell offers: rclone's SFTP backend runs echo
// (which shell), md5sum and sha1sum (remote hashes) and df (free space)
// on its first connection. On a login that named no host, the first word
// of a command is a host name; these are not hosts.
var probeCommands = map[string]bool{
	"echo": true, "printf": true, "true": true, "pwd": true, "cd": true, "df": true, "uname": true,
	"command": true, "type": true, "which": true,
	"md5sum": true, "sha1sum": true, "sha256sum": true, "sha512sum": true, "md5": true, "sha1": true,
	"crc32": true, "b3sum": true, "xxhsum": true, "xxh128sum": true, "xxh3sum": true, "rclone": true,
}

// maxProbesListed bounds the probe commands one connection's summary row
// names.
const maxProbesListed = 8

// probes counts the probe commands a connection ran: they are refused
// without a word (exit status 127, as a shell without the command) and
// summed up in one audit row when the connection ends, not one
// refused-session row each.
type probes struct {
	mu    sync.Mutex
	n     int
	names []string
}

// quietProbe refuses, quietly, a command whose first word is a probe
// command and not a host the person may reach (err is mayOpen's refusal
// of it). It reports whether it did.
func (c *personConn) quietProbe(host string, err error) bool {
	if c.loginHost != "" || !errors.Is(err, errNoSuchHost) || !probeCommands[host] {
		return false
	}
	c.probed.mu.Lock()
	defer c.probed.mu.Unlock()
	c.probed.n++
	if !slices.Contains(c.probed.names, host) && len(c.probed.names) < maxProbesListed {
		c.probed.names = append(c.probed.names, host)
	}
	c.log.Debug("probe command refused", "command", host)
	return true
}

// auditProbes writes the connection's one row of refused probe commands.
func (c *personConn) auditProbes() {
	c.probed.mu.Lock()
	defer c.probed.mu.Unlock()
	if c.probed.n == 0 {
		return
	}
	c.srv.audit(store.AuditEvent{Actor: c.person, Action: "session.open", Outcome: "denied", Source: c.remote,
		Detail: fmt.Sprintf("%d commands a client ran to probe the server (%s), refused: not hosts",
			c.probed.n, strings.Join(c.probed.names, ", "))})
	c.log.Info("probe commands refused", "count", c.probed.n, "commands", c.probed.names)
}
