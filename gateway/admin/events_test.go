package admin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
)

// addEvents stores: e-00000a on web-01 (critical, ops and sec see it),
// e-00000b on db-01 (warning, sec only), e-00000c on no known host
// (admins only); and a session of bob's opened from e-00000a.
func (e *env) addEvents(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for i, ev := range []store.Event{
		{ID: "e-00000a", Source: "falco", Rule: "Terminal shell in container", Priority: 2, Host: "web-01", SourceHost: "web-01",
			Summary: "A shell was spawned", Raw: []byte(`{"rule":"Terminal shell in container"}`)},
		{ID: "e-00000b", Source: "alertmanager", Rule: "NodeRootfsFull", Priority: 4, Host: "db-01", SourceHost: "db-01"},
		{ID: "e-00000c", Source: "falco", Rule: "Kernel module", Priority: 0, SourceHost: "ghost-99"},
	} {
		ev.Time, ev.Received, ev.Key, ev.Status = t0.Add(time.Duration(i)*time.Minute), now, ev.ID, store.EventOpen
		if _, _, err := e.st.AddEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	must(t, e.st.CreateSession(ctx, store.Session{ID: "ops-event", Person: "bob", Team: "ops", Host: "web-01", State: store.StateLive,
		Started: t0.Add(10 * time.Minute), EventID: "e-00000a", EventRule: "Terminal shell in container"}))
}

func eventIDs(t *testing.T, out string) []string {
	t.Helper()
	var list []eventJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var ids []string
	for _, v := range list {
		ids = append(ids, v.ID)
	}
	return ids
}

func TestEventsVisibility(t *testing.T) {
	e := newEnv(t)
	e.addEvents(t)
	for _, tc := range []struct {
		who  Caller
		line string
		want string
	}{
		{admin, "events --json", "e-00000c e-00000b e-00000a"},
		{bob, "events --json", "e-00000a"},
		{carol, "events --json", "e-00000b e-00000a"},
		{Caller{Person: "x", Role: "advanced"}, "events --json", ""},
		{admin, "events --json --priority critical", "e-00000c e-00000a"},
		{admin, "events --json --host db-01", "e-00000b"},
		{admin, "events --json --status open --limit 1", "e-00000c"},
		{admin, "events --json --since 2026-11-24T10:01:00Z", "e-00000c e-00000b"},
	} {
		out, errMsg := e.exec(tc.who, tc.line)
		if errMsg != "" {
			t.Fatalf("%s: %s", tc.line, errMsg)
		}
		if got := strings.Join(eventIDs(t, out), " "); got != tc.want {
			t.Errorf("%s as %s: %q, want %q", tc.line, tc.who.Person, got, tc.want)
		}
	}
	out, _ := e.exec(admin, "events --json --limit 1")
	for _, k := range []string{`"id":`, `"rule":`, `"priority":"emergency"`, `"host":""`, `"source_host":"ghost-99"`, `"time":`, `"status":"open"`, `"source":"falco"`} {
		if !strings.Contains(out, k) {
			t.Errorf("events --json lacks %s: %s", k, out)
		}
	}
	out, _ = e.exec(admin, "events")
	if !strings.Contains(out, "unknown (ghost-99)") || !strings.Contains(out, "PRIORITY") {
		t.Errorf("table:\n%s", out)
	}
	for line, want := range map[string]string{
		"events --priority severe": `--priority "severe": want one of emergency`,
		"events --status gone":     `--status "gone"`,
		"events --limit 0":         "--limit must be positive",
		"events --limit 10001":     "--limit",
		"events extra":             "usage: events",
		"event show nope":          `bad event id "nope"`,
		"event show e-ffffff":      `no event "e-ffffff"`,
		"event":                    "type help event",
	} {
		if _, errMsg := e.exec(admin, line); !strings.Contains(errMsg, want) {
			t.Errorf("%s: %q, want %q", line, errMsg, want)
		}
	}
}

func TestEventShowAckResolve(t *testing.T) {
	e := newEnv(t)
	e.addEvents(t)
	e.console.cfg.EventCommand = func(id string) string { return "ssh -t rr@gw event:" + id }
	out, errMsg := e.exec(bob, "event show e-00000a")
	for _, want := range []string{"rule:      Terminal shell in container", "priority:  critical", "sessions:  ops-event",
		"respond:   ssh -t rr@gw event:e-00000a", `payload:   {"rule":"Terminal shell in container"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("event show lacks %q (%s):\n%s", want, errMsg, out)
		}
	}
	// Events one may not see read as absent.
	if _, errMsg := e.exec(bob, "event show e-00000b"); errMsg != `no event "e-00000b"` {
		t.Errorf("bob, db-01's event: %q", errMsg)
	}
	if _, errMsg := e.exec(bob, "event ack e-00000c looking"); errMsg != `no event "e-00000c"` {
		t.Errorf("bob, unknown host's event: %q", errMsg)
	}
	// The session says which event it came from, and the event lists it.
	out, _ = e.exec(bob, "show ops-event")
	if !strings.Contains(out, "event:        e-00000a Terminal shell in container") {
		t.Errorf("show:\n%s", out)
	}
	out, _ = e.exec(bob, "sessions --event e-00000a --json")
	if !strings.Contains(out, `"id":"ops-event"`) || strings.Contains(out, `"ops-live"`) || !strings.Contains(out, `"event":"e-00000a"`) {
		t.Errorf("sessions --event: %s", out)
	}

	if out, errMsg := e.exec(bob, "event ack e-00000a on it"); errMsg != "" || !strings.Contains(out, "acknowledged") {
		t.Fatalf("ack: %q %q", out, errMsg)
	}
	ev, _ := e.st.Event(context.Background(), "e-00000a")
	if ev.Status != store.EventAcknowledged || ev.StatusBy != "bob" || ev.StatusNote != "on it" {
		t.Fatalf("after ack: %+v", ev)
	}
	if _, errMsg := e.exec(carol, "event resolve e-00000a contained"); errMsg != "" {
		t.Fatal(errMsg)
	}
	if _, errMsg := e.exec(bob, "event ack e-00000a again"); errMsg != "event e-00000a is resolved already" {
		t.Fatalf("ack after resolve: %q", errMsg)
	}
	got := e.audited(t, "event.")
	want := []string{"bob denied e-00000c no event \"e-00000c\"", "bob allowed e-00000a on it",
		"carol allowed e-00000a contained", "bob denied e-00000a resolved already"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTeamEvents(t *testing.T) {
	e := newEnv(t)
	if _, errMsg := e.exec(bob, "team events ops warning"); errMsg != "permission denied: admins only" {
		t.Fatalf("bob: %q", errMsg)
	}
	if out, errMsg := e.exec(admin, "team events ops warning"); errMsg != "" || !strings.Contains(out, "warning") {
		t.Fatalf("%q %q", out, errMsg)
	}
	subs, _ := e.st.EventSubscriptions(context.Background())
	if subs["ops"] != "warning" {
		t.Fatalf("%v", subs)
	}
	if _, errMsg := e.exec(admin, "team events ops loud"); !strings.Contains(errMsg, `bad subscription "loud"`) {
		t.Fatalf("%q", errMsg)
	}
	if _, errMsg := e.exec(admin, "team events nobody off"); !strings.Contains(errMsg, "nobody") {
		t.Fatalf("unknown team: %q", errMsg)
	}
	e.exec(admin, "team events ops default")
	if subs, _ := e.st.EventSubscriptions(context.Background()); len(subs) != 0 {
		t.Fatalf("after default: %v", subs)
	}
}
