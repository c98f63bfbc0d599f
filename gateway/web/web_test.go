package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/recorder"
	"github.com/rr-gateway/rr/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is an in-process gateway with web-01's agent, alice (advanced, in
// ops_RR) and bob (in other_RR, reaching web-01 too), and the web console
// on an httptest TLS server in front of it.
type env struct {
	gw  *gatewaytest.Gateway
	h   *Handler
	srv *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	gw := gatewaytest.StartGateway(t, gatewaytest.Config{})
	gw.AddPerson("alice", "advanced", "alice@example.test", "alice-pw")
	gw.AddPerson("bob", "advanced", "bob@example.test", "bob-pw")
	gw.AddPerson("stan", "standard", "stan@example.test", "stan-pw")
	gw.AddTeam("ops_RR", true, []string{"alice", "stan"}, "*")
	gw.AddTeam("other_RR", true, []string{"bob"}, "web-01")
	key := gw.AddHost("web-01")
	gw.SetPassphrase("web-01", "pp-web-01")
	gatewaytest.StartAgent(t, gw, "web-01", key, nil)
	gw.WaitOnline("web-01")
	h, err := New(Config{Gateway: gw.Srv, Auth: gw.Auth(), Logger: gatewaytest.Logger(t, "web"),
		Assets: os.DirFS("dist/placeholder")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(func() { srv.Close(); h.Close() })
	return &env{gw: gw, h: h, srv: srv}
}

// browser is one browser's cookie and CSRF token.
type browser struct {
	t            *testing.T
	e            *env
	cookie, csrf string
}

func (b *browser) call(method, path string, body any, csrf bool) (int, map[string]any) {
	b.t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, b.e.srv.URL+path, rd)
	if b.cookie != "" {
		req.Header.Set("Cookie", b.cookie)
	}
	if csrf {
		req.Header.Set("X-CSRF-Token", b.csrf)
	}
	resp, err := b.e.srv.Client().Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == cookieName && c.Value != "" {
			b.cookie = c.Name + "=" + c.Value
		}
	}
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (e *env) login(t *testing.T, name, password string) *browser {
	t.Helper()
	b := &browser{t: t, e: e}
	code, m := b.call("POST", "/api/login", map[string]string{"username": name, "password": password}, false)
	if code != 200 {
		t.Fatalf("login %s: %d %v", name, code, m)
	}
	b.csrf = m["csrf"].(string)
	return b
}

// start answers web-01's factors and returns the terminal's ticket.
func (b *browser) start(target map[string]string) string {
	b.t.Helper()
	before := b.e.gw.Outbox.Count()
	code, m := b.call("POST", "/api/start", target, true)
	if code != 200 || m["question"].(map[string]any)["prompt"] != "Passphrase for web-01:" {
		b.t.Fatalf("start: %d %v", code, m)
	}
	if code, m = b.call("POST", "/api/start/answer", map[string]string{"conv": m["conv"].(string), "answer": "pp-web-01"}, true); code != 200 {
		b.t.Fatalf("passphrase: %d %v", code, m)
	}
	mailed, err := b.e.gw.Outbox.CodeAfter(before)
	if err != nil {
		b.t.Fatal(err)
	}
	code, m = b.call("POST", "/api/start/answer", map[string]string{"conv": m["conv"].(string), "answer": mailed}, true)
	if code != 200 || m["ticket"] == nil {
		b.t.Fatalf("code: %d %v", code, m)
	}
	return m["ticket"].(string)
}

func (b *browser) terminal(ctx context.Context, ticket string) (*websocket.Conn, error) {
	c, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(b.e.srv.URL, "https")+"/api/terminal?ticket="+ticket+"&cols=90&rows=20",
		&websocket.DialOptions{HTTPClient: b.e.srv.Client(), CompressionMode: websocket.CompressionDisabled,
			HTTPHeader: http.Header{"Cookie": {b.cookie}, "Origin": {b.e.srv.URL}}})
	return c, err
}

// readUntil reads the terminal's output until it holds want.
func readUntil(t *testing.T, ctx context.Context, c *websocket.Conn, want string) string {
	t.Helper()
	var seen strings.Builder
	for !strings.Contains(seen.String(), want) {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %q: %v; got %q", want, err, seen.String())
		}
		seen.Write(b)
	}
	return seen.String()
}

