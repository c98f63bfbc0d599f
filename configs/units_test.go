// Package configs_test checks the systemd units against the example
// configurations beside them: a unit that makes the gateway's state
// read-only, or stops it before its shutdown grace, fails here and not on
// a production host.
package configs_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rr-gateway/rr/internal/config"
	"github.com/rr-gateway/rr/internal/testtool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// unit is a systemd unit file's [Service] section: every value of each
// key, in order ("" for a key set empty).
type unit map[string][]string

func loadUnit(t *testing.T, name string) unit {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, section := unit{}, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not key=value: %q", name, line)
			}
			u[k] = append(u[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// one is the value of a key set once.
func (u unit) one(t *testing.T, k string) string {
	t.Helper()
	if len(u[k]) != 1 {
		t.Fatalf("%s= is set %d times, want once", k, len(u[k]))
	}
	return u[k][0]
}

// writable reports whether the unit lets the service write path: under
// its state directory or a ReadWritePaths entry.
func (u unit) writable(path string) bool {
	dirs := []string{}
	for _, d := range u["StateDirectory"] {
		dirs = append(dirs, "/var/lib/"+d)
	}
	for _, v := range u["ReadWritePaths"] {
		dirs = append(dirs, strings.Fields(v)...)
	}
	for _, d := range dirs {
		if path == d || strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

// configPath checks that ExecStart runs prog with -config under the
// unit's configuration directory and returns that file's name.
func (u unit) configPath(t *testing.T, prog string) string {
	t.Helper()
	args := strings.Fields(u.one(t, "ExecStart"))
	if len(args) != 3 || args[0] != "/usr/local/bin/"+prog || args[1] != "-config" {
		t.Fatalf("ExecStart=%s, want /usr/local/bin/%s -config FILE", strings.Join(args, " "), prog)
	}
	dir := "/etc/" + u.one(t, "ConfigurationDirectory")
	if filepath.Dir(args[2]) != dir {
		t.Fatalf("the config %s is not in the ConfigurationDirectory %s", args[2], dir)
	}
	return filepath.Base(args[2])
}

// duration reads a YAML duration as config.Load left it (a string).
func duration(t *testing.T, v any) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(fmt.Sprint(v))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGatewayUnit(t *testing.T) {
	u := loadUnit(t, "rr-gateway.service")
	var c map[string]any
	if err := config.Load(u.configPath(t, "rr-gateway"), &c); err != nil {
		t.Fatal(err)
	}
	if user := u.one(t, "User"); user == "" || user == "root" {
		t.Fatalf("the gateway runs as %q: it needs no privilege", user)
	}
	for k, want := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
		"MemoryDenyWriteExecute": "yes", "RestrictSUIDSGID": "yes", "UMask": "0077",
	} {
		if got := u.one(t, k); got != want {
			t.Errorf("%s=%s, want %s", k, got, want)
		}
	}
	// Everything the example configuration writes must stay writable under
	// ProtectSystem=strict.
	spool := c["recordings"].(map[string]any)["spool"]
	for _, p := range []any{c["host_key"], c["database"], spool} {
		if !u.writable(fmt.Sprint(p)) {
			t.Errorf("%s is read-only under the unit: not in StateDirectory or ReadWritePaths", p)
		}
	}
	// systemd's SIGKILL must not cut the gateway's own goodbye short.
	if stop, grace := duration(t, u.one(t, "TimeoutStopSec")), duration(t, c["shutdown_grace"]); stop <= grace {
		t.Errorf("TimeoutStopSec=%s is not longer than shutdown_grace %s", stop, grace)
	}
	analyze(t, "rr-gateway.service", u, 2.0)
}

// TestAgentUnit: the agent's sessions are its children and inherit its
// sandbox, so the unit holds none of it, and systemd signals only the
// agent, which ends its sessions itself.
func TestAgentUnit(t *testing.T) {
	u := loadUnit(t, "rr-agent.service")
	var c map[string]any
	if err := config.Load(u.configPath(t, "rr-agent"), &c); err != nil {
		t.Fatal(err)
	}
	if user := u["User"]; len(user) != 0 && user[0] != "root" {
		t.Errorf("User=%s: sessions run as other users, so the agent runs as root", user[0])
	}
	for _, k := range []string{"NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
		"PrivateDevices", "CapabilityBoundingSet", "SystemCallFilter", "RestrictAddressFamilies",
		"ProtectKernelLogs", "ProtectKernelModules", "ProtectClock", "UMask"} {
		if _, ok := u[k]; ok {
			t.Errorf("%s= would reach every responder's shell on the host", k)
		}
	}
	if km := u.one(t, "KillMode"); km != "process" {
		t.Errorf("KillMode=%s: the agent ends its sessions itself, as sshd does", km)
	}
	if key := fmt.Sprint(c["key"]); !u.writable(key) {
		t.Errorf("the agent's key %s is not under its StateDirectory", key)
	}
	if stop, grace := duration(t, u.one(t, "TimeoutStopSec")), duration(t, c["kill_grace"]); stop <= grace {
		t.Errorf("TimeoutStopSec=%s is not longer than kill_grace %s", stop, grace)
	}
	analyze(t, "rr-agent.service", u, 0)
}

// analyze runs systemd's own checks on the unit: verify (syntax, known
// directives) and, with maxExposure > 0, the sandbox's exposure score.
// ExecStart names a binary that is not installed here, so the unit is
// checked with it pointing at this test's own executable.
func analyze(t *testing.T, name string, u unit, maxExposure float64) {
	t.Helper()
	sa := testtool.Path(t, "systemd-analyze", "the units' syntax is not checked (apt-get install systemd)")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	prog := strings.Fields(u.one(t, "ExecStart"))[0]
	tmp := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(tmp, []byte(strings.Replace(string(b), "ExecStart="+prog, "ExecStart="+self, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", tmp).CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
	}
	if maxExposure == 0 {
		return
	}
	// The threshold counts tenths of the exposure level it prints.
	th := fmt.Sprintf("--threshold=%d", int(maxExposure*10))
	if out, err := exec.Command(sa, "security", "--offline=true", th, tmp).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze security %s: exposure over %.1f: %v\n%s", name, maxExposure, err, out)
	}
}
