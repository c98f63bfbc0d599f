package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/store"
)

// TestEventRefusals: an event that does not exist, one on a host rr does
// not know, and one on a host the person may not reach are refused; the
// last with the very words of that host's refusal.
func TestEventRefusals(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	ctx := context.Background()
	for _, ev := range []store.Event{
		{ID: "e-aaaaaa", Host: "db-01", SourceHost: "db-01", Key: "a"},
		{ID: "e-bbbbbb", SourceHost: "ghost-99", Key: "b"},
		{ID: "e-cccccc", Host: "web-02", SourceHost: "web-02", Key: "c"},
	} {
		ev.Source, ev.Rule, ev.Time, ev.Received, ev.Status = "falco", "r", time.Now(), time.Now(), store.EventOpen
		if _, _, err := e.gw.Store.AddEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	c := e.dial(t, "rr", e.alice.Signer)
	for _, tt := range []struct{ cmd, want string }{
		{"event:e-dddddd -- true", `rr: no event "e-dddddd"`},
		{"event:e-bbbbbb -- true", `rr: event e-bbbbbb fired on a host rr does not know ("ghost-99")`},
		{"event:e-aaaaaa -- true", `rr: no host "db-01" that you may reach`}, // as db-01 -- true
		{"event:e-cccccc -- true", `rr: host "web-02" is offline`},
		{"event:nope -- true", `rr: an event id is "e-" and hex digits`},
	} {
		out, errOut, err := run(t, c, tt.cmd, nil)
		if out != "" || !strings.HasPrefix(errOut, tt.want) || strings.Count(errOut, "\n") != 1 || exitStatus(err) < 1 {
			t.Errorf("%q: stdout %q stderr %q err %v; want one line starting %q and a non-zero exit", tt.cmd, out, errOut, err, tt.want)
		}
	}
	evs, _ := e.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: "session.open"})
	denied := 0
	for _, a := range evs {
		if a.Outcome == "denied" {
			denied++
		}
	}
	if denied != 4 {
		t.Errorf("%d session.open denials audited, want 4", denied)
	}
}
