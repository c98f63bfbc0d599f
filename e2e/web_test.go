package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
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

	"github.com/coder/websocket"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/internal/testtool"
)

// webGateway is a real rr-gateway with its HTTPS listener (event intake
// and web console) on a self-signed pair; alice has a password, and bob,
// in another team reaching web-01 too, has one as well.
type webGateway struct {
	*procGateway
	url       string
	falcoTok  string
	passwords map[string]string
}

func startWebGateway(t *testing.T) *webGateway {
	t.Helper()
	cert, key := selfSigned(t)
	dir := t.TempDir()
	tok := "falco-0123456789abcdef-token"
	os.WriteFile(filepath.Join(dir, "falco-token"), []byte(tok+"\n"), 0o600)
	pw := map[string]string{"alice": "alice-web-password", "bob": "bob-web-password"}
	hash := func(p string) string {
		h, err := auth.HashSecret(p)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g, _ := startProcGatewayWith(t, morePeople{
		alice:  fmt.Sprintf(", password_hash: '%s'", hash(pw["alice"])),
		people: fmt.Sprintf(", {name: bob, email: bob@example.test, role: advanced, password_hash: '%s'}", hash(pw["bob"])),
		teams:  `, {name: other_RR, rapid_response: true, members: [bob], hosts: [web-01]}`,
	}, fmt.Sprintf(`recordings: {spool: '{{dir}}/spool'}
https: {listen: %s, cert_file: %s, key_file: %s}
events: {falco_token_file: %s}
auth: {limits: {mails_per_person: 20}}
`, addr, cert, key, filepath.Join(dir, "falco-token")))
	gatewaytest.WaitPort(t, addr)
	return &webGateway{procGateway: g, url: "https://" + addr, falcoTok: tok, passwords: pw}
}

// client is an HTTPS client of the test's gateway (its certificate is
// the test's own).
func (g *webGateway) client(t *testing.T) *http.Client {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 30 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// webClient is a browser's worth of HTTP: its login cookie and CSRF token.
type webClient struct {
	t      *testing.T
	g      *webGateway
	c      *http.Client
	cookie string
	csrf   string
}

func (w *webClient) do(method, path string, body any, csrf bool) (int, map[string]any) {
	w.t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, w.g.url+path, rd)
	if w.cookie != "" {
		req.Header.Set("Cookie", w.cookie)
	}
	if csrf {
		req.Header.Set("X-CSRF-Token", w.csrf)
	}
	resp, err := w.c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-rr-login" && c.Value != "" {
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode {
				w.t.Errorf("login cookie %+v: want HttpOnly, Secure, SameSite=Strict", c)
			}
			w.cookie = c.Name + "=" + c.Value
		}
	}
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// login logs name in through the API.
func (g *webGateway) login(t *testing.T, name string) *webClient {
	t.Helper()
	w := &webClient{t: t, g: g, c: g.client(t)}
	code, m := w.do("POST", "/api/login", map[string]string{"username": name, "password": g.passwords[name]}, false)
	if code != 200 || m["done"] != true {
		t.Fatalf("login %s: %d %v", name, code, m)
	}
	w.csrf = m["csrf"].(string)
	return w
}

// ticket starts a session on web-01 as alice, answering the factors.
func (w *webClient) ticket(t *testing.T) string {
	t.Helper()
	before, _ := mails(w.g.w.mail.API, aliceMail)
	code, m := w.do("POST", "/api/start", map[string]string{"host": "web-01"}, true)
	if code != 200 {
		t.Fatalf("start: %d %v", code, m)
	}
	code, m = w.do("POST", "/api/start/answer", map[string]string{"conv": m["conv"].(string), "answer": "pp-web-01"}, true)
	if code != 200 {
		t.Fatalf("passphrase: %d %v", code, m)
	}
	mailed, err := newestCode(w.g.w.mail.API, aliceMail, len(before))
	if err != nil {
		t.Fatal(err)
	}
	code, m = w.do("POST", "/api/start/answer", map[string]string{"conv": m["conv"].(string), "answer": mailed}, true)
	if code != 200 || m["ticket"] == nil {
		t.Fatalf("code: %d %v", code, m)
	}
	return m["ticket"].(string)
}