// aliceShell logs alice in, starts a session on web-01 and waits for its
// shell to answer; the context bounds the test's reads.
func (e *env) aliceShell(t *testing.T) (*browser, *websocket.Conn, context.Context) {
	t.Helper()
	alice := e.login(t, "alice", "alice-pw")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := alice.terminal(ctx, alice.start(map[string]string{"host": "web-01"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	c.Write(ctx, websocket.MessageBinary, []byte("echo rea''dy\r"))
	readUntil(t, ctx, c, "ready")
	return alice, c, ctx
}

// TestWebSessionIsASession: a terminal opened from the web is the
// gateway's session in every respect: its row, its recording (whose
// header names the web console), resize, the console's kill with its
// notice, and the audit.
func TestWebSessionIsASession(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alice-pw")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := alice.terminal(ctx, alice.start(map[string]string{"host": "web-01"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageBinary, []byte("stty size; echo he''llo\r"))
	if out := readUntil(t, ctx, c, "hello"); !strings.Contains(out, "20 90") {
		t.Fatalf("the terminal's size is not the browser's: %q", out)
	}
	c.Write(ctx, websocket.MessageText, []byte(`{"type":"resize","cols":101,"rows":33}`))
	c.Write(ctx, websocket.MessageBinary, []byte("stty size\r"))
	readUntil(t, ctx, c, "33 101")

	live, err := e.gw.Store.Sessions(ctx, store.SessionFilter{LiveOnly: true})
	if err != nil || len(live) != 1 || live[0].Person != "alice" || live[0].Host != "web-01" {
		t.Fatalf("live sessions %+v %v", live, err)
	}
	bob := e.login(t, "bob", "bob-pw")
	if code, _ := bob.call("POST", "/api/sessions/"+live[0].ID+"/close", map[string]string{"reason": "x"}, true); code != 404 {
		t.Fatalf("bob closed another team's session: %d", code)
	}
	if code, m := alice.call("POST", "/api/sessions/"+live[0].ID+"/close", map[string]string{"reason": "enough \"now\""}, true); code != 200 {
		t.Fatalf("close: %d %v", code, m)
	}
	readUntil(t, ctx, c, `rr: Session closed by alice: enough "now"`)
	for { // then the exit status and the close
		if _, _, err := c.Read(ctx); err != nil {
			break
		}
	}
	x, err := e.gw.Store.Session(ctx, live[0].ID)
	if err != nil || x.State != store.StateKilled || x.KilledBy != "alice" || x.RecordingSHA256 == "" {
		t.Fatalf("row %+v %v", x, err)
	}
	f, err := os.Open(x.Recording)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := recorder.NewReader(f, "pp-web-01")
	if err != nil {
		t.Fatal(err)
	}
	if h := r.Header(); h.Client != "rr web console" || h.Person != "alice" || h.Width != 90 {
		t.Fatalf("header %+v", h)
	}
	code, _ := bob.call("GET", "/api/recordings/"+x.ID, nil, false)
	if code != 404 {
		t.Fatalf("bob downloads another team's recording: %d", code)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/recordings/"+x.ID, nil)
	req.Header.Set("Cookie", alice.cookie)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want, _ := os.ReadFile(x.Recording)
	if resp.StatusCode != 200 || !bytes.Equal(got, want) {
		t.Fatalf("download: %d, %d bytes, want the stored %d", resp.StatusCode, len(got), len(want))
	}
}

// TestRefusals: what the console refuses, and its headers.
func TestRefusals(t *testing.T) {
	e := newEnv(t)
	anon := &browser{t: t, e: e}
	if code, m := anon.call("POST", "/api/login", map[string]string{"username": "alice", "password": "nope"}, false); code != 401 || m["error"] != "rr: permission denied" {
		t.Errorf("wrong password: %d %v", code, m)
	}
	if code, m := anon.call("POST", "/api/login", map[string]string{"username": "nobody", "password": "nope"}, false); code != 401 || m["error"] != "rr: permission denied" {
		t.Errorf("unknown person: %d %v, want the wrong password's answer", code, m)
	}
	if code, m := anon.call("POST", "/api/login", map[string]string{"username": "stan", "password": "stan-pw"}, false); code != 401 || !strings.Contains(m["error"].(string), "role (standard)") {
		t.Errorf("standard role: %d %v", code, m)
	}
	if code, _ := anon.call("POST", "/api/login", `{"username":1}`, false); code != 400 {
		t.Errorf("malformed login: %d", code)
	}
	for _, path := range []string{"/api/me", "/api/hosts", "/api/sessions", "/api/events", "/api/recordings/x"} {
		if code, _ := anon.call("GET", path, nil, false); code != 401 {
			t.Errorf("%s without a login: %d", path, code)
		}
	}
	alice := e.login(t, "alice", "alice-pw")
	if code, _ := alice.call("POST", "/api/start", map[string]string{"host": "web-01"}, false); code != 403 {
		t.Errorf("start without the CSRF token: %d, want 403", code)
	}
	alice.csrf += "x"
	if code, _ := alice.call("POST", "/api/start", map[string]string{"host": "web-01"}, true); code != 403 {
		t.Errorf("start with a wrong CSRF token: %d, want 403", code)
	}
	alice.csrf = alice.csrf[:len(alice.csrf)-1]
	if code, _ := alice.call("POST", "/api/start", map[string]string{"host": "web-99"}, true); code != 404 {
		t.Errorf("start on an unknown host: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if c, err := alice.terminal(ctx, "no-such-ticket"); err == nil {
		c.CloseNow()
		t.Error("a terminal without a ticket opened")
	}
	ticket := alice.start(map[string]string{"host": "web-01"})
	evil := *alice
	c, resp, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(e.srv.URL, "https")+"/api/terminal?ticket="+ticket,
		&websocket.DialOptions{HTTPClient: e.srv.Client(), HTTPHeader: http.Header{"Cookie": {evil.cookie}, "Origin": {"https://evil.example"}}})
	if err == nil {
		c.CloseNow()
		t.Error("a terminal opened from another origin")
	} else if resp == nil || resp.StatusCode != 403 {
		t.Errorf("another origin: %v %v, want 403", resp, err)
	}

	req, _ := http.NewRequest("GET", e.srv.URL+"/", nil)
	resp, err = e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, want := range map[string]string{"Strict-Transport-Security": "max-age=", "Content-Security-Policy": "script-src 'self';",
		"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
		if !strings.Contains(resp.Header.Get(k), want) {
			t.Errorf("%s: %q", k, resp.Header.Get(k))
		}
	}

	old := alice.cookie
	if code, _ := alice.call("POST", "/api/logout", map[string]string{}, true); code != 200 {
		t.Errorf("logout: %d", code)
	}
	alice.cookie = old
	if code, _ := alice.call("GET", "/api/me", nil, false); code != 401 {
		t.Errorf("cookie replayed after logout: %d, want 401", code)
	}
}

// TestTeamAskedAtLogin: someone in several Rapid Response teams picks
// the one they act under, as over SSH.
func TestTeamAskedAtLogin(t *testing.T) {
	e := newEnv(t)
	e.gw.AddTeam("second_RR", true, []string{"alice"}, "web-01")
	b := &browser{t: t, e: e}
	code, m := b.call("POST", "/api/login", map[string]string{"username": "alice", "password": "alice-pw"}, false)
	q, _ := m["question"].(map[string]any)
	if code != 200 || q["prompt"] != "Team:" || !strings.Contains(q["instruction"].(string), "second_RR") {
		t.Fatalf("%d %v", code, m)
	}
	code, m = b.call("POST", "/api/login/answer", map[string]string{"conv": m["conv"].(string), "answer": "second_RR"}, false)
	if code != 200 || m["done"] != true {
		t.Fatalf("%d %v", code, m)
	}
	b.csrf = m["csrf"].(string)
	if code, m := b.call("GET", "/api/me", nil, false); code != 200 || m["team"] != "second_RR" {
		t.Fatalf("%d %v", code, m)
	}
}

// TestWatchFromTheWeb: the session log's Watch is the console's watch:
// the host's passphrase asked in the terminal, the session's screen
// followed read-only, its person told, q stops.
func TestWatchFromTheWeb(t *testing.T) {
	e := newEnv(t)
	_, c, ctx := e.aliceShell(t)
	live, err := e.gw.Store.Sessions(ctx, store.SessionFilter{LiveOnly: true})
	if err != nil || len(live) != 1 {
		t.Fatalf("%v %v", live, err)
	}

	watcher := e.login(t, "alice", "alice-pw") // another browser
	if code, _ := watcher.call("POST", "/api/sessions/"+live[0].ID+"/watch", map[string]string{}, false); code != 403 {
		t.Fatalf("watch without the CSRF token: %d", code)
	}
	code, m := watcher.call("POST", "/api/sessions/"+live[0].ID+"/watch", map[string]string{}, true)
	if code != 200 {
		t.Fatalf("watch: %d %v", code, m)
	}
	w, err := watcher.terminal(ctx, m["ticket"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer w.CloseNow()
	readUntil(t, ctx, w, "Passphrase for web-01:")
	w.Write(ctx, websocket.MessageBinary, []byte("pp-web-01\r"))
	readUntil(t, ctx, w, "rr: watching session "+live[0].ID)
	readUntil(t, ctx, c, "rr: alice is watching this session")
	c.Write(ctx, websocket.MessageBinary, []byte("echo watched-$((2+3))\r"))
	readUntil(t, ctx, w, "watched-5")
	w.Write(ctx, websocket.MessageBinary, []byte("q"))
	readUntil(t, ctx, w, "rr: stopped watching")
	readUntil(t, ctx, c, "rr: alice stopped watching this session")
}

// TestLogoutEndsTerminals: a login's terminals end with it.
func TestLogoutEndsTerminals(t *testing.T) {
	e := newEnv(t)
	alice, c, ctx := e.aliceShell(t)
	if code, _ := alice.call("POST", "/api/logout", map[string]string{}, true); code != 200 {
		t.Fatalf("logout: %d", code)
	}
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("the terminal after logout: %v, want closed (1008)", err)
			}
			break
		}
	}
}
