package events

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{"..", "testdata", "events"}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFalco(t *testing.T) {
	for _, tc := range []struct {
		file, rule, host, summary string
		prio                      Priority
		key                       string
	}{
		{"critical_hostname.json", "Terminal shell in container", "web-01", "A shell was spawned in a container", Critical, "falco:sha256:"},
		{"warning_evt_hostname.json", "Read sensitive file untrusted", "db-01", "Sensitive file opened for reading", Warning, "falco:sha256:"},
		{"error_k8s_node.json", "Outbound Connection to C2 Servers", "node-a", "Outbound connection to C2 server", Error, "falco:sha256:"},
		{"notice_sidekick_uuid.json", "Contact K8S API Server From Container", "web-01", "Unexpected connection", Notice,
			"falco:uuid:5f7d3e1c-9a2b-4c8d-8e6f-1a2b3c4d5e6f"},
		{"emergency_unknown_host.json", "Linux Kernel Module Injection Detected", "ghost-99", "Kernel module loaded", Emergency, "falco:sha256:"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body := readTestdata(t, "falco", tc.file)
			p, err := ParseFalco(body)
			if err != nil {
				t.Fatal(err)
			}
			if p.Rule != tc.rule || p.Host != tc.host || p.Priority != tc.prio || !strings.HasPrefix(p.Summary, tc.summary) ||
				!strings.HasPrefix(p.Key, tc.key) || p.Source != SourceFalco || p.Resolved {
				t.Fatalf("got %+v", p)
			}
			if p.Time == 0 || time.Unix(0, p.Time).Year() != 2026 {
				t.Fatalf("time %d", p.Time)
			}
			if string(p.Raw) != string(body) {
				t.Fatal("raw payload not kept")
			}
		})
	}
}