// dial opens the terminal of ticket with origin.
func (w *webClient) dial(ticket, origin string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{"Cookie": {w.cookie}, "Origin": {origin}}
	return websocket.Dial(ctx, strings.Replace(w.g.url, "https:", "wss:", 1)+"/api/terminal?ticket="+ticket,
		&websocket.DialOptions{HTTPClient: w.c, HTTPHeader: h, CompressionMode: websocket.CompressionDisabled})
}

// TestWebConsoleInBrowser drives the web console in Debian's chromium
// (web/test/console.mjs): log in, a session with passphrase and mailed
// code, echo, resize, exit; the recording downloaded and decrypted with
// gzip and openssl; a live ssh session closed from the page, its person
// told who closed it; a session launched from an event. Screenshots of
// every page are left in the test's artifacts folder.
func TestWebConsoleInBrowser(t *testing.T) {
	testtool.Need(t, "node", "chromium", "gzip", "openssl", "tmux")
	if _, err := os.Stat("../web/node_modules/playwright-core"); err != nil {
		testtool.Missing(t, "playwright-core", "cd web && npm ci")
	}
	if _, err := os.Stat("../gateway/web/dist/app/index.html"); err != nil {
		testtool.Missing(t, "the web console's bundle", "make build")
	}
	g := startWebGateway(t)
	w := g.w

	// An event on web-01, to respond to.
	body, _ := os.ReadFile("../testdata/events/falco/critical_hostname.json")
	req, _ := http.NewRequest("POST", g.url+"/v1/events/falco", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+g.falcoTok)
	resp, err := g.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	event := regexp.MustCompile(`e-[0-9a-f]{6}`).FindString(string(b))
	if event == "" {
		t.Fatalf("no event id in %s", b)
	}

	// A live ssh session, to close from the page.
	before, _ := mails(w.mail.API, aliceMail)
	m := startTmux(t, 100, 30, "ssh "+shellQuote(w.sshArgs("-t", "rr@127.0.0.1", "web-01"))+"; echo EXIT=$?; sleep 600")
	w.terminalFactors(m, len(before))
	m.line("echo ssh-ready")
	m.waitFor("ssh-ready\n")
	live := g.liveSession(t)

	artifacts := filepath.Join(t.TempDir(), "screenshots")
	out := t.TempDir()
	os.MkdirAll(artifacts, 0o755)
	node := exec.Command("node", "test/console.mjs")
	node.Dir = "../web"
	node.Env = append(os.Environ(), "RR_URL="+g.url, "RR_PASSWORD="+g.passwords["alice"], "RR_PASSPHRASE=pp-web-01",
		"RR_MAILPIT="+w.mail.API, "RR_MAIL_TO="+aliceMail, "RR_EVENT="+event, "RR_SSH_SESSION="+live,
		"RR_OUT="+out, "RR_ARTIFACTS="+artifacts)
	logs, err := node.CombinedOutput()
	t.Logf("browser run (screenshots in %s):\n%s", artifacts, logs)
	if keep := os.Getenv("RR_WEB_ARTIFACTS"); keep != "" {
		exec.Command("cp", "-r", artifacts+"/.", keep).Run()
	}
	if err != nil {
		t.Fatalf("the browser run failed: %v", err)
	}
	var res struct {
		WrongPassword, WrongCode, Download, WebSession string
		Sizes                                          []string
		EventBanner, Watched, Window                   bool
		Errors                                         []string
	}
	rb, _ := os.ReadFile(filepath.Join(out, "result.json"))
	json.Unmarshal(rb, &res)
	if !strings.Contains(res.WrongPassword, "permission denied") {
		t.Errorf("a wrong password read %q", res.WrongPassword)
	}
	if len(res.Errors) > 0 {
		t.Errorf("the browser logged errors: %q", res.Errors)
	}
	if !res.Window {
		t.Error("no terminal in its own window")
	}
	if !res.Watched {
		t.Error("the watch did not run, or showed the passphrase")
	}
	if !res.EventBanner {
		t.Error("the event's session did not show the event first")
	}

	// The download is the stored file: the stock tools decrypt it, and its
	// header says the web console was the client.
	plain := decrypt(t, res.Download, "pp-web-01")
	if !strings.Contains(plain, `"client":"rr web console"`) || !strings.Contains(plain, `hello`) {
		t.Errorf("the downloaded recording:\n%.600s", plain)
	}
	// The ssh client was told who watched it, then who closed it.
	m.waitFor("rr: alice is watching this session")
	m.waitFor("Session closed by alice: closed from the web test")
	m.waitFor("EXIT=")
	// The audit trail has the web's actions as the console's and the
	// SSH path's: the kill with its reason, the watch, the download.
	for _, a := range [][3]string{{"session.kill", "allowed", "closed from the web test"},
		{"session.watch.end", "allowed", "stopped by the watcher"}, {"auth.login", "denied", "wrong password"}} {
		if !g.w.auditedIn(t, g.procGateway, a[0], a[1], a[2]) {
			t.Errorf("no %s %s %q in the audit trail", a[0], a[1], a[2])
		}
	}

	g.webRefusals(t, res.WebSession)
}

