package events

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// intakeServer is a real intake on 127.0.0.1 over the real store.
type intakeServer struct {
	url      string
	st       *sqlite.Store
	intake   *Intake
	queued   chan store.Event
	tokens   map[string]string
	now      time.Time
	nowMu    sync.Mutex
	registry *prometheus.Registry
}

type chanQueue chan store.Event

func (q chanQueue) Enqueue(e store.Event) bool {
	select {
	case q <- e:
		return true
	default:
		return false
	}
}

func newIntakeServer(t *testing.T, rate float64, burst int) *intakeServer {
	t.Helper()
	st := openStore(t)
	ctx := context.Background()
	var err error
	if err := st.CreateHost(ctx, "web-01", nil); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateHost(ctx, "k8s-a", []string{"node=node-a"}); err != nil {
		t.Fatal(err)
	}
	s := &intakeServer{st: st, queued: make(chan store.Event, 100), now: time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC),
		tokens: map[string]string{SourceFalco: "falco-token-0123456789", SourceAlertmanager: "am-token-9876543210"}}
	clock := func() time.Time { s.nowMu.Lock(); defer s.nowMu.Unlock(); return s.now }
	s.intake, err = NewIntake(IntakeConfig{Store: st, Notifier: chanQueue(s.queued), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	s.registry = prometheus.NewRegistry()
	s.registry.MustRegister(s.intake.Collector())
	h, err := NewHandler(HandlerConfig{Intake: s.intake, Rate: rate, Burst: burst, Now: clock,
		Tokens: map[string][]byte{SourceFalco: []byte(s.tokens[SourceFalco]), SourceAlertmanager: []byte(s.tokens[SourceAlertmanager])}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// openStore opens a real store in the test's temporary folder.
func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// post sends body to path with token and returns the status and body.
func (s *intakeServer) post(t *testing.T, path, token string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *intakeServer) count(t *testing.T) int {
	t.Helper()
	es, err := s.st.Events(context.Background(), store.EventFilter{MaxPriority: -1, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// counter reads rr_event_deliveries_total{source, outcome}.
func (s *intakeServer) counter(t *testing.T, source, outcome string) float64 {
	t.Helper()
	mfs, err := s.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["source"] == source && l["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestIntakeFalcoOverHTTP(t *testing.T) {
	s := newIntakeServer(t, 0, 0)
	ctx := context.Background()
	want := map[string]struct {
		host, sourceHost string
		prio             Priority
	}{
		"critical_hostname.json":      {"web-01", "web-01", Critical},
		"warning_evt_hostname.json":   {"", "db-01", Warning},
		"error_k8s_node.json":         {"k8s-a", "node-a", Error}, // by the host's label node=node-a
		"notice_sidekick_uuid.json":   {"web-01", "web-01", Notice},
		"emergency_unknown_host.json": {"", "ghost-99", Emergency},
	}
	for file, w := range want {
		code, body := s.post(t, "/v1/events/falco", s.tokens[SourceFalco], readTestdata(t, "falco", file))
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", file, code, body)
		}
		var res struct{ Accepted []string }
		if err := json.Unmarshal([]byte(body), &res); err != nil || len(res.Accepted) != 1 {
			t.Fatalf("%s: %s", file, body)
		}
		e, err := s.st.Event(ctx, res.Accepted[0])
		if err != nil {
			t.Fatal(err)
		}
		if e.Host != w.host || e.SourceHost != w.sourceHost || Priority(e.Priority) != w.prio || e.Source != SourceFalco ||
			e.Status != store.EventOpen || !ValidID(e.ID) {
			t.Errorf("%s: stored %+v", file, e)
		}
	}
	// Only events on an rr host are mailed.
	if n := len(s.queued); n != 3 {
		t.Errorf("%d events queued for mail, want 3 (those on known hosts)", n)
	}
	// Delivered again: stored once, counted and audited as duplicates.
	for _, file := range []string{"critical_hostname.json", "notice_sidekick_uuid.json"} {
		code, body := s.post(t, "/v1/events/falco", s.tokens[SourceFalco], readTestdata(t, "falco", file))
		if code != http.StatusOK || !strings.Contains(body, `"duplicates":["e-`) {
			t.Fatalf("duplicate %s: %d %s", file, code, body)
		}
	}
	if n := s.count(t); n != len(want) {
		t.Fatalf("%d events stored, want %d", n, len(want))
	}
	if got := s.counter(t, SourceFalco, "accepted"); got != 5 {
		t.Errorf("accepted counter %v", got)
	}
	if got := s.counter(t, SourceFalco, "duplicate"); got != 2 {
		t.Errorf("duplicate counter %v", got)
	}
	audit, _ := s.st.AuditEvents(ctx, store.AuditFilter{Action: "event."})
	if len(audit) != 7 {
		t.Errorf("%d audit events, want 5 accepted + 2 duplicates", len(audit))
	}
}

func TestIntakeRefusesBadInputStoringNothing(t *testing.T) {
	s := newIntakeServer(t, 0, 0)
	good := readTestdata(t, "falco", "critical_hostname.json")
	big := append([]byte(`{"rule":"r","priority":"Error","time":"2026-12-07T10:00:00Z","output":"`), bytes.Repeat([]byte("a"), MaxBody)...)
	big = append(big, `"}`...)
	for _, tc := range []struct {
		name, path, token string
		body              []byte
		code              int
		msg, outcome      string
	}{
		{"no token", "/v1/events/falco", "", good, 401, "bearer token", "unauthorized"},
		{"wrong token", "/v1/events/falco", "falco-token-0123456780", good, 401, "bearer token", "unauthorized"},
		{"other source's token", "/v1/events/falco", s.tokens[SourceAlertmanager], good, 401, "bearer token", "unauthorized"},
		{"over 1 MiB", "/v1/events/falco", s.tokens[SourceFalco], big, 413, "body over 1048576 bytes", "too_large"},
		{"not JSON", "/v1/events/falco", s.tokens[SourceFalco], []byte("rule=x"), 400, "not JSON", "bad_request"},
		{"missing field", "/v1/events/falco", s.tokens[SourceFalco], readTestdata(t, "falco", "bad_missing_rule.json"), 400,
			"missing rule", "bad_request"},
		{"alertmanager missing version", "/v1/events/alertmanager", s.tokens[SourceAlertmanager], []byte(`{"alerts":[]}`), 400,
			"missing version", "bad_request"},
		{"unknown source", "/v1/events/sysdig", s.tokens[SourceFalco], good, 404, "no such endpoint", ""},
		{"unknown path", "/v1/other", s.tokens[SourceFalco], good, 404, "no such endpoint", ""},
	} {
		code, body := s.post(t, tc.path, tc.token, tc.body)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s; want %d %q", tc.name, code, body, tc.code, tc.msg)
		}
	}
	// Over 1 MiB without a Content-Length (chunked): cut at the limit.
	req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/events/falco", io.MultiReader(bytes.NewReader(big)))
	req.Header.Set("Authorization", "Bearer "+s.tokens[SourceFalco])
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 {
			t.Errorf("chunked over 1 MiB: %d (length %d)", resp.StatusCode, req.ContentLength)
		}
	}
	// A GET is not a delivery.
	resp, err := http.Get(s.url + "/v1/events/falco")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	if n := s.count(t); n != 0 {
		t.Fatalf("%d events stored from bad deliveries", n)
	}
	for outcome, want := range map[string]float64{"unauthorized": 3, "too_large": 2, "bad_request": 3} {
		if got := s.counter(t, SourceFalco, outcome); got != want {
			t.Errorf("falco %s counter %v, want %v", outcome, got, want)
		}
	}
	if got := s.counter(t, "none", "not_found"); got != 2 {
		t.Errorf("not_found counter %v", got)
	}
	audit, _ := s.st.AuditEvents(context.Background(), store.AuditFilter{Action: "event.deliver"})
	if len(audit) != 11 {
		t.Errorf("%d refusals audited, want 11", len(audit))
	}
	for _, e := range audit {
		if strings.Contains(e.Detail, "token-") {
			t.Fatalf("a token in the audit trail: %+v", e)
		}
	}
}

func TestIntakeRateLimitPerSource(t *testing.T) {
	s := newIntakeServer(t, 1, 2)
	am := []byte(`{"version":"4","alerts":[]}`)
	for i := 0; i < 2; i++ {
		if code, body := s.post(t, "/v1/events/alertmanager", s.tokens[SourceAlertmanager], am); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	}
	if code, _ := s.post(t, "/v1/events/alertmanager", s.tokens[SourceAlertmanager], am); code != http.StatusTooManyRequests {
		t.Fatalf("third in a burst of 2: %d", code)
	}
	// The other source has its own budget, and strangers spend none.
	if code, _ := s.post(t, "/v1/events/falco", "wrong", am); code != 401 {
		t.Fatal(code)
	}
	if code, body := s.post(t, "/v1/events/falco", s.tokens[SourceFalco], readTestdata(t, "falco", "critical_hostname.json")); code != 200 {
		t.Fatalf("falco: %d %s", code, body)
	}
	s.nowMu.Lock()
	s.now = s.now.Add(time.Second)
	s.nowMu.Unlock()
	if code, _ := s.post(t, "/v1/events/alertmanager", s.tokens[SourceAlertmanager], am); code != 200 {
		t.Fatalf("a second later: %d", code)
	}
	if got := s.counter(t, SourceAlertmanager, "rate_limited"); got != 1 {
		t.Errorf("rate_limited counter %v", got)
	}
}

func TestIntakeAlertmanagerResolves(t *testing.T) {
	s := newIntakeServer(t, 0, 0)
	firing := []byte(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HostDown","instance":"web-01:9100","severity":"page"},"annotations":{},"startsAt":"2026-12-07T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"abc"}]}`)
	code, body := s.post(t, "/v1/events/alertmanager", s.tokens[SourceAlertmanager], firing)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var res struct{ Accepted, Resolved []string }
	json.Unmarshal([]byte(body), &res)
	e, _ := s.st.Event(context.Background(), res.Accepted[0])
	if e.Host != "web-01" || Priority(e.Priority) != Critical || e.Rule != "HostDown" {
		t.Fatalf("%+v", e)
	}
	resolved := bytes.ReplaceAll(firing, []byte(`"status":"firing"`), []byte(`"status":"resolved"`))
	code, body = s.post(t, "/v1/events/alertmanager", s.tokens[SourceAlertmanager], resolved)
	json.Unmarshal([]byte(body), &res)
	if code != 200 || len(res.Resolved) != 1 || res.Resolved[0] != e.ID {
		t.Fatalf("resolve: %d %s", code, body)
	}
	if e, _ := s.st.Event(context.Background(), e.ID); e.Status != store.EventResolved || e.StatusBy != SourceAlertmanager {
		t.Fatalf("after resolve: %+v", e)
	}
}
