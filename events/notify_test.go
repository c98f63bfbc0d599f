package events

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// flakyMailer records what it sends; while down it refuses.
type flakyMailer struct {
	mu   sync.Mutex
	down bool
	sent []auth.Message
	// tries counts every Send, refused or not.
	tries int
}

func (m *flakyMailer) Send(_ context.Context, msg auth.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tries++
	if m.down {
		return errors.New("dial tcp 127.0.0.1:25: connection refused")
	}
	m.sent = append(m.sent, msg)
	return nil
}

func (m *flakyMailer) setDown(d bool) { m.mu.Lock(); m.down = d; m.mu.Unlock() }

// directory makes a store with: ops_RR (alice, bob; web-01; default
// subscription), db_RR (bob, carol; db-*, label role=db; warning and
// above), quiet_RR (dave; *, off), plain (erin; *, not Rapid Response).
func directory(t *testing.T) *sqlite.Store {
	t.Helper()
	st := openStore(t)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"alice", "bob", "carol", "dave", "erin"} {
		must(st.CreatePerson(ctx, store.Person{Name: p, Email: p + "@example.com", Role: auth.RoleAdvanced}))
	}
	must(st.CreatePerson(ctx, store.Person{Name: "stan", Email: "stan@example.com", Role: auth.RoleStandard}))
	must(st.CreateHost(ctx, "web-01", nil))
	must(st.CreateHost(ctx, "db-01", []string{"role=db"}))
	for _, tm := range []struct {
		name    string
		rr      bool
		members []string
		hosts   []string
		sub     string
	}{
		{"ops_RR", true, []string{"alice", "bob", "stan"}, []string{"web-01"}, ""},
		{"db_RR", true, []string{"bob", "carol"}, []string{"label:role=db"}, "warning"},
		{"quiet_RR", true, []string{"dave"}, []string{"*"}, SubscriptionOff},
		{"plain", false, []string{"erin"}, []string{"*"}, "debug"},
	} {
		must(st.CreateTeam(ctx, tm.name, tm.rr))
		for _, m := range tm.members {
			must(st.AddTeamMember(ctx, tm.name, m))
		}
		for _, h := range tm.hosts {
			must(st.AddTeamHost(ctx, tm.name, h))
		}
		if tm.sub != "" {
			must(st.SetEventSubscription(ctx, tm.name, tm.sub))
		}
	}
	return st
}

// runNotifier runs a notifier until the test ends; sent receives the
// recipients of each mail handed over.
func runNotifier(t *testing.T, cfg NotifierConfig) (*Notifier, chan []string) {
	t.Helper()
	sent := make(chan []string, 100)
	cfg.Sent = func(m auth.Message, ids []string) { sent <- append([]string{m.To}, ids...) }
	n, err := NewNotifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return n, sent
}

func receive(t *testing.T, sent chan []string, n int) [][]string {
	t.Helper()
	var out [][]string
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case s := <-sent:
			out = append(out, s)
		case <-timeout:
			t.Fatalf("%d mails after 10s, want %d: %v", len(out), n, out)
		}
	}
	return out
}

func TestNotifierRecipients(t *testing.T) {
	st := directory(t)
	m := &flakyMailer{}
	n, sent := runNotifier(t, NotifierConfig{Directory: st, Mailer: m, Address: "gw.example.com:2222"})
	web := store.Event{ID: "e-0000a1", Rule: "Terminal shell in container", Priority: int(Critical), Host: "web-01",
		Time: time.Date(2026, 12, 7, 10, 20, 5, 0, time.UTC), Summary: "A shell was spawned"}
	db := store.Event{ID: "e-0000b2", Rule: "Read sensitive file", Priority: int(Warning), Host: "db-01", Time: web.Time}
	webLow := store.Event{ID: "e-0000c3", Rule: "Low", Priority: int(Warning), Host: "web-01", Time: web.Time}
	for _, e := range []store.Event{web, db, webLow} {
		if !n.Enqueue(e) {
			t.Fatal("queue full")
		}
	}
	// web (critical): ops_RR's alice and bob (stan is standard; dave's
	// team is off; erin's is not Rapid Response); db (warning): db_RR's
	// bob and carol; webLow: nobody (ops_RR takes critical and above).
	got := receive(t, sent, 4)
	var pairs []string
	for _, g := range got {
		pairs = append(pairs, g[0]+" "+g[1])
	}
	slices.Sort(pairs)
	want := []string{"alice@example.com e-0000a1", "bob@example.com e-0000a1", "bob@example.com e-0000b2", "carol@example.com e-0000b2"}
	if !slices.Equal(pairs, want) {
		t.Fatalf("mails %v, want %v", pairs, want)
	}
	m.mu.Lock()
	msg := m.sent[0]
	m.mu.Unlock()
	for _, s := range []string{"rule:      Terminal shell in container", "host:      web-01", "priority:  critical",
		"time:      2026-12-07T10:20:05Z", "summary:   A shell was spawned", "ssh -t -p 2222 rr@gw.example.com event:e-0000a1"} {
		if !strings.Contains(msg.Body, s) {
			t.Errorf("mail body lacks %q:\n%s", s, msg.Body)
		}
	}
	if msg.Subject != "[rr] critical: Terminal shell in container on web-01 (e-0000a1)" {
		t.Errorf("subject %q", msg.Subject)
	}
	if got := Command("gw.example.com", "e-1"); got != "ssh -t rr@gw.example.com event:e-1" {
		t.Errorf("Command = %q", got)
	}
}