// liveSession is the id of alice's one live session.
func (g *webGateway) liveSession(t *testing.T) string {
	t.Helper()
	stdout, errOut, code := g.w.console(t, g.ann, "sessions --live --json")
	if code != 0 {
		t.Fatalf("%d %s", code, errOut)
	}
	var list []sessionJSON
	json.Unmarshal([]byte(stdout), &list)
	if len(list) != 1 {
		t.Fatalf("live sessions: %s", stdout)
	}
	return list[0].ID
}

// webRefusals: what the console refuses, through its API as a script
// would send it (the browser sends none of these).
func (g *webGateway) webRefusals(t *testing.T, aliceSession string) {
	anon := &webClient{t: t, g: g, c: g.client(t)}
	if code, _ := anon.do("POST", "/api/login", map[string]string{"username": "alice", "password": "wrong"}, false); code != 401 {
		t.Errorf("wrong password: %d, want 401", code)
	}
	if code, _ := anon.do("GET", "/api/sessions", nil, false); code != 401 {
		t.Errorf("no login: %d, want 401", code)
	}
	if code, _ := anon.do("POST", "/api/login", `{"username":`, false); code != 400 {
		t.Errorf("malformed login: %d, want 400", code)
	}
	a := g.login(t, "alice")
	if code, _ := a.do("POST", "/api/start", map[string]string{"host": "web-01"}, false); code != 403 {
		t.Errorf("start without the CSRF token: %d, want 403", code)
	}
	if code, _ := a.do("POST", "/api/sessions/"+aliceSession+"/close", map[string]string{}, false); code != 403 {
		t.Errorf("close without the CSRF token: %d, want 403", code)
	}
	if code, _ := a.do("POST", "/api/start", `{"host": 7}`, true); code != 400 {
		t.Errorf("malformed start: %d, want 400", code)
	}
	// A WebSocket from another origin is refused, and burns its ticket.
	ticket := a.ticket(t)
	if c, resp, err := a.dial(ticket, "https://evil.example"); err == nil || resp == nil || resp.StatusCode != 403 {
		if c != nil {
			c.CloseNow()
		}
		t.Errorf("WebSocket from another origin: %v %v, want 403", resp, err)
	}
	if c, resp, err := a.dial(ticket, g.url); err == nil || resp == nil || resp.StatusCode != 403 {
		if c != nil {
			c.CloseNow()
		}
		t.Errorf("a ticket used twice: %v %v, want 403", resp, err)
	}
	// Input is bounded: a message over the limit closes the terminal.
	c, _, err := a.dial(a.ticket(t), g.url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c.Write(ctx, websocket.MessageBinary, bytes.Repeat([]byte("x"), 1<<20))
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
				t.Errorf("an oversized message: %v, want close 1009", err)
			}
			break
		}
	}
	c.CloseNow()
	// Another team's session reads as none.
	bob := g.login(t, "bob")
	if code, _ := bob.do("GET", "/api/recordings/"+aliceSession, nil, false); code != 404 {
		t.Errorf("bob downloads alice's team's recording: %d, want 404", code)
	}
	if code, _ := bob.do("POST", "/api/sessions/"+aliceSession+"/close", map[string]string{}, true); code != 404 {
		t.Errorf("bob closes alice's team's session: %d, want 404", code)
	}
	// A cookie is worth nothing after logout.
	old := a.cookie
	if code, _ := a.do("POST", "/api/logout", map[string]string{}, true); code != 200 {
		t.Errorf("logout: %d", code)
	}
	a.cookie = old
	if code, _ := a.do("GET", "/api/me", nil, false); code != 401 {
		t.Errorf("a cookie replayed after logout: %d, want 401", code)
	}
}
