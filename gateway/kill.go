package gateway

import (
	"context"
	"fmt"

	"github.com/rr-gateway/rr/gateway/admin"
)

// ErrNotLive is Kill's answer for a session that is not live here.
var ErrNotLive = admin.ErrNotLive

// Kill ends live session id on behalf of by: the person is told
// "Session closed by BY: REASON", the host side (its whole process
// session) is ended, and the recording and the row are finalized with
// who killed it before Kill returns. A session that ended on its own
// before the kill reached it is admin.ErrEndedFirst.
func (s *Server) Kill(ctx context.Context, id, by, reason string) error {
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil {
		return ErrNotLive
	}
	ss.log.Info("session killed", "by", by, "reason", reason)
	ss.cancel(&killError{by: by, reason: reason})
	select {
	case <-ss.finished:
		if ss.killedBy != by {
			return admin.ErrEndedFirst
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("session %s: not finalized yet: %w", id, ctx.Err())
	}
}

// killError is the cause of a session killed by someone: a toldEnd.
type killError struct{ by, reason string }

// Error is how the row and the recording say it ended, in the same lower
// case as the other reasons ("exit 0", "agent lost").
func (k *killError) Error() string {
	if k.reason == "" {
		return "killed by " + k.by
	}
	return "killed by " + k.by + ": " + k.reason
}

// Notice is what the person reads.
func (k *killError) Notice() string {
	msg := "rr: Session closed by " + k.by
	if k.reason != "" {
		msg += ": " + k.reason
	}
	return msg
}
