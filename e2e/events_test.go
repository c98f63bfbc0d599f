package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// alertmanager is a real Alertmanager whose one receiver is rr's webhook.
type alertmanager struct {
	api string // http://127.0.0.1:PORT
}

// startAlertmanager runs Alertmanager with a webhook receiver posting to
// url with the bearer token in tokenFile, trusting caFile, and short
// group timings; it is stopped when the test ends.
func startAlertmanager(t *testing.T, url, tokenFile, caFile string) *alertmanager {
	t.Helper()
	bin := ""
	for _, name := range []string{"alertmanager", "prometheus-alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		bin = gatewaytest.Tool(t, "alertmanager", "run `make test`, which installs Debian's prometheus-alertmanager")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`route:
  receiver: rr
  group_by: [alertname, instance]
  group_wait: 200ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: rr
    webhook_configs:
      - url: %s
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: %s
          tls_config:
            ca_file: %s
`, url, tokenFile, caFile)), 0o600)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=debug")
	logf, _ := os.Create(filepath.Join(dir, "alertmanager.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("alertmanager log:\n%s", b)
		}
	})
	am := &alertmanager{api: "http://" + addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(am.api + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return am
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // a child process gives no readiness event
	}
}

// push posts one alert through Alertmanager's API v2.
func (am *alertmanager) push(t *testing.T, labels, annotations map[string]string, startsAt, endsAt time.Time) {
	t.Helper()
	a := map[string]any{"labels": labels, "annotations": annotations, "startsAt": startsAt.Format(time.RFC3339Nano)}
	if !endsAt.IsZero() {
		a["endsAt"] = endsAt.Format(time.RFC3339Nano)
	}
	body, _ := json.Marshal([]any{a})
	resp, err := http.Post(am.api+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("alertmanager: %d %s", resp.StatusCode, b)
	}
}

// mailBody returns the text of mailpit message id.
func mailBody(t *testing.T, api, id string) string {
	t.Helper()
	resp, err := http.Get(api + "/api/v1/message/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct{ Text string }
	json.NewDecoder(resp.Body).Decode(&m)
	return m.Text
}

var respondCommand = regexp.MustCompile(`ssh -t -p (\d+) rr@127\.0\.0\.1 event:(e-[0-9a-f]+)`)

// TestAlertmanagerEventToSession: an alert pushed into a real
// Alertmanager reaches rr over HTTPS as an event; the subscribed team's
// mail carries the command; that command, run with the real ssh, opens a
// recorded session on the event's host after the host's factors and the
// event's banner; the row, the recording's header and sessions --event
// carry the event; resolving the alert resolves the event.
func TestAlertmanagerEventToSession(t *testing.T) {
	cert, key := selfSigned(t)
	dir := t.TempDir()
	amToken, falcoToken := filepath.Join(dir, "am-token"), filepath.Join(dir, "falco-token")
	os.WriteFile(amToken, []byte("am-0123456789abcdef-token\n"), 0o600)
	os.WriteFile(falcoToken, []byte("falco-0123456789abcdef-token\n"), 0o600)
	httpsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g, _ := startProcGateway(t, fmt.Sprintf(`address: "{{people}}"
recordings: {spool: '{{dir}}/spool'}
https: {listen: %s, cert_file: %s, key_file: %s}
events: {alertmanager_token_file: %s, falco_token_file: %s}
`, httpsAddr, cert, key, amToken, falcoToken))
	w := g.w
	alice := someone{name: "alice", key: w.alice, mail: aliceMail}
	am := startAlertmanager(t, "https://"+httpsAddr+"/v1/events/alertmanager", amToken, cert)

	start := time.Now().Add(-time.Minute).UTC()
	labels := map[string]string{"alertname": "WebShellSpawned", "instance": "web-01:9100", "severity": "critical"}
	am.push(t, labels, map[string]string{"summary": "A shell was spawned by the web server"}, start, time.Time{})

	// The mail: one, with the command.
	msgs := waitMails(t, w.mail.API, aliceMail, 1)
	if !strings.Contains(msgs[0].Subject, "critical: WebShellSpawned on web-01") {
		t.Fatalf("subject %q", msgs[0].Subject)
	}
	var list struct {
		Messages []struct{ ID, Subject string }
	}
	resp, err := http.Get(w.mail.API + "/api/v1/messages")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	body := mailBody(t, w.mail.API, list.Messages[0].ID)
	m := respondCommand.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no command in the mail:\n%s", body)
	}
	id := m[2]
	if !strings.Contains(body, "summary:   A shell was spawned by the web server") {
		t.Errorf("mail body:\n%s", body)
	}

	// The command, as mailed, on a real terminal: factors, then the
	// event, then the shell on web-01.
	args := append(w.sshArgs(), strings.Fields(m[0])[2:]...) // -p PORT rr@127.0.0.1 event:ID
	tm := startTmux(t, 120, 40, "ssh -t "+shellQuote(args)+"; echo rr-exit=$?; sleep 60")
	w.terminalFactors(tm, 1)
	tm.waitFor("rr: security event " + id)
	tm.waitFor("rule:      WebShellSpawned")
	screen := tm.screen()
	for _, want := range []string{"priority:  critical", "host:      web-01", "summary:   A shell was spawned by the web server",
		"time:      " + start.Format(time.RFC3339)[:16]} {
		if !strings.Contains(screen, want) {
			t.Errorf("banner lacks %q:\n%s", want, screen)
		}
	}
	tm.line("echo marker-$((6*7))")
	tm.waitFor("marker-42")
	tm.line("exit 3")
	tm.waitFor("rr-exit=3")

	// One command from the event, the login naming it.
	ctx := testCtx(t, time.Minute)
	out, err := w.tool(t, ctx, alice, "ssh", "rr+event:"+id+"@127.0.0.1", "echo one-shot").Output()
	if err != nil || strings.TrimSpace(string(out)) != "one-shot" {
		t.Fatalf("rr+event: %q %v", out, err)
	}

	// The rows, the console, the audit trail.
	stdout, errOut, code := w.console(t, alice, "sessions --event "+id+" --json", "event show "+id+" --json")
	if code != 0 {
		t.Fatalf("console: %d %s", code, errOut)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	var rows []struct {
		ID, Host, Event, State string
		EventRule              string `json:"event_rule"`
	}
	var rowsRaw []map[string]any
	if err := dec.Decode(&rowsRaw); err != nil || len(rowsRaw) != 2 {
		t.Fatalf("sessions --event: %v %s", err, stdout)
	}
	b, _ := json.Marshal(rowsRaw)
	json.Unmarshal(b, &rows)
	for _, r := range rows {
		if r.Host != "web-01" || r.Event != id || r.EventRule != "WebShellSpawned" {
			t.Errorf("session row %+v", r)
		}
	}
	var ev struct {
		Status, Host, Rule, Respond string
		Sessions                    []string
	}
	if err := dec.Decode(&ev); err != nil || ev.Host != "web-01" || len(ev.Sessions) != 2 || ev.Status != "open" ||
		ev.Respond != m[0] {
		t.Fatalf("event show: %+v %v", ev, err)
	}
	if !w.auditedIn(t, g, "session.open", "allowed", "event "+id+": WebShellSpawned") {
		t.Error("no session.open audit row naming the event")
	}

	// The recording's header, decrypted with the stock tools, and played
	// by asciinema.
	shell := rows[len(rows)-1].ID // oldest last: the terminal session
	cast := decrypt(t, filepath.Join(g.dir, "spool", shell+".gz"), "pp-web-01")
	header := strings.SplitN(cast, "\n", 2)[0]
	if !strings.Contains(header, `"event":"`+id+`"`) || !strings.Contains(header, `"event_rule":"WebShellSpawned"`) {
		t.Fatalf("header %s", header)
	}
	castFile := filepath.Join(t.TempDir(), "s.cast")
	os.WriteFile(castFile, []byte(cast), 0o600)
	if out, err := exec.Command("script", "-qec", "asciinema cat "+castFile, "/dev/null").CombinedOutput(); err != nil || !strings.Contains(string(out), "marker-42") {
		t.Fatalf("asciinema cat: %v\n%s", err, out)
	}

	// Resolved in Alertmanager: resolved in rr.
	am.push(t, labels, map[string]string{"summary": "A shell was spawned by the web server"}, start, time.Now().Add(-time.Second))
	deadline := time.Now().Add(30 * time.Second)
	for {
		stdout, _, _ := w.console(t, alice, "event show "+id+" --json")
		if strings.Contains(stdout, `"status":"resolved"`) && strings.Contains(stdout, `"status_by":"alertmanager"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not resolved: %s", stdout)
		}
		time.Sleep(200 * time.Millisecond) // Alertmanager sends at its group_interval
	}
}

// auditedIn reports whether the process gateway's audit trail has action
// with outcome and detail.
func (w *world) auditedIn(t *testing.T, g *procGateway, action, outcome, detail string) bool {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(g.dir, "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.AuditEvents(context.Background(), store.AuditFilter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Outcome == outcome && e.Detail == detail {
			return true
		}
	}
	return false
}

// decrypt returns a recording's plaintext through the real gzip and
// openssl.
func decrypt(t *testing.T, path, passphrase string) string {
	t.Helper()
	cmd := exec.Command("sh", "-c", `gzip -dc "$1" | openssl enc -d -aes-256-ctr -pbkdf2 -pass env:RR_PP`, "sh", path)
	cmd.Env = append(os.Environ(), "RR_PP="+passphrase)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("decrypt %s: %v", path, err)
	}
	return string(out)
}

// TestFalcoOverHTTPS posts Falco's payloads to a real gateway process
// over TLS: accepted, stored, and the bad ones refused with their
// status.
func TestFalcoOverHTTPS(t *testing.T) {
	cert, key := selfSigned(t)
	dir := t.TempDir()
	tok := "falco-0123456789abcdef-token"
	os.WriteFile(filepath.Join(dir, "falco-token"), []byte(tok+"\n"), 0o600)
	httpsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g, _ := startProcGateway(t, fmt.Sprintf(`recordings: {spool: '{{dir}}/spool'}
https: {listen: %s, cert_file: %s, key_file: %s}
events: {falco_token_file: %s}
`, httpsAddr, cert, key, filepath.Join(dir, "falco-token")))
	pem, _ := os.ReadFile(cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	post := func(path, token string, body []byte) (int, string) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "https://"+httpsAddr+path, bytes.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	files, _ := filepath.Glob("../testdata/events/falco/*.json")
	accepted := 0
	for _, f := range files {
		body, _ := os.ReadFile(f)
		code, resp := post("/v1/events/falco", tok, body)
		want := 200
		if strings.HasPrefix(filepath.Base(f), "bad_") {
			want = 400
		} else {
			accepted++
		}
		if code != want {
			t.Errorf("%s: %d %s, want %d", filepath.Base(f), code, resp, want)
		}
	}
	good, _ := os.ReadFile("../testdata/events/falco/critical_hostname.json")
	for _, tc := range []struct {
		path, token string
		body        []byte
		code        int
	}{
		{"/v1/events/falco", "", good, 401},
		{"/v1/events/falco", "nope", good, 401},
		{"/v1/events/alertmanager", tok, []byte(`{"version":"4","alerts":[]}`), 401}, // no alertmanager token configured
		{"/v1/events/falco", tok, bytes.Repeat([]byte(" "), 2<<20), 413},
		{"/v1/events/falco", tok, []byte("{"), 400},
		{"/v1/nothing", tok, good, 404},
	} {
		if code, resp := post(tc.path, tc.token, tc.body); code != tc.code {
			t.Errorf("%s %q: %d %s, want %d", tc.path, tc.token, code, resp, tc.code)
		}
	}
	// Plain HTTP to the TLS port gets nothing stored either.
	if resp, err := http.Post("http://"+httpsAddr+"/v1/events/falco", "application/json", bytes.NewReader(good)); err == nil {
		resp.Body.Close()
	}
	w := g.w
	stdout, errOut, code := w.console(t, someone{name: "alice", key: w.alice, mail: aliceMail}, "events --json --limit 100")
	if code != 0 {
		t.Fatalf("%d %s", code, errOut)
	}
	var list []map[string]any
	json.Unmarshal([]byte(stdout), &list)
	// alice's team reaches "*": every event on a known host (web-01's
	// two); the rest are on hosts rr does not know.
	if len(list) != 2 {
		t.Errorf("alice sees %d events, want web-01's 2: %s", len(list), stdout)
	}
	_, metrics := g.get("/metrics")
	for _, want := range []string{
		fmt.Sprintf(`rr_event_deliveries_total{outcome="accepted",source="falco"} %d`, accepted),
		`rr_event_deliveries_total{outcome="unauthorized",source="falco"} 2`,
		`rr_event_deliveries_total{outcome="too_large",source="falco"} 1`,
		`rr_event_deliveries_total{outcome="bad_request",source="falco"} 3`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestDemoTakesAFalcoEvent: make demo WEB_PORT=… listens there over TLS
// with its self-signed pair, keeps each source's token in a 0600 file,
// and the curl line it prints posts an event for demo-host whose mail
// holds the command that responds to it.
func TestDemoTakesAFalcoEvent(t *testing.T) {
	d := startDemo(t)
	for _, src := range []string{"falco", "alertmanager"} {
		fi, err := os.Stat(filepath.Join(d.dir, "tokens", src))
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() < 17 {
			t.Fatalf("token %s: %v %v", src, fi, err)
		}
	}
	out := d.log.String()
	i, j := strings.Index(out, "curl -s --cacert"), strings.Index(out, "/v1/events/falco")
	if i < 0 || j < i || !strings.Contains(out[i:j], "127.0.0.1:"+d.web) {
		t.Fatalf("no curl line for port %s in the demo's output:\n%s", d.web, out)
	}
	line := out[i : j+len("/v1/events/falco")]
	resp, err := exec.Command("bash", "-c", line).CombinedOutput()
	if err != nil || !strings.Contains(string(resp), `"accepted":["e-`) {
		t.Fatalf("the demo's curl line: %v %s\n%s", err, resp, line)
	}
	id := regexp.MustCompile(`e-[0-9a-f]{6}`).FindString(string(resp))
	deadline := time.Now().Add(20 * time.Second)
	for {
		mails, _ := filepath.Glob(filepath.Join(d.dir, "outbox", "*.eml"))
		for _, m := range mails {
			b, _ := os.ReadFile(m)
			if strings.Contains(string(b), "rr@127.0.0.1 event:"+id) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail with the command for %s in %d mails", id, len(mails))
		}
		time.Sleep(100 * time.Millisecond) // the outbox is a folder: no event to await
	}
}
