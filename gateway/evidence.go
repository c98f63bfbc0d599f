package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rr-gateway/rr/evidence"
	"github.com/rr-gateway/rr/gateway/admin"
	"github.com/rr-gateway/rr/store"
)

// Notary is what the gateway needs of evidence.Notary.
type Notary interface {
	Manifest(ctx context.Context, m evidence.Manifest) error
}

// auditAppender is a store that says where in the chain an event went
// (store/sqlite does): a manifest names the event that closed its
// session.
type auditAppender interface {
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// closeEvidence audits a session's end and signs its recording's
// manifest, once its row is final.
func (s *Server) closeEvidence(ctx context.Context, ss *session, end SessionEnd, at time.Time) error {
	row, rerr := s.cfg.Store.Session(ctx, ss.id)
	if rerr != nil && !errors.Is(rerr, store.ErrNotFound) {
		return rerr // the store does not answer: try again, in order
	}
	e := store.AuditEvent{Time: at, Actor: row.Person, Action: "session.close", Target: ss.host,
		Outcome: "allowed", Detail: end.Reason, SessionID: ss.id}
	if end.KilledBy != "" {
		e.Detail = "killed by " + end.KilledBy + ": " + end.Reason
	}
	closed, err := appendAudit(ctx, s.cfg.Store, e)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	switch {
	case s.cfg.Notary == nil, closed.Seq == 0: // no notary, or a store without the chain
	case rerr != nil:
		ss.log.Error("manifest not signed: session row", "err", rerr)
	case !admin.Downloadable(row):
		ss.log.Warn("manifest not signed: the recording was not finalized")
	default:
		if err := s.cfg.Notary.Manifest(ctx, ManifestOf(row, closed)); err != nil {
			ss.log.Error("manifest not signed", "err", err)
		}
	}
	return nil
}

// ManifestOf is the manifest of a finalized session's recording, closed
// by audit event closed.
func ManifestOf(row store.Session, closed store.AuditEvent) evidence.Manifest {
	return evidence.Manifest{Session: row.ID, Host: row.Host, Person: row.Person, Team: row.Team,
		Event: row.EventID, Started: row.Started, Ended: row.Ended, State: string(row.State),
		Size: row.RecordingSize, SHA256: row.RecordingSHA256, ClosedBySeq: closed.Seq, ClosedByHash: closed.Hash}
}
