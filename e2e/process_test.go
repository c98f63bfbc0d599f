package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/internal/sshkit"
)

// buildBinaries builds the programs into a fresh folder.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/rr-gateway/rr/cmd/rr-gateway", "github.com/rr-gateway/rr/cmd/rr")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return dir
}

// procGateway is a real rr-gateway process (alice in ops_RR, web-01 with
// passphrase pp-web-01, mail through a mailpit) and an in-process agent
// for web-01 dialling it.
type procGateway struct {
	t      *testing.T
	bin    string // where rr-gateway and rr are
	dir    string // its state: host_key, rr.db, spool/, gateway.log
	cfg    string
	env    []string
	people string
	agents string  // its agents' port
	http   string  // its metrics and health port
	w      *world  // ssh as alice against this gateway
	ann    someone // an admin in no team, for the console
}

// procPeople is what the gateways of one test share: the binaries, the
// mailpit, the people and the agent's key.
type procPeople struct {
	bin      string
	mp       *mailpit
	alice    gatewaytest.Key
	ann      someone
	agentKey gatewaytest.Key
	verifier string
	more     morePeople
}

// morePeople adds to the people and teams of the gateways' config: fields
// of alice's entry (", password_hash: …"), and entries of people and teams
// (", {name: …}").
type morePeople struct{ alice, people, teams string }

func newProcPeople(t *testing.T) *procPeople {
	t.Helper()
	verifier, err := auth.HashSecret("pp-web-01")
	if err != nil {
		t.Fatal(err)
	}
	return &procPeople{bin: buildBinaries(t), mp: startMailpit(t), alice: gatewaytest.NewKey(t, "alice"),
		ann: someone{"ann", gatewaytest.NewKey(t, "ann"), "ann@example.test"}, agentKey: gatewaytest.NewKey(t, "agent"),
		verifier: verifier}
}

// sqliteStore is the store section of a gateway's config on the SQLite
// file path: what a test of several gateways swaps for another store.
func sqliteStore(path string) string { return "database: " + path + "\n" }

// startProcGateway writes the config (extra is appended: recordings …;
// "{{dir}}" in it is the gateway's state folder, "{{people}}" the
// people's address),
// starts the gateway and the agent, and returns once both are up.
func startProcGateway(t *testing.T, extra string, env ...string) (*procGateway, *exec.Cmd) {
	t.Helper()
	return startProcGatewayWith(t, morePeople{}, extra, env...)
}

// startProcGatewayWith is startProcGateway with more people.
func startProcGatewayWith(t *testing.T, more morePeople, extra string, env ...string) (*procGateway, *exec.Cmd) {
	t.Helper()
	pp := newProcPeople(t)
	pp.more = more
	g, cmd := pp.gateway(t, "", sqliteStore("{{dir}}/rr.db"), extra, env...)
	fp, err := exec.Command(filepath.Join(g.bin, "rr-gateway"), "fingerprint", "-config", g.cfg).Output()
	if err != nil {
		t.Fatal(err)
	}
	gatewaytest.StartAgent(t, &gatewaytest.Gateway{AgentAddr: g.agents, Fingerprint: strings.TrimSpace(string(fp))}, "web-01", pp.agentKey, nil)
	return g, cmd
}

// gateway writes a gateway's config in a folder of its own, with its
// host key in keyDir (its own folder if ""; gateways behind one name
// share it) and st as its store section ("{{dir}}" in either is its
// folder), starts it and returns once it listens.
func (pp *procPeople) gateway(t *testing.T, keyDir, st, extra string, env ...string) (*procGateway, *exec.Cmd) {
	t.Helper()
	g := &procGateway{t: t, bin: pp.bin, dir: t.TempDir(), env: env, ann: pp.ann}
	if keyDir == "" {
		keyDir = g.dir
	}
	extra = strings.ReplaceAll(extra, "{{dir}}", g.dir)
	st = strings.ReplaceAll(st, "{{dir}}", g.dir)
	g.people = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	extra = strings.ReplaceAll(extra, "{{people}}", g.people)
	g.agents = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g.http = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g.cfg = filepath.Join(g.dir, "gateway.yaml")
	os.WriteFile(g.cfg, []byte(fmt.Sprintf(`listen: %s
agent_listen: %s
http_listen: %s
host_key: %s/host_key
%slog: {format: text, level: debug}
mail: {mode: smtp, from: rr@gateway.test, smtp: {host: 127.0.0.1, port: %d, tls: none}}
people: [{name: alice, email: %s, role: advanced, key_files: [%s.pub]%s}, {name: ann, email: %s, role: admin, key_files: [%s.pub]}%s]
teams: [{name: ops_RR, rapid_response: true, members: [alice], hosts: ["*"]}%s]
hosts: [{name: web-01, passphrase_verifier: '%s', agent_key_file: %s.pub}]
%s`, g.people, g.agents, g.http, keyDir, st, pp.mp.SMTPPort, aliceMail, pp.alice.Path, pp.more.alice, pp.ann.mail, pp.ann.key.Path,
		pp.more.people, pp.more.teams, pp.verifier, pp.agentKey.Path, extra)), 0o600)
	cmd := g.start()
	hostKey, err := sshkit.LoadOrCreateKey(filepath.Join(keyDir, "host_key"))
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(g.people)
	known := filepath.Join(g.dir, "known_hosts")
	os.WriteFile(known, []byte(fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(hostKey.PublicKey()))), 0o644)
	g.w = &world{mail: pp.mp, alice: pp.alice, log: filepath.Join(g.dir, "askpass.log"), logLevel: "ERROR",
		gw: &gatewaytest.Gateway{PeopleAddr: g.people, KnownHosts: known}}
	return g, cmd
}

// start runs rr-gateway and waits until it listens; it is killed when the
// test ends.
func (g *procGateway) start() *exec.Cmd {
	g.t.Helper()
	cmd := exec.Command(filepath.Join(g.bin, "rr-gateway"), "-config", g.cfg)
	cmd.Env = append(os.Environ(), g.env...)
	logf, _ := os.OpenFile(g.logPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	gatewaytest.WaitPort(g.t, g.people)
	return cmd
}

func (g *procGateway) logPath() string { return filepath.Join(g.dir, "gateway.log") }

// get fetches path from the gateway's HTTP port.
func (g *procGateway) get(path string) (int, string) {
	g.t.Helper()
	resp, err := http.Get("http://" + g.http + path)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (g *procGateway) log() string {
	b, _ := os.ReadFile(g.logPath())
	return string(b)
}
