package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
)

func testHosts(t *testing.T, b Backend) {
	s := b.fresh(t)
	if _, err := s.Host(ctx, "web-01"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing host: %v", err)
	}
	if err := s.SetAgentKey(ctx, "web-01", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("key of missing host: %v", err)
	}
	if err := s.TouchHost(ctx, "web-01", time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("touch missing host: %v", err)
	}
	for _, n := range []string{"web-02", "web-01"} {
		if err := s.UpsertHost(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetAgentKey(ctx, "web-01", "ssh-ed25519 AAAA"); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertHost(ctx, "web-01"); err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2026, 11, 24, 1, 2, 3, 456789012, time.UTC)
	if err := s.TouchHost(ctx, "web-01", seen); err != nil {
		t.Fatal(err)
	}
	h, err := s.Host(ctx, "web-01")
	if err != nil || h.AgentKey != "ssh-ed25519 AAAA" || !h.LastSeen.Equal(seen) || h.CreatedAt.IsZero() {
		t.Fatalf("host %+v %v (upsert must keep the key; times exact)", h, err)
	}
	hs, _ := s.Hosts(ctx)
	if len(hs) != 2 || hs[0].Name != "web-01" || hs[1].Name != "web-02" || !hs[1].LastSeen.IsZero() {
		t.Fatalf("hosts %+v", hs)
	}
}

func testEnrollTokens(t *testing.T, b Backend) {
	s := b.fresh(t)
	now := time.Now()
	sum := func(s string) []byte { return store.EnrollTokenHash([]byte(s)) }
	if h := sha256.Sum256([]byte("good")); !bytes.Equal(sum("good"), h[:]) {
		t.Fatal("EnrollTokenHash is not the SHA-256 of the token")
	}
	t1, h1 := store.NewEnrollToken()
	t2, _ := store.NewEnrollToken()
	if len(t1) != 43 || t1 == t2 || !bytes.Equal(h1, sum(t1)) {
		t.Fatalf("NewEnrollToken: %q (%x), then %q", t1, h1, t2)
	}
	if err := s.CreateEnrollToken(ctx, "web-01", sum("t"), now.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token for missing host: %v", err)
	}
	s.UpsertHost(ctx, "web-01")
	if ok, _ := s.HasEnrollToken(ctx, "web-01", now); ok {
		t.Fatal("token before any was made")
	}
	s.CreateEnrollToken(ctx, "web-01", sum("old"), now.Add(-time.Second))
	s.CreateEnrollToken(ctx, "web-01", sum("good"), now.Add(time.Hour))
	if ok, _ := s.HasEnrollToken(ctx, "web-01", now); !ok {
		t.Fatal("no token found")
	}
	if err := s.UseEnrollToken(ctx, "web-01", sum("old"), "k", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired token: %v", err)
	}
	if err := s.UseEnrollToken(ctx, "web-01", sum("bad"), "k", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("wrong token: %v", err)
	}
	// Two racing uses of one token: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.UseEnrollToken(ctx, "web-01", sum("good"), fmt.Sprintf("key-%d", i), now)
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrEnrolled) {
			t.Fatal(err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d uses of a single-use token succeeded", wins)
	}
	h, _ := s.Host(ctx, "web-01")
	if h.AgentKey == "" {
		t.Fatal("enrollment bound no key")
	}
	if ok, _ := s.HasEnrollToken(ctx, "web-01", now); ok {
		t.Fatal("a used token still counts")
	}
}

func testSessions(t *testing.T, b Backend) {
	s := b.fresh(t)
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	mk := func(id, host string, at time.Time) store.Session {
		return store.Session{ID: id, Person: "alice", Host: host, State: store.StateLive, Started: at, PTY: true, Source: "127.0.0.1:1"}
	}
	for i, id := range []string{"a", "b", "c"} {
		if err := s.CreateSession(ctx, mk(id, "web-01", t0.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, mk("a", "web-01", t0)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate id: %v", err)
	}
	bad := mk("d", "x", t0)
	bad.State = store.StateClosed
	if err := s.CreateSession(ctx, bad); err == nil {
		t.Fatal("a new session that is not live was accepted")
	}
	zero := 0
	end := store.SessionEnd{State: store.StateClosed, Ended: t0.Add(time.Hour), BytesIn: 5, BytesOut: 7, ExitStatus: &zero, EndReason: "exit 0"}
	if err := s.FinishSession(ctx, "c", end); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishSession(ctx, "c", end); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second finish: %v", err)
	}
	if err := s.FinishSession(ctx, "zz", end); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("finish unknown: %v", err)
	}
	c, err := s.Session(ctx, "c")
	if err != nil || c.State != store.StateClosed || c.BytesIn != 5 || c.BytesOut != 7 || c.ExitStatus == nil || *c.ExitStatus != 0 ||
		!c.Ended.Equal(t0.Add(time.Hour)) || !c.Started.Equal(t0.Add(2*time.Minute)) || !c.PTY {
		t.Fatalf("session c %+v %v", c, err)
	}
	// Live first, then newest first.
	all, _ := s.Sessions(ctx, store.SessionFilter{})
	if len(all) != 3 || all[0].ID != "b" || all[1].ID != "a" || all[2].ID != "c" {
		t.Fatalf("order %v", ids(all))
	}
	live, _ := s.Sessions(ctx, store.SessionFilter{LiveOnly: true, Since: t0.Add(time.Minute)})
	if len(live) != 1 || live[0].ID != "b" {
		t.Fatalf("live since: %v", ids(live))
	}
	if got, _ := s.Sessions(ctx, store.SessionFilter{Host: "nope"}); len(got) != 0 {
		t.Fatalf("host filter: %v", ids(got))
	}
	if got, _ := s.Sessions(ctx, store.SessionFilter{Person: "alice", Limit: 2}); len(got) != 2 {
		t.Fatalf("limit: %v", ids(got))
	}
	// Restart after a crash: live ones become interrupted, closed stay.
	gotIDs, err := s.InterruptLiveSessions(ctx, "gw", t0.Add(2*time.Hour))
	if err != nil || len(gotIDs) != 2 {
		t.Fatalf("interrupted %v %v", gotIDs, err)
	}
	a, _ := s.Session(ctx, "a")
	c, _ = s.Session(ctx, "c")
	if a.State != store.StateInterrupted || a.EndReason == "" || c.State != store.StateClosed {
		t.Fatalf("after interrupt: a %+v c %+v", a, c)
	}
	if _, err := s.Session(ctx, "zz"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	if err := s.SetSessionRecording(ctx, "a", "/spool/a.gz", 123, "ab12"); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Session(ctx, "a"); a.Recording != "/spool/a.gz" || a.RecordingSize != 123 || a.RecordingSHA256 != "ab12" {
		t.Fatalf("recording columns: %+v", a)
	}
	if err := s.MoveSessionRecording(ctx, "a", "s3://b/a.gz"); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Session(ctx, "a"); a.Recording != "s3://b/a.gz" || a.RecordingSize != 123 || a.RecordingSHA256 != "ab12" {
		t.Fatalf("after the move: %+v", a)
	}
	if err := s.MoveSessionRecording(ctx, "zz", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("move of unknown session: %v", err)
	}
	if err := s.SetSessionRecording(ctx, "zz", "x", 1, "y"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("recording of unknown session: %v", err)
	}
}

func ids(ss []store.Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func testAuditAndConcurrentWriters(t *testing.T, b Backend) {
	s := b.fresh(t)
	t0 := time.Now().UTC()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if err := s.Audit(ctx, store.AuditEvent{Time: t0.Add(time.Duration(i) * time.Millisecond), Actor: fmt.Sprint(g), Action: "test"}); err != nil {
					t.Error(err)
					return
				}
				if err := s.CreateSession(ctx, store.Session{ID: fmt.Sprintf("%d-%d", g, i), Person: "p", Host: "h", State: store.StateLive, Started: t0}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs, err := s.AuditEvents(ctx, store.AuditFilter{})
	if err != nil || len(evs) != 200 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Time.Before(evs[i-1].Time) {
			t.Fatal("events not oldest first")
		}
	}
	if late, _ := s.AuditEvents(ctx, store.AuditFilter{Since: t0.Add(24 * time.Millisecond)}); len(late) != 8 {
		t.Fatalf("since filter: %d", len(late))
	}
	if err := s.Audit(ctx, store.AuditEvent{}); err == nil {
		t.Fatal("event without action accepted")
	}
}

func testAuditFilter(t *testing.T, b Backend) {
	s := b.fresh(t)
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for i, e := range []store.AuditEvent{
		{Actor: "alice", Action: "session.kill", Target: "s1", SessionID: "s1"},
		{Actor: "bob", Action: "session.open", Target: "web-01", SessionID: "s2"},
		{Actor: "alice", Action: "auth.code", Target: "alice"},
		{Actor: "alice", Action: "sessions", Target: "x"},
		{Actor: "carol", Action: "admin.user.add", Target: "dave"},
	} {
		e.Time = t0.Add(time.Duration(i) * time.Minute)
		if err := s.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		f    store.AuditFilter
		want []string // targets, oldest first
	}{
		{store.AuditFilter{}, []string{"s1", "web-01", "alice", "x", "dave"}},
		{store.AuditFilter{Actor: "alice"}, []string{"s1", "alice", "x"}},
		{store.AuditFilter{Action: "session."}, []string{"s1", "web-01"}},
		{store.AuditFilter{Action: "session*"}, []string{"s1", "web-01", "x"}},
		{store.AuditFilter{Action: "auth.*"}, []string{"alice"}},
		{store.AuditFilter{Action: "*"}, []string{"s1", "web-01", "alice", "x", "dave"}},
		{store.AuditFilter{Action: "session"}, nil},
		{store.AuditFilter{Action: "session.kill"}, []string{"s1"}},
		{store.AuditFilter{Action: "%"}, nil},
		{store.AuditFilter{Target: "dave"}, []string{"dave"}},
		{store.AuditFilter{SessionID: "s2"}, []string{"web-01"}},
		{store.AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, []string{"web-01", "alice"}},
		{store.AuditFilter{Actor: "alice", Limit: 2}, []string{"alice", "x"}}, // the newest two, oldest first
	} {
		evs, err := s.AuditEvents(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.Target)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%+v: got %v, want %v", tc.f, got, tc.want)
		}
	}
}

func testSessionTeamFilter(t *testing.T, b Backend) {
	s := b.fresh(t)
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for i, team := range []string{"ops", "sec", "ops"} {
		x := store.Session{ID: fmt.Sprint(i), Person: "p", Team: team, Host: "h", State: store.StateLive, Started: t0.Add(time.Duration(i))}
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Sessions(ctx, store.SessionFilter{Team: "ops"}); fmt.Sprint(ids(got)) != "[2 0]" {
		t.Fatalf("team ops: %v", ids(got))
	}
	if got, _ := s.Sessions(ctx, store.SessionFilter{}); len(got) != 3 {
		t.Fatalf("no team filter: %v", ids(got))
	}
}

func testPeopleAndKeys(t *testing.T, b Backend) {
	s := b.fresh(t)
	if err := s.CreatePerson(ctx, store.Person{Name: "bob", Role: "advanced"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePerson(ctx, store.Person{Name: "alice", Role: "admin", Email: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePerson(ctx, store.Person{Name: "bob"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second bob: %v", err)
	}
	if err := s.UpdatePerson(ctx, store.Person{Name: "bob", Role: "standard", Email: "b@example.com", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdatePerson(ctx, store.Person{Name: "zed"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of nobody: %v", err)
	}
	ps, err := s.People(ctx)
	if err != nil || len(ps) != 2 || ps[0].Name != "alice" || ps[1] != (store.Person{Name: "bob", Role: "standard", Email: "b@example.com", PasswordHash: "h"}) {
		t.Fatalf("people %+v %v", ps, err)
	}

	if err := s.AddPersonKey(ctx, "zed", "SHA256:z", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("key of nobody: %v", err)
	}
	if err := s.AddPersonKey(ctx, "bob", "SHA256:b2", "ssh-ed25519 B2"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPersonKey(ctx, "bob", "SHA256:b1", "ssh-ed25519 B1"); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"bob", "alice"} {
		if err := s.AddPersonKey(ctx, who, "SHA256:b1", "x"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("key already bob's, added to %s: %v", who, err)
		}
	}
	ks, err := s.PersonKeys(ctx, "bob")
	if err != nil || len(ks) != 2 || ks[0] != (store.PersonKey{Fingerprint: "SHA256:b1", AuthorizedKey: "ssh-ed25519 B1"}) || ks[1].Fingerprint != "SHA256:b2" {
		t.Fatalf("keys %+v %v", ks, err)
	}
	if n, err := s.KeyCounts(ctx); err != nil || len(n) != 1 || n["bob"] != 2 {
		t.Fatalf("key counts %v %v, want bob's 2 and no one else", n, err)
	}
	if p, err := s.PersonByKey(ctx, "SHA256:b2"); err != nil || p.Name != "bob" {
		t.Fatalf("by key: %+v %v", p, err)
	}
	if err := s.RemovePersonKey(ctx, "alice", "SHA256:b2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing bob's key from alice: %v", err)
	}
	if err := s.RemovePersonKey(ctx, "bob", "SHA256:b2"); err != nil {
		t.Fatal(err)
	}
	if ks, _ := s.PersonKeys(ctx, "bob"); len(ks) != 1 {
		t.Fatalf("after remove: %+v", ks)
	}

	// Deleting a person takes their keys and memberships along.
	if err := s.UpsertTeam(ctx, store.Team{Name: "ops", Members: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePerson(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePerson(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.PersonByKey(ctx, "SHA256:b1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("key outlived its person: %v", err)
	}
	if tm, _ := s.Team(ctx, "ops"); fmt.Sprint(tm.Members) != "[alice]" {
		t.Fatalf("membership outlived its person: %+v", tm)
	}
	if err := s.AddPersonKey(ctx, "alice", "SHA256:b1", "ssh-ed25519 B1"); err != nil {
		t.Fatalf("a deleted person's key cannot be reused: %v", err)
	}
}

func testTeams(t *testing.T, b Backend) {
	s := b.fresh(t)
	for _, p := range []string{"alice", "bob"} {
		if err := s.CreatePerson(ctx, store.Person{Name: p, Role: "advanced"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateTeam(ctx, "sec", false); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTeam(ctx, "ops", true); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTeam(ctx, "ops", false); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second ops: %v", err)
	}
	if _, err := s.Team(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing team: %v", err)
	}
	for _, m := range []string{"bob", "alice"} {
		if err := s.AddTeamMember(ctx, "ops", m); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{"web-01", "label:env=prod", "*"} {
		if err := s.AddTeamHost(ctx, "ops", h); err != nil {
			t.Fatal(err)
		}
	}
	for name, err := range map[string]error{
		"member of missing team":  s.AddTeamMember(ctx, "nope", "alice"),
		"missing member":          s.AddTeamMember(ctx, "ops", "zed"),
		"remove non-member":       s.RemoveTeamMember(ctx, "sec", "alice"),
		"host of missing team":    s.AddTeamHost(ctx, "nope", "*"),
		"remove absent host":      s.RemoveTeamHost(ctx, "sec", "*"),
		"rapid response, no team": s.SetTeamRapidResponse(ctx, "nope", true),
		"delete missing team":     s.DeleteTeam(ctx, "nope"),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	if err := s.AddTeamMember(ctx, "ops", "bob"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("member twice: %v", err)
	}
	if err := s.AddTeamHost(ctx, "ops", "*"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("pattern twice: %v", err)
	}
	ops, err := s.Team(ctx, "ops")
	if err != nil || !ops.RapidResponse || fmt.Sprint(ops.Members) != "[alice bob]" || fmt.Sprint(ops.Hosts) != "[* label:env=prod web-01]" {
		t.Fatalf("ops %+v %v", ops, err)
	}
	if err := s.SetTeamRapidResponse(ctx, "ops", false); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveTeamMember(ctx, "ops", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveTeamHost(ctx, "ops", "*"); err != nil {
		t.Fatal(err)
	}
	ts, err := s.Teams(ctx)
	if err != nil || len(ts) != 2 || ts[0].Name != "ops" || ts[0].RapidResponse || fmt.Sprint(ts[0].Members) != "[alice]" ||
		fmt.Sprint(ts[0].Hosts) != "[label:env=prod web-01]" || ts[1].Name != "sec" || ts[1].Members != nil {
		t.Fatalf("teams %+v %v", ts, err)
	}
	if err := s.DeleteTeam(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if tt, _ := s.TeamsOf(ctx, "alice"); len(tt) != 0 {
		t.Fatalf("membership outlived its team: %+v", tt)
	}
}

func testCreateAndDeleteHost(t *testing.T, b Backend) {
	s := b.fresh(t)
	if err := s.CreateHost(ctx, "web-01", []string{"role=web", "env=prod"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateHost(ctx, "web-01", nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second web-01: %v", err)
	}
	if h, _ := s.Host(ctx, "web-01"); fmt.Sprint(h.Labels) != "[env=prod role=web]" || h.CreatedAt.IsZero() {
		t.Fatalf("host %+v", h)
	}
	sum := sha256.Sum256([]byte("t"))
	if err := s.CreateEnrollToken(ctx, "web-01", sum[:], time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteHost(ctx, "web-01"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteHost(ctx, "web-01"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// Its token went with it: a host of the same name has none.
	if ok, _ := s.HasEnrollToken(ctx, "web-01", time.Now()); ok {
		t.Fatal("a token outlived its host")
	}
	// A host of the same name starts afresh, without the old token.
	s.UpsertHost(ctx, "web-01")
	if ok, _ := s.HasEnrollToken(ctx, "web-01", time.Now()); ok {
		t.Fatal("a deleted host's token came back")
	}
}

// TestUseTOTPStep: a person's authenticator step is accepted once, and
// only if later than every one before; one person's steps are not
// another's; no one's steps are never accepted.
func testUseTOTPStep(t *testing.T, b Backend) {
	s := b.fresh(t)
	for _, n := range []string{"alice", "bob"} {
		if err := s.UpsertPerson(ctx, store.Person{Name: n, Role: "advanced"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		person string
		step   int64
		want   bool
	}{
		{"alice", 100, true},
		{"alice", 100, false}, // the same code again
		{"alice", 99, false},  // an older one
		{"bob", 100, true},
		{"alice", 101, true},
		{"nobody", 200, false},
	} {
		if got, err := s.UseTOTPStep(ctx, c.person, c.step); err != nil || got != c.want {
			t.Fatalf("UseTOTPStep(%s, %d) = %v, %v; want %v", c.person, c.step, got, err, c.want)
		}
	}
	// The last step survives the configuration's upsert at every start.
	if err := s.UpsertPerson(ctx, store.Person{Name: "alice", Role: "advanced", TOTPSecret: "X"}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.UseTOTPStep(ctx, "alice", 101); ok {
		t.Fatal("an upsert of alice forgot her last authenticator step")
	}
}
