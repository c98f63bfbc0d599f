package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rr-gateway/rr/recorder"
)

// RecordingStore is what spool recording needs of the store.
type RecordingStore interface {
	SetSessionRecording(ctx context.Context, id, location string, size int64, sha256hex string) error
}

// SpoolRecorders records every session into sp, keyed by the passphrase
// the person gave for the host, and notes each file's location, size and
// SHA-256 in the store. It fails closed: no passphrase, no file, no
// session.
// onFinished, if not nil, is called once each session is over: its
// recording finalized and its row closed (to start its upload, which
// takes only recordings of sessions that are over).
func SpoolRecorders(sp *recorder.Spool, st RecordingStore, log *slog.Logger, onFinished func()) Recorders {
	return spoolRecorders{sp: sp, st: st, log: log, onFinished: onFinished}
}

type spoolRecorders struct {
	sp         *recorder.Spool
	st         RecordingStore
	log        *slog.Logger
	onFinished func()
}

// sessionFinisher is a SessionRecorder that also hears when its session's
// row is final: finishSession calls Finished once, after Close and after
// the row is closed, whatever became of either.
type sessionFinisher interface {
	Finished()
}

func (r spoolRecorders) Start(ctx context.Context, info SessionInfo) (SessionRecorder, error) {
	if info.Passphrase.IsZero() {
		return nil, errors.New("no passphrase to key the recording")
	}
	cols, rows := int(info.Cols), int(info.Rows)
	if cols == 0 || rows == 0 {
		cols, rows = 80, 24
	}
	h := recorder.Header{
		Width: cols, Height: rows, Timestamp: info.Started.Unix(),
		Title:     fmt.Sprintf("rr session %s: %s on %s", info.ID, info.Person, info.Host),
		SessionID: info.ID, Host: info.Host, Person: info.Person, Team: info.Team,
		Command: info.Command, PTY: info.PTY, Gateway: info.Gateway,
		Event: info.EventID, EventRule: info.EventRule, Client: info.Client,
	}
	if info.EventID != "" {
		h.Title += " (event " + info.EventID + ")"
	}
	if info.Term != "" {
		h.Env = map[string]string{"TERM": info.Term}
	}
	rec, err := r.sp.Create(info.ID, info.Passphrase.Reveal(), h)
	if err != nil {
		return nil, err
	}
	// Say where it is at once: a crash leaves the row pointing at the file.
	if err := r.st.SetSessionRecording(ctx, info.ID, r.sp.Path(info.ID), 0, ""); err != nil {
		rec.Close(recorder.End{Reason: "recording not registered"})
		return nil, err
	}
	return &spoolRecording{rec: rec, id: info.ID, st: r.st, log: r.log, onFinished: r.onFinished}, nil
}

type spoolRecording struct {
	rec        *recorder.Recording
	id         string
	st         RecordingStore
	log        *slog.Logger
	onFinished func()
}

func (s *spoolRecording) Input(p []byte) error           { return s.rec.Input(p) }
func (s *spoolRecording) Output(p []byte) error          { return s.rec.Output(p) }
func (s *spoolRecording) Resize(cols, rows uint32) error { return s.rec.Resize(cols, rows) }

func (s *spoolRecording) Close(end SessionEnd) error {
	closed, err := s.rec.Close(recorder.End{Reason: end.Reason, ExitStatus: end.ExitStatus, Signal: end.Signal, KilledBy: end.KilledBy})
	if err != nil {
		return err
	}
	write := func(ctx context.Context) error {
		return s.st.SetSessionRecording(ctx, s.id, closed.Path, closed.Size, closed.SHA256)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := write(ctx); err != nil {
		return &pendingRowWrite{err: err, write: write}
	}
	return nil
}

// pendingRowWrite is Close's answer when the file is final but its row
// could not be told (the store does not answer): write tells it, later.
type pendingRowWrite struct {
	err   error
	write func(context.Context) error
}

func (p *pendingRowWrite) Error() string { return "recording's row not updated: " + p.err.Error() }
func (p *pendingRowWrite) Unwrap() error { return p.err }

// Finished starts the upload: the session's row is final now. (From Close
// it would find the row still live, and wait for the next rescan.)
func (s *spoolRecording) Finished() {
	if s.onFinished != nil {
		s.onFinished()
	}
}
