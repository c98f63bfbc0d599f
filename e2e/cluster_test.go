package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rr-gateway/rr/internal/pgtest"
	"github.com/rr-gateway/rr/internal/testtool"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlstore"
)

// clusterLease is the gateways' lease in these tests: short, so that a
// dead gateway is noticed quickly.
const clusterLease = 3 * time.Second

// procCluster is two rr-gateway processes, gw-1 and gw-2, on one
// PostgreSQL database with one host key, and web-01's rr-agent holding a
// tunnel to each.
type procCluster struct {
	g1, g2   *procGateway
	cmd1     *exec.Cmd // gw-1's process
	dsn      string    // the database both gateways share
	agentLog string
}

// startProcCluster starts the two gateways on a fresh PostgreSQL
// database (each connecting as application gw-1 or gw-2), with cluster
// as their cluster settings besides advertise ("lease: 3s, kill_poll:
// 100ms") and extra appended to each config ("{{dir}}" is each gateway's
// own folder), then a real rr-agent given both, and returns once the
// agent holds a tunnel to each.
func startProcCluster(t *testing.T, cluster, extra string, env ...string) *procCluster {
	t.Helper()
	testtool.Need(t, "ssh", "gzip", "openssl")
	c := &procCluster{dsn: pgtest.DB(t)}
	pp := newProcPeople(t)
	shared := t.TempDir() // the host key
	start := func(name string) (*procGateway, *exec.Cmd) {
		conf := fmt.Sprintf("name: %s\ncluster: {advertise: \"{{people}}\", %s}\n", name, cluster) + extra
		return pp.gateway(t, shared, "store: {driver: postgres}\n", conf,
			append([]string{"RR_STORE_DSN=" + c.dsn + "&application_name=" + name}, env...)...)
	}
	c.g1, c.cmd1 = start("gw-1")
	c.g2, _ = start("gw-2")
	if out, err := exec.Command("go", "build", "-o", pp.bin+"/", "github.com/rr-gateway/rr/cmd/rr-agent").CombinedOutput(); err != nil {
		t.Fatalf("build rr-agent: %v\n%s", err, out)
	}
	fp, err := exec.Command(filepath.Join(pp.bin, "rr-gateway"), "fingerprint", "-config", c.g1.cfg).Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	// gw-2 by name: the agent resolves it (to 127.0.0.1) and dials the
	// address.
	_, port2, _ := net.SplitHostPort(c.g2.agents)
	os.WriteFile(cfg, []byte(fmt.Sprintf("gateways: [%s, localhost:%s]\ngateway_host_key: %q\nhost: web-01\nkey: %s\n"+
		"backoff_min: 100ms\nbackoff_max: 1s\nlog: {format: text, level: info}\n",
		c.g1.agents, port2, strings.TrimSpace(string(fp)), pp.agentKey.Path)), 0o600)
	c.agentLog = filepath.Join(dir, "agent.log")
	logf, _ := os.Create(c.agentLog)
	agent := exec.Command(filepath.Join(pp.bin, "rr-agent"), "-config", cfg)
	agent.Stdout, agent.Stderr = logf, logf
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait(); logf.Close() })
	for _, g := range []*procGateway{c.g1, c.g2} {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) { // other processes
			if _, m := g.get("/metrics"); strings.Contains(m, "rr_agents_connected 1") {
				break
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(c.agentLog)
				t.Fatalf("rr-agent never reached %s:\n%s", g.agents, log)
			}
		}
	}
	if log, _ := os.ReadFile(c.agentLog); !strings.Contains(string(log), "gateway="+c.g2.agents+" resolved_from=localhost:"+port2) {
		t.Fatalf("the agent's tunnel to gw-2 is not the address localhost resolved to:\n%s", log)
	}
	return c
}

// dropped reports whether the agent's tunnel to g ever went down, as its
// log says.
func (c *procCluster) dropped(g *procGateway) bool {
	log, _ := os.ReadFile(c.agentLog)
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "gateway="+g.agents) && strings.Contains(line, "connection lost") {
			return true
		}
	}
	return false
}

// openStore opens the shared store, as a third party reading it.
func (c *procCluster) openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	return openPG(t, c.dsn).Store
}

