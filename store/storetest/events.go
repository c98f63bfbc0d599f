package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
)

func testEvents(t *testing.T, b Backend) {
	s := b.fresh(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	e := store.Event{ID: "e-000001", Source: "falco", Rule: "Terminal shell in container", Priority: 3, Time: t0,
		Host: "web-01", SourceHost: "web-01", Summary: "a shell", Raw: []byte(`{"rule":"x"}`), Key: "falco:uuid:1", Received: t0}
	got, added, err := s.AddEvent(ctx, e)
	if err != nil || !added || got.ID != e.ID {
		t.Fatalf("AddEvent = %v, %v, %v", got.ID, added, err)
	}
	// The same key again: stored once, the first one returned.
	dup := e
	dup.ID = "e-000002"
	got, added, err = s.AddEvent(ctx, dup)
	if err != nil || added || got.ID != e.ID {
		t.Fatalf("duplicate AddEvent = %v, %v, %v; want the first, not added", got.ID, added, err)
	}
	// The same id with another key: a conflict the caller retries.
	other := e
	other.Key = "falco:uuid:2"
	if _, _, err := s.AddEvent(ctx, other); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("id taken: %v, want ErrConflict", err)
	}
	other.ID, other.Host, other.Priority, other.Time = "e-000003", "", 1, t0.Add(time.Minute)
	if _, _, err := s.AddEvent(ctx, other); err != nil {
		t.Fatal(err)
	}
	all, err := s.Events(ctx, store.EventFilter{MaxPriority: -1})
	if err != nil || len(all) != 2 || all[0].ID != "e-000003" {
		t.Fatalf("Events = %v, %v; want 2, newest first", all, err)
	}
	if got, _ := s.Events(ctx, store.EventFilter{MaxPriority: 2}); len(got) != 1 || got[0].ID != "e-000003" {
		t.Fatalf("priority filter: %v", got)
	}
	if got, _ := s.Events(ctx, store.EventFilter{MaxPriority: -1, Hosts: []string{"web-01"}}); len(got) != 1 || got[0].ID != e.ID {
		t.Fatalf("hosts filter: %v", got)
	}
	if got, _ := s.Events(ctx, store.EventFilter{MaxPriority: -1, Hosts: []string{}}); len(got) != 0 {
		t.Fatalf("empty hosts filter: %v", got)
	}
	one, err := s.Event(ctx, e.ID)
	if err != nil || string(one.Raw) != `{"rule":"x"}` || !one.Time.Equal(t0) || one.Status != store.EventOpen {
		t.Fatalf("Event = %+v, %v", one, err)
	}
	if _, err := s.Event(ctx, "e-ffffff"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown event: %v", err)
	}

	// Responding while a session is live, open again after it.
	if err := s.CreateSession(ctx, store.Session{ID: "s1", Person: "alice", Host: "web-01", State: store.StateLive, Started: t0,
		EventID: e.ID, EventRule: e.Rule}); err != nil {
		t.Fatal(err)
	}
	if err := s.EventResponding(ctx, e.ID, "alice", t0); err != nil {
		t.Fatal(err)
	}
	if one, _ := s.Event(ctx, e.ID); one.Status != store.EventResponding || one.StatusBy != "alice" {
		t.Fatalf("responding: %+v", one)
	}
	if err := s.EventSessionEnded(ctx, e.ID, t0); err != nil {
		t.Fatal(err)
	}
	if one, _ := s.Event(ctx, e.ID); one.Status != store.EventResponding {
		t.Fatalf("a live session keeps it responding: %+v", one)
	}
	if err := s.FinishSession(ctx, "s1", store.SessionEnd{State: store.StateClosed, Ended: t0}); err != nil {
		t.Fatal(err)
	}
	s.EventSessionEnded(ctx, e.ID, t0)
	if one, _ := s.Event(ctx, e.ID); one.Status != store.EventOpen {
		t.Fatalf("after the session: %+v", one)
	}
	if xs, _ := s.Sessions(ctx, store.SessionFilter{EventID: e.ID}); len(xs) != 1 || xs[0].EventRule != e.Rule {
		t.Fatalf("sessions of the event: %+v", xs)
	}

	// Acknowledge, resolve; a resolved event is not acknowledged again.
	if err := s.SetEventStatus(ctx, e.ID, store.EventAcknowledged, "bob", "looking", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.EventResponding(ctx, e.ID, "carol", t0); err != nil {
		t.Fatal(err)
	}
	if one, _ := s.Event(ctx, e.ID); one.Status != store.EventAcknowledged || one.StatusNote != "looking" {
		t.Fatalf("acknowledged: %+v", one)
	}
	if got, err := s.ResolveEventByKey(ctx, e.Key, t0, "alertmanager", "resolved by alertmanager"); err != nil || got.Status != store.EventResolved {
		t.Fatalf("ResolveEventByKey = %+v, %v", got, err)
	}
	if err := s.SetEventStatus(ctx, e.ID, store.EventAcknowledged, "bob", "", t0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("ack of resolved: %v", err)
	}
	if _, err := s.ResolveEventByKey(ctx, "nope", t0, "x", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("resolve unknown key: %v", err)
	}
	if n, err := s.PruneEvents(ctx, t0.Add(30*time.Second)); err != nil || n != 1 {
		t.Fatalf("PruneEvents = %d, %v", n, err)
	}

	// Subscriptions.
	if err := s.CreateTeam(ctx, "ops_RR", true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetEventSubscription(ctx, "ops_RR", "warning"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetEventSubscription(ctx, "nobody", "warning"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown team: %v", err)
	}
	if m, err := s.EventSubscriptions(ctx); err != nil || m["ops_RR"] != "warning" || len(m) != 1 {
		t.Fatalf("EventSubscriptions = %v, %v", m, err)
	}
	s.SetEventSubscription(ctx, "ops_RR", "")
	if m, _ := s.EventSubscriptions(ctx); len(m) != 0 {
		t.Fatalf("after reset: %v", m)
	}
}
