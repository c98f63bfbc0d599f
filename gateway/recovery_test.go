package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rr-gateway/rr/evidence"
	"github.com/rr-gateway/rr/gateway"
	rec "github.com/rr-gateway/rr/recorder"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// TestRecoverSessions: what a killed run left behind is finished at the
// next start, twice over without harm. A session still marked live and
// one marked interrupted by a start that died before sealing end up
// interrupted with their files sealed as they stand and noted (size,
// SHA-256, spool path); a closed session already noted, and a file in the
// spool that is no session's, are left as they are.
func TestRecoverSessions(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	spool, err := rec.NewSpool(rec.SpoolConfig{Dir: t.TempDir(), FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	record := func(id string) {
		t.Helper()
		if err := st.CreateSession(ctx, store.Session{ID: id, Person: "alice", Host: "web-01", State: store.StateLive,
			Started: time.Now()}); err != nil {
			t.Fatal(err)
		}
		r, err := spool.Create(id, "pp", rec.Header{SessionID: id})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetSessionRecording(ctx, id, spool.Path(id), 0, ""); err != nil {
			t.Fatal(err)
		}
		r.Output([]byte("output of " + id))
		r.Close(rec.End{})
	}
	record("cut")
	if _, err := st.InterruptLiveSessions(ctx, "gw", time.Now()); err != nil {
		t.Fatal(err)
	}
	record("live")
	record("done")
	if err := st.FinishSession(ctx, "done", store.SessionEnd{State: store.StateClosed, Ended: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetSessionRecording(ctx, "done", spool.Path("done"), 1, "noted"); err != nil {
		t.Fatal(err)
	}
	stray := []byte("not a recording")
	if err := os.WriteFile(spool.Path("stray"), stray, 0o600); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		if err := gateway.RecoverSessions(ctx, "gw", st, spool, nil, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"cut", "live"} {
		b, err := os.ReadFile(spool.Path(id))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		x, err := st.Session(ctx, id)
		if err != nil || x.State != store.StateInterrupted || x.RecordingSize != int64(len(b)) ||
			x.RecordingSHA256 != hex.EncodeToString(sum[:]) || x.Recording != spool.Path(id) {
			t.Errorf("%s after recovery: %+v %v; want interrupted, %d bytes, SHA-256 %x", id, x, err, len(b), sum)
		}
	}
	if x, err := st.Session(ctx, "done"); err != nil || x.State != store.StateClosed || x.RecordingSHA256 != "noted" {
		t.Errorf("a closed, noted session changed: %+v %v", x, err)
	}
	if b, err := os.ReadFile(spool.Path("stray")); err != nil || !bytes.Equal(b, stray) {
		t.Errorf("a file that is no session's changed: %q %v", b, err)
	}
}

// TestRecoveryReopensEvents: a session a crash left live on an event
// leaves the event responding; the next start marks the session
// interrupted and opens the event again.
func TestRecoveryReopensEvents(t *testing.T) {
	ctx := context.Background()
	st, spool := recoveryParts(t)
	now := time.Now()
	if _, _, err := st.AddEvent(ctx, store.Event{ID: "e-abcdef", Source: "falco", Rule: "r", Time: now, Received: now,
		Host: "web-01", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, store.Session{ID: "s1", Person: "alice", Host: "web-01", State: store.StateLive,
		Started: now, EventID: "e-abcdef", EventRule: "r"}); err != nil {
		t.Fatal(err)
	}
	if err := st.EventResponding(ctx, "e-abcdef", "alice", now); err != nil {
		t.Fatal(err)
	}
	if err := gateway.RecoverSessions(ctx, "gw", st, spool, nil, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if e, _ := st.Event(ctx, "e-abcdef"); e.Status != store.EventOpen {
		t.Fatalf("event after recovery: %s, want open", e.Status)
	}
}

// TestRecoveryLeavesPeersAlone: with several gateways on one store, a
// restarting gateway interrupts its own live sessions, never a peer's.
func TestRecoveryLeavesPeersAlone(t *testing.T) {
	ctx := context.Background()
	st, spool := recoveryParts(t)
	for id, gw := range map[string]string{"mine": "gw", "peers": "gw-2"} {
		if err := st.CreateSession(ctx, store.Session{ID: id, Person: "alice", Host: "web-01", State: store.StateLive,
			Started: time.Now(), Gateway: gw}); err != nil {
			t.Fatal(err)
		}
	}
	if err := gateway.RecoverSessions(ctx, "gw", st, spool, nil, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if x, _ := st.Session(ctx, "mine"); x.State != store.StateInterrupted {
		t.Errorf("own session after recovery: %s, want interrupted", x.State)
	}
	if x, _ := st.Session(ctx, "peers"); x.State != store.StateLive {
		t.Errorf("a peer's live session after recovery: %s, want live", x.State)
	}
}

type manifests []evidence.Manifest

func (m *manifests) Manifest(_ context.Context, x evidence.Manifest) error {
	*m = append(*m, x)
	return nil
}

// TestRecoveryAuditsAndSigns: a session a crash left live is audited as
// interrupted, its recording's sealing too, and the sealed recording gets
// a manifest naming that event; a second start adds nothing.
func TestRecoveryAuditsAndSigns(t *testing.T) {
	ctx := context.Background()
	st, spool := recoveryParts(t)
	if err := st.CreateSession(ctx, store.Session{ID: "s1", Person: "alice", Team: "ops", Host: "web-01", State: store.StateLive,
		Started: time.Now()}); err != nil {
		t.Fatal(err)
	}
	r, err := spool.Create("s1", "pp", rec.Header{SessionID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	r.Output([]byte("output"))
	r.Close(rec.End{})
	var signed manifests
	for range 2 {
		if err := gateway.RecoverSessions(ctx, "gw", st, spool, &signed, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := st.AuditEvents(ctx, store.AuditFilter{SessionID: "s1"})
	if err != nil || len(evs) != 2 || evs[0].Action != "session.interrupted" || evs[1].Action != "session.sealed" || evs[1].Actor != "alice" {
		t.Fatalf("audit %+v, %v", evs, err)
	}
	row, _ := st.Session(ctx, "s1")
	if len(signed) != 1 {
		t.Fatalf("%d manifests", len(signed))
	}
	m := signed[0]
	if m.Session != "s1" || m.State != "interrupted" || m.SHA256 != row.RecordingSHA256 || m.Size != row.RecordingSize ||
		m.ClosedBySeq != evs[1].Seq || m.ClosedByHash != evs[1].Hash {
		t.Fatalf("manifest %+v; row %+v; sealed by %+v", m, row, evs[1])
	}
}

// recoveryParts is a fresh store and spool, closed when the test ends.
func recoveryParts(t *testing.T) (*sqlite.Store, *rec.Spool) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	spool, err := rec.NewSpool(rec.SpoolConfig{Dir: filepath.Join(dir, "spool"), FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spool.Close() })
	return st, spool
}