// longSession starts, through g, a session on web-01 that prints
// "started" then sleeps; it returns once "started" arrived, with the ssh
// command and its stderr.
func longSession(t *testing.T, g *procGateway) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	ctx := testCtx(t, 2*time.Minute)
	cmd := exec.CommandContext(ctx, "ssh", g.w.sshArgs("rr+web-01@127.0.0.1", "echo started; sleep 120")...)
	cmd.Env = g.w.answers(t, nil)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "started\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no session through %s: %q %q", g.people, line, stderr.String())
	}
	return cmd, &stderr
}

// onlyLive returns the one live session's row.
func onlyLive(t *testing.T, st *sqlstore.Store) store.Session {
	t.Helper()
	rows, err := st.Sessions(context.Background(), store.SessionFilter{LiveOnly: true})
	if err != nil || len(rows) != 1 {
		t.Fatalf("live sessions: %+v %v", rows, err)
	}
	return rows[0]
}

// TestClusterKillFromThePeer: two gateways on PostgreSQL; a session
// through gateway 1 is listed on gateway 2 with the gateway holding it and
// killed from there: the victim is told by whom, the row is killed, and
// the recording in gateway 1's spool is finalized and decrypts with gzip
// and openssl.
func TestClusterKillFromThePeer(t *testing.T) {
	// Kills are polled for, and leases renewed, every twenty minutes: the
	// kill can only come through PostgreSQL's NOTIFY, at once.
	c := startProcCluster(t, "lease: 1h, kill_poll: 1h", "recordings: {spool: '{{dir}}/spool', flush_interval: 200ms}\n")
	pgtest.WaitListening(t, c.dsn, "rr_kill", 2)
	victim, victimErr := longSession(t, c.g1)
	st := c.openStore(t)
	row := onlyLive(t, st)
	if row.Gateway != "gw-1" || row.GatewayAdvertise != c.g1.people {
		t.Fatalf("row's gateway: %q %q, want gw-1 at %s", row.Gateway, row.GatewayAdvertise, c.g1.people)
	}

	// Every gateway holds web-01's tunnel; both are alive.
	out, errOut, code := c.g2.w.console(t, c.g2.ann, "hosts", "gateways")
	if code != 0 || !strings.Contains(out, "gw-1@") || !strings.Contains(out, "gw-2@") ||
		!strings.Contains(out, "gw-1  "+c.g1.people) || !strings.Contains(out, "gw-2  "+c.g2.people) {
		t.Fatalf("hosts and gateways on gw-2: exit %d\n%s\n%s", code, out, errOut)
	}

	out, errOut, code = c.g2.w.console(t, c.g2.ann, "sessions --live", "kill "+row.ID+" incident over")
	if code != 0 || !strings.Contains(out, row.ID) || !strings.Contains(out, "gw-1") ||
		!strings.Contains(out, "killed session "+row.ID) {
		t.Fatalf("gw-2's console: exit %d\n%s\n%s", code, out, errOut)
	}
	// The kill answered once the row was final.
	x, err := st.Session(context.Background(), row.ID)
	if err != nil || x.State != store.StateKilled || x.KilledBy != "ann" || len(x.RecordingSHA256) != 64 {
		t.Fatalf("row when the kill answered: %+v %v", x, err)
	}
	victim.Wait()
	if !strings.Contains(victimErr.String(), "Session closed by ann: incident over") {
		t.Fatalf("the victim read %q", victimErr.String())
	}
	if plain := decrypt(t, x.Recording, "pp-web-01"); !strings.Contains(plain, "started") || !strings.Contains(plain, "killed by ann") {
		t.Fatalf("recording: %.400q", plain)
	}
	if !strings.HasPrefix(x.Recording, c.g1.dir) {
		t.Fatalf("recording at %s, not in gw-1's spool", x.Recording)
	}
}