func TestParseFalcoRefusals(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{string(readTestdata(t, "falco", "bad_missing_rule.json")), "missing rule"},
		{string(readTestdata(t, "falco", "bad_priority.json")), `priority "Severe"`},
		{`{"rule":"r","priority":"Error","output":"o","time":"yesterday"}`, `time "yesterday"`},
		{`{}`, "missing rule, priority, time, output"},
		{`not json`, "not JSON"},
		{`{"rule":1}`, "field rule: want string"},
		{`{"rule":"r","priority":"Error","output":"o","time":"2026-12-07T10:00:00Z"} {}`, "more than one JSON value"},
		{``, "not JSON"},
	} {
		_, err := ParseFalco([]byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFalco(%.40q) = %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestFalcoSameAlertSameKey(t *testing.T) {
	a, _ := ParseFalco(readTestdata(t, "falco", "critical_hostname.json"))
	b, _ := ParseFalco(readTestdata(t, "falco", "critical_hostname.json"))
	c, _ := ParseFalco(readTestdata(t, "falco", "warning_evt_hostname.json"))
	if a.Key != b.Key || a.Key == c.Key {
		t.Fatalf("keys %s %s %s", a.Key, b.Key, c.Key)
	}
}

func TestParseAlertmanager(t *testing.T) {
	ps, err := ParseAlertmanager(readTestdata(t, "alertmanager", "firing_resolved.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("%d alerts", len(ps))
	}
	f, r := ps[0], ps[1]
	if f.Rule != "NodeRootfsFull" || f.Host != "web-01" || f.Priority != Critical || f.Resolved ||
		f.Summary != "Root filesystem on web-01 is 98% full" || f.Key != "alertmanager:a1b2c3d4e5f60718:2026-12-07T10:00:00Z" {
		t.Fatalf("firing: %+v", f)
	}
	if r.Rule != "FalcoAlert" || r.Host != "db-01" || r.Priority != Warning || !r.Resolved || r.Summary != "Sensitive file opened" {
		t.Fatalf("resolved: %+v", r)
	}
	// Host labels in the order given.
	ps, _ = ParseAlertmanager(readTestdata(t, "alertmanager", "firing_resolved.json"), []string{"job"})
	if ps[0].Host != "node" || ps[1].Host != "" {
		t.Fatalf("host labels: %q %q", ps[0].Host, ps[1].Host)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"alerts":[]}`, "missing version"},
		{`{"version":"3","alerts":[]}`, `version "3"`},
		{`{"version":"4"}`, "missing alerts"},
		{`{"version":"4","alerts":[{"status":"firing","labels":{},"startsAt":"2026-12-07T10:00:00Z","fingerprint":"f"}]}`,
			"missing labels.alertname (alerts[0])"},
		{`{"version":"4","alerts":[{"status":"weird","labels":{"alertname":"a"},"startsAt":"2026-12-07T10:00:00Z","fingerprint":"f"}]}`,
			`status "weird"`},
		{`{"version":"4","alerts":[{"labels":{"alertname":"a"}}]}`, "missing status, startsAt, fingerprint"},
		{`[1]`, "not JSON"},
	} {
		_, err := ParseAlertmanager([]byte(tc.body), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseAlertmanager(%.50q) = %v, want %q", tc.body, err, tc.want)
		}
	}
	if ok, _ := ParseAlertmanager([]byte(`{"version":"4","alerts":[]}`), nil); len(ok) != 0 {
		t.Fatal("empty alerts")
	}
}

func TestSeverity(t *testing.T) {
	for in, want := range map[string]Priority{"critical": Critical, "CRITICAL": Critical, "page": Critical, "error": Error,
		"high": Error, "warning": Warning, "warn": Warning, "info": Informational, "": Warning, "bogus": Warning,
		"emergency": Emergency, "low": Notice, "debug": Debug} {
		if got := severity(in); got != want {
			t.Errorf("severity(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestOneLineAndIDs(t *testing.T) {
	if got := oneLine("a\n\tb  \x00c", 10); got != "a b \x00c" {
		t.Errorf("oneLine = %q", got)
	}
	if got := oneLine(strings.Repeat("é", 300), maxSummary); len([]rune(got)) != maxSummary {
		t.Errorf("oneLine not bounded: %d runes", len([]rune(got)))
	}
	if got := bounded(strings.Repeat("é", 300)); len(got) > maxField {
		t.Errorf("bounded: %d bytes", len(got))
	}
	if b := cut([]byte("aé"), 2); string(b) != "a" {
		t.Errorf("cut split a rune: %q", b)
	}
	for i := 0; i < 100; i++ {
		if id := NewID(); !ValidID(id) || len(id) != 8 {
			t.Fatalf("NewID %q", id)
		}
	}
	for _, bad := range []string{"", "e-", "e-12345", "E-123456", "e-12345g", "x-123456", "e-" + strings.Repeat("a", 17)} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q)", bad)
		}
	}
}

func FuzzParseFalco(f *testing.F) {
	for _, name := range []string{"critical_hostname.json", "warning_evt_hostname.json", "error_k8s_node.json",
		"notice_sidekick_uuid.json", "bad_missing_rule.json"} {
		f.Add(readTestdata(f, "falco", name))
	}
	f.Add([]byte(`{"rule":"\u202e","priority":"info","time":"2026-12-07T10:00:00Z","output":"` + strings.Repeat("x", 300) + `"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseFalco(body)
		if err != nil {
			return
		}
		checkParsed(t, p)
	})
}

func FuzzParseAlertmanager(f *testing.F) {
	f.Add(readTestdata(f, "alertmanager", "firing_resolved.json"))
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"a","instance":"[::1]:9100"},"startsAt":"2026-12-07T10:00:00Z","fingerprint":"f"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ps, err := ParseAlertmanager(body, nil)
		if err != nil {
			return
		}
		for _, p := range ps {
			checkParsed(t, p)
		}
	})
}

// checkParsed is what every parsed event promises, whatever came in.
func checkParsed(t *testing.T, p Parsed) {
	t.Helper()
	if p.Rule == "" || p.Key == "" {
		t.Fatalf("empty rule or key: %+v", p)
	}
	if p.Priority < Emergency || p.Priority > Debug {
		t.Fatalf("priority %d", p.Priority)
	}
	if len(p.Rule) > maxField || len(p.Host) > maxField || len([]rune(p.Summary)) > maxSummary || len(p.Raw) > maxRaw {
		t.Fatalf("unbounded: %d %d %d %d", len(p.Rule), len(p.Host), len(p.Summary), len(p.Raw))
	}
	for _, s := range []string{p.Rule, p.Host, p.Summary} {
		if strings.ContainsAny(s, "\n\r") || !utf8Valid(s) {
			t.Fatalf("not one valid line: %q", s)
		}
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }
