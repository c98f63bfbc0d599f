package gateway

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestEndNotices: whether the person is told why their session ended is
// the cause's type, not its text. Kills and the gateway's own notices are
// told, however wrapped; a client that left, the recorder's own error and
// anything else (an internal detail that happens to start "rr: " too)
// are not. The row's reason is the cause's text, without the notice's
// "rr: ".
func TestEndNotices(t *testing.T) {
	for _, tc := range []struct {
		cause          error
		notice, reason string
		killedBy       string
	}{
		{errIdle, "rr: the session was idle too long; closed", "the session was idle too long; closed", ""},
		{fmt.Errorf("stopping: %w", errShutdown), "rr: the gateway shut down; session closed",
			"stopping: the gateway shut down; session closed", ""},
		{&killError{by: "bob", reason: "stuck"}, "rr: Session closed by bob: stuck", "killed by bob: stuck", "bob"},
		{&killError{by: "bob"}, "rr: Session closed by bob", "killed by bob", "bob"},
		{errClientGone, "", "client gone", ""},
		{fmt.Errorf("%w: disk full", errRecorder), "", "recorder failed: disk full", ""},
		{errors.New("rr: internal detail"), "", "rr: internal detail", ""},
		{context.Canceled, "", "context canceled", ""},
	} {
		if got := noticeOf(tc.cause); got != tc.notice {
			t.Errorf("%v: told %q, want %q", tc.cause, got, tc.notice)
		}
		if e := endOf(tc.cause); e.Reason != tc.reason || e.KilledBy != tc.killedBy {
			t.Errorf("%v: ended %+v, want reason %q killed by %q", tc.cause, e, tc.reason, tc.killedBy)
		}
	}
}