// TestClusterGatewayDies: two gateways on PostgreSQL and one bucket on
// versitygw; gateway 1 SIGKILLed mid-session: gateway 2
// marks the session interrupted within the lease (the row says where the
// recording is), new sessions go on through gateway 2 whose tunnel from
// the agent never dropped; gateway 1 restarted seals its spool and
// uploads it to the bucket.
func TestClusterGatewayDies(t *testing.T) {
	s3 := startS3(t, "rec")
	c := startProcCluster(t, fmt.Sprintf("lease: %s, kill_poll: 100ms", clusterLease), fmt.Sprintf(`recordings:
  spool: '{{dir}}/spool'
  flush_interval: 200ms
  s3: {bucket: rec, endpoint: "http://%s", path_style: true, prefix: "r/", access_key_id: rr-access, secret_access_key_env: RR_TEST_S3_SECRET}
`, s3.addr), "RR_TEST_S3_SECRET=rr-secret-key")
	victim, _ := longSession(t, c.g1)
	st := c.openStore(t)
	row := onlyLive(t, st)
	time.Sleep(600 * time.Millisecond) // let a flush pass (flush_interval 200ms)
	c.cmd1.Process.Signal(syscall.SIGKILL)
	c.cmd1.Wait()
	killed := time.Now()
	victim.Process.Kill()
	victim.Wait()

	// A peer notices once the lease has run out: within the lease and
	// one renewal after the kill; twice the lease fails the test.
	ctx := context.Background()
	var x store.Session
	for {
		var err error
		if x, err = st.Session(ctx, row.ID); err != nil {
			t.Fatal(err)
		}
		if x.State != store.StateLive {
			break
		}
		if time.Since(killed) > 2*clusterLease {
			t.Fatalf("gw-1's session still live %s after it was killed", time.Since(killed))
		}
		time.Sleep(50 * time.Millisecond) // gw-2 is another process: the store is all there is to watch
	}
	t.Logf("gw-1's session marked %s %s after the SIGKILL", x.State, time.Since(killed).Round(10*time.Millisecond))
	if x.State != store.StateInterrupted || !strings.Contains(x.EndReason, "gw-1's spool") {
		t.Fatalf("row after gw-1 died: %+v", x)
	}
	out, errOut, _ := c.g2.w.console(t, c.g2.ann, "show "+row.ID)
	if !strings.Contains(out, "in gw-1's spool; gw-1 seals and uploads it when it restarts") {
		t.Fatalf("show on gw-2:\n%s\n%s", out, errOut)
	}

	// Through gateway 2, new sessions go on; its tunnel never dropped.
	ctx2 := testCtx(t, time.Minute)
	cmd := exec.CommandContext(ctx2, "ssh", c.g2.w.sshArgs("rr+web-01@127.0.0.1", "echo via-gw-2")...)
	cmd.Env = c.g2.w.answers(t, nil)
	if got, err := cmd.Output(); err != nil || string(got) != "via-gw-2\n" {
		t.Fatalf("session through gw-2: %q %v", got, err)
	}
	if c.dropped(c.g2) || !c.dropped(c.g1) {
		t.Fatalf("the agent's tunnels: gw-1 dropped %v (want true), gw-2 dropped %v (want false)", c.dropped(c.g1), c.dropped(c.g2))
	}

	// Gateway 1 comes back: its spool is sealed and goes to the bucket.
	c.g1.start()
	obj := filepath.Join(s3.dir, "rec", "r", row.ID+".gz")
	deadline := time.Now().Add(40 * time.Second)
	for {
		x, _ = st.Session(ctx, row.ID)
		if x.Recording == "s3://rec/r/"+row.ID+".gz" && len(x.RecordingSHA256) == 64 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gw-1's recording not sealed and uploaded after its restart: %+v\n%s", x, c.g1.log())
		}
		time.Sleep(50 * time.Millisecond) // the gateway is another process
	}
	plain, _ := exec.Command("sh", "-c", `gzip -dc "$1" 2>/dev/null | openssl enc -d -aes-256-ctr -pbkdf2 -k pp-web-01`, "sh", obj).Output()
	if !strings.Contains(string(plain), "started") {
		t.Fatalf("the uploaded prefix lacks the session's output: %.300q", plain)
	}
	if _, err := os.Stat(filepath.Join(c.g1.dir, "spool", row.ID+".gz")); !os.IsNotExist(err) {
		t.Fatalf("the recording is still in gw-1's spool: %v", err)
	}
	// In the bucket, it downloads from the other gateway too.
	dest := filepath.Join(t.TempDir(), "got.gz")
	scp := c.g2.w.tool(t, testCtx(t, time.Minute), c.g2.ann, "scp", "rr@127.0.0.1:recordings/"+row.ID+".gz", dest)
	if out, err := scp.CombinedOutput(); err != nil {
		t.Fatalf("scp from gw-2 of a recording in S3: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, mustRead(t, obj)) {
		t.Fatal("the recording fetched from gw-2 differs from the bucket's")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
