package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rr-gateway/rr/recorder"
	"github.com/rr-gateway/rr/store"
)

// RecoveryStore is what RecoverSessions needs of the store.
type RecoveryStore interface {
	InterruptLiveSessions(ctx context.Context, gateway string, now time.Time) ([]string, error)
	Session(ctx context.Context, id string) (store.Session, error)
	EventSessionEnded(ctx context.Context, id string, at time.Time) error
	Audit(ctx context.Context, e store.AuditEvent) error
	RecordingStore
}

// RecoverSessions finishes, at start, what an earlier run of the gateway
// named gateway left undone: sessions it left live (its own rows only,
// never a peer's on the same store) are marked interrupted (an event they responded
// to is open again), and every recording in the
// spool whose session is over but has no size and SHA-256 noted is sealed
// as it stands (never appended to) and noted. It is idempotent: a run that
// dies during it, between marking and sealing, leaves sessions the next
// start still seals. Until then the uploader leaves their files alone.
// Each session it marks is audited (session.interrupted), and so is each
// recording it seals (session.sealed), which notary, if not nil, then
// signs a manifest for, naming that event. Call it before serving.
func RecoverSessions(ctx context.Context, gateway string, st RecoveryStore, spool *recorder.Spool, notary Notary, log *slog.Logger) error {
	ids, err := st.InterruptLiveSessions(ctx, gateway, time.Now())
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		log.Warn("sessions left live by an earlier run marked interrupted", "sessions", ids)
	}
	// Their events are no longer being responded to.
	for _, id := range ids {
		sess, err := st.Session(ctx, id)
		if err != nil {
			continue
		}
		if _, err := appendAudit(ctx, st, store.AuditEvent{Time: time.Now(), Actor: sess.Person, Action: "session.interrupted",
			Target: sess.Host, Outcome: "allowed", Detail: "the gateway stopped without closing it", SessionID: id}); err != nil {
			return err
		}
		if sess.EventID != "" {
			if err := st.EventSessionEnded(ctx, sess.EventID, time.Now()); err != nil {
				return err
			}
		}
	}
	files, err := spool.IDs()
	if err != nil {
		return err
	}
	inSpool := map[string]bool{}
	for _, id := range files {
		inSpool[id] = true
		sess, err := st.Session(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // not a session's
		}
		if err != nil {
			return err
		}
		if sess.State == store.StateLive || sess.RecordingSHA256 != "" {
			continue
		}
		closed, err := spool.Seal(id)
		if err != nil {
			log.Warn("recording of an ended session cannot be sealed", "session", id, "err", err)
			continue
		}
		if err := st.SetSessionRecording(ctx, id, closed.Path, closed.Size, closed.SHA256); err != nil {
			return err
		}
		log.Info("recording of an ended session sealed as it stands", "session", id, "state", sess.State,
			"size", closed.Size, "sha256", closed.SHA256)
		sealed, err := appendAudit(ctx, st, store.AuditEvent{Time: time.Now(), Actor: sess.Person, Action: "session.sealed",
			Target: sess.Host, Outcome: "allowed", Detail: fmt.Sprintf("recording sealed as it stood: %d bytes", closed.Size), SessionID: id})
		if err != nil {
			return err
		}
		if notary != nil && sealed.Seq != 0 {
			sess.RecordingSize, sess.RecordingSHA256 = closed.Size, closed.SHA256
			if err := notary.Manifest(ctx, ManifestOf(sess, sealed)); err != nil {
				log.Error("manifest not signed", "session", id, "err", err)
			}
		}
	}
	for _, id := range ids {
		if !inSpool[id] {
			log.Warn("interrupted session has no recording file", "session", id)
		}
	}
	return nil
}

// appendAudit appends e through st, and returns it with its place in the
// chain when st says (an auditAppender); otherwise as given.
func appendAudit(ctx context.Context, st interface {
	Audit(ctx context.Context, e store.AuditEvent) error
}, e store.AuditEvent) (store.AuditEvent, error) {
	if a, ok := st.(auditAppender); ok {
		return a.AppendAudit(ctx, e)
	}
	return e, st.Audit(ctx, e)
}