func TestNotifierRetriesWhileMailServerIsDown(t *testing.T) {
	st := directory(t)
	m := &flakyMailer{down: true}
	tried := make(chan struct{}, 100)
	n, sent := runNotifier(t, NotifierConfig{Directory: st, Mailer: triedMailer{m, tried}, Address: "gw"})
	n.Enqueue(store.Event{ID: "e-0000d4", Rule: "r", Priority: int(Alert), Host: "web-01"})
	// Two refused tries (alice's and bob's), then the server is back.
	<-tried
	<-tried
	m.setDown(false)
	got := receive(t, sent, 2)
	if got[0][1] != "e-0000d4" || got[1][1] != "e-0000d4" {
		t.Fatalf("%v", got)
	}
}

type triedMailer struct {
	*flakyMailer
	tried chan struct{}
}

func (m triedMailer) Send(ctx context.Context, msg auth.Message) error {
	err := m.flakyMailer.Send(ctx, msg)
	m.tried <- struct{}{}
	return err
}

func TestNotifierDigestsPastTheLimit(t *testing.T) {
	st := directory(t)
	ctx := context.Background()
	// Only carol: db_RR alone reaches db-01 once bob leaves it.
	if err := st.RemoveTeamMember(ctx, "db_RR", "bob"); err != nil {
		t.Fatal(err)
	}
	window := 1500 * time.Millisecond
	n, sent := runNotifier(t, NotifierConfig{Directory: st, Mailer: &flakyMailer{}, Address: "gw", DigestAfter: 2, DigestWindow: window})
	start := time.Now()
	for i := range 5 {
		n.Enqueue(store.Event{ID: "e-00000" + string(rune('0'+i)), Rule: "r", Priority: int(Error), Host: "db-01"})
	}
	got := receive(t, sent, 3)
	if len(got[0]) != 2 || len(got[1]) != 2 {
		t.Fatalf("first two mails are one event each: %v", got)
	}
	if !slices.Equal(got[2], []string{"carol@example.com", "e-000002", "e-000003", "e-000004"}) {
		t.Fatalf("third mail is the digest of the rest: %v", got[2])
	}
	if d := time.Since(start); d < window {
		t.Fatalf("digest after %v, before the window of %v had room", d, window)
	}
}

func TestNotifierQueueIsBounded(t *testing.T) {
	n, err := NewNotifier(NotifierConfig{Directory: directory(t), Mailer: &flakyMailer{}, Address: "gw", Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing runs it: the third waits for nobody and is refused at once.
	if !n.Enqueue(store.Event{ID: "e-1"}) || !n.Enqueue(store.Event{ID: "e-2"}) || n.Enqueue(store.Event{ID: "e-3"}) {
		t.Fatal("Enqueue must take 2 and refuse the third without blocking")
	}
	if _, err := NewNotifier(NotifierConfig{}); err == nil || !strings.Contains(err.Error(), "Address") {
		t.Fatalf("empty config: %v", err)
	}
}

func TestSubscribed(t *testing.T) {
	for _, tc := range []struct {
		sub  string
		p    Priority
		want bool
	}{{"", Critical, true}, {"", Error, false}, {"", Emergency, true}, {"warning", Warning, true}, {"warning", Notice, false},
		{"off", Emergency, false}, {"debug", Debug, true}} {
		if got := Subscribed(tc.sub, tc.p); got != tc.want {
			t.Errorf("Subscribed(%q, %v) = %v", tc.sub, tc.p, got)
		}
	}
}
