package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
)

type fakePing struct{ err error }

func (p fakePing) SchemaVersion(context.Context) (int, error) { return 1, p.err }

// TestHTTPPort: /metrics shows the gateway's series (a login decision
// counted, the agent connected, no session live) and /healthz follows the
// store; nothing else is served.
func TestHTTPPort(t *testing.T) {
	m := gateway.NewMetrics()
	gw := gatewaytest.StartGateway(t, gatewaytest.Config{Gateway: gateway.Config{Metrics: m}})
	key := gw.AddHost("web-01")
	gatewaytest.StartAgent(t, gw, "web-01", key, nil)
	gw.WaitOnline("web-01")
	m.AuthDecision(auth.Event{Action: "login", Outcome: "denied", Person: "someone"})

	ping := &fakePing{}
	h, err := httpHandler(gw.Srv, ping)
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(h)
	defer web.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(web.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	for _, want := range []string{
		`rr_agents_connected 1`, `rr_sessions_live 0`,
		`rr_auth_decisions_total{action="login",outcome="denied"} 1`, `go_goroutines`, `process_resident_memory_bytes`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
	if strings.Contains(body, "someone") {
		t.Error("a person's name is in the metrics")
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	ping.err = errors.New("database is locked")
	if code, _ := get("/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz with the store down: %d", code)
	}
	if code, _ := get("/"); code != http.StatusNotFound {
		t.Errorf("/: %d, want 404", code)
	}
	resp, err := http.Post(web.URL+"/metrics", "text/plain", strings.NewReader("x"))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /metrics: %d", resp.StatusCode)
		}
	}
}
