package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/admin"
	"github.com/rr-gateway/rr/gateway/download"
	"github.com/rr-gateway/rr/recorder"
	"github.com/rr-gateway/rr/store"
	"golang.org/x/crypto/ssh"
)

// downloads is the recordings server for this person, as they are now;
// if they may no longer download, it tells them on ch and ends it.
func (c *personConn) downloads(ctx context.Context, ch ssh.Channel) (*download.Server, error) {
	who, err := c.caller(ctx)
	if err != nil {
		c.log.Info("downloads refused", "err", err)
		if errors.Is(err, errNoLongerAllowed) {
			c.srv.audit(store.AuditEvent{Actor: c.person, Action: "recording.download", Outcome: "denied",
				Detail: reasonNotAllowed, Source: c.remote})
		}
		writeLine(ch, false, "rr: "+err.Error())
		sendExitStatus(ch, 1)
		return nil, err
	}
	d, err := download.New(download.Config{
		Library: &library{srv: c.srv, conn: c, who: who},
		Open:    c.srv.openRecording,
		Logger:  c.log,
		Conn:    &c.downloadConn,
	})
	if err != nil {
		panic(err) // the config is built here, complete
	}
	return d, nil
}

// library is the recordings one person may fetch: closed sessions of the
// team they logged in under, or every one for an admin — the same rule as
// the console's sessions list.
type library struct {
	srv  *Server
	conn *personConn  // its counts (refused reads, fetches) are the connection's, over all its channels
	who  admin.Caller // as the channel began: for the audit (name, source)
}

// reasonNotAllowed is how the audit says a person may no longer download.
const reasonNotAllowed = "may no longer download (role or team changed)"

// maxRefusedListed bounds the refused reads of one connection audited
// (and logged) one by one; the rest are summed up in one row when it ends
// (auditDownloadSums), so that a client asking for names in a loop, on
// one channel or many, cannot fill the audit table.
const maxRefusedListed = 20

// maxAuditPath bounds a refused path as the audit keeps it.
const maxAuditPath = 256

// maxListed bounds the recordings listed at once (newest first).
const maxListed = 1000

// entry describes x's recording. Its location names the session, not the
// file: the uploader may move the file to S3 at any moment, so every open
// reads where it is now (openRecording).
func entry(x store.Session) download.Entry {
	return download.Entry{ID: x.ID, Host: x.Host, Started: x.Started,
		Size: x.RecordingSize, SHA256: x.RecordingSHA256, Location: x.ID, Event: x.EventID}
}

// openRecording opens the recording of the session id (a download.Entry's
// location), wherever the store says it is now. A stored copy failing its
// own checksum is the download's integrity failure, told as such.
func (s *Server) openRecording(ctx context.Context, id string, offset int64) (io.ReadCloser, error) {
	x, err := s.cfg.Store.Session(ctx, id)
	if err != nil {
		return nil, err
	}
	if x.Recording == "" {
		return nil, fmt.Errorf("session %s has no recording", id)
	}
	rc, err := s.cfg.Recordings.Open(ctx, x.Recording, offset)
	if err != nil {
		return nil, err
	}
	return integrityErrors{rc}, nil
}

// integrityErrors reports a recording that fails its stored checksum as
// the download's integrity failure.
type integrityErrors struct{ io.ReadCloser }

func (r integrityErrors) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if errors.Is(err, recorder.ErrCorrupt) {
		err = fmt.Errorf("%w: %v", download.ErrIntegrity, err)
	}
	return n, err
}

// now is the person as they are now (role, team): a change reaches a
// download channel opened before it at its next request.
func (l *library) now(ctx context.Context) (admin.Caller, error) {
	who, err := l.conn.caller(ctx)
	if errors.Is(err, errNoLongerAllowed) {
		return who, download.ErrNotAllowed
	}
	return who, err
}

func (l *library) List(ctx context.Context) ([]download.Entry, error) {
	who, err := l.now(ctx)
	if err != nil {
		return nil, err
	}
	f := store.SessionFilter{Limit: maxListed}
	if who.Role != auth.RoleAdmin {
		f.Team = who.Team
	}
	xs, err := l.srv.cfg.Store.Sessions(ctx, f)
	if err != nil {
		return nil, err
	}
	var out []download.Entry
	for _, x := range xs {
		if admin.MaySee(who, x) && admin.Downloadable(x) {
			out = append(out, entry(x))
		}
	}
	return out, nil
}

func (l *library) Lookup(ctx context.Context, id string) (download.Entry, error) {
	who, err := l.now(ctx)
	if err != nil {
		return download.Entry{}, err
	}
	x, err := l.srv.cfg.Store.Session(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !admin.MaySee(who, x)) {
		return download.Entry{}, download.ErrNotFound
	}
	if err != nil {
		return download.Entry{}, err
	}
	switch {
	case x.State == store.StateLive:
		return download.Entry{}, download.ErrLive
	case x.Recording == "":
		return download.Entry{}, download.ErrNotFound // never recorded (refused before it started)
	case !admin.Downloadable(x):
		return download.Entry{}, download.ErrUnsealed
	case !recorder.Remote(x.Recording) && x.Gateway != "" && x.Gateway != l.srv.cfg.Name:
		// In a peer's spool: its path means nothing here.
		return download.Entry{}, &download.ElsewhereError{Gateway: x.Gateway, Advertise: x.GatewayAdvertise}
	}
	return entry(x), nil
}

// Refused audits a refused read: a recording that does not exist, that
// the person may not see (the two read the same to them, not here), whose
// session is still live or whose recording is not finalized, or a person
// who may no longer download. Past maxRefusedListed on the connection,
// they are only counted (auditDownloadSums).
func (l *library) Refused(name, via string, err error) {
	if l.conn.refused.Add(1) > maxRefusedListed {
		return
	}
	reason := "no such recording, or not theirs to see"
	switch {
	case errors.Is(err, download.ErrLive):
		reason = "the session is still live"
	case errors.Is(err, download.ErrNotAllowed):
		reason = reasonNotAllowed
	case errors.Is(err, download.ErrUnsealed):
		reason = "its recording is not finalized yet"
	case errors.Is(err, download.ErrElsewhere):
		reason = "its recording is only in another gateway's spool"
	}
	if len(name) > maxAuditPath { // a path may be 256 KiB long; the audit row need not
		name = strings.ToValidUTF8(name[:maxAuditPath], "") + "…"
	}
	l.srv.audit(store.AuditEvent{Actor: l.who.Person, Action: "recording.download", Target: name, Outcome: "denied",
		Detail: via + ": " + reason, Source: l.who.Source})
	l.srv.log.Info("recording download refused", "path", name, "person", l.who.Person, "via", via, "reason", reason)
}

// fetchedBefore counts a download of id with outcome on this connection
// and reports whether there was one before.
func (c *personConn) fetchedBefore(id, outcome string) bool {
	c.fetchesMu.Lock()
	defer c.fetchesMu.Unlock()
	if c.fetches == nil {
		c.fetches = map[[2]string]int{}
	}
	k := [2]string{id, outcome}
	c.fetches[k]++
	return c.fetches[k] > 1
}

// auditDownloadSums audits what the connection's downloads did not audit
// one by one: repeated downloads of a recording (a row for each recording
// and outcome) and refused reads past maxRefusedListed (one row).
// handlePerson calls it at the end.
func (c *personConn) auditDownloadSums() {
	c.fetchesMu.Lock()
	for k, n := range c.fetches {
		if n > 1 {
			c.srv.audit(store.AuditEvent{Actor: c.person, Action: "recording.download", Target: k[0], Outcome: k[1],
				Detail: fmt.Sprintf("%d more downloads of it on this connection, not listed one by one", n-1),
				Source: c.remote, SessionID: k[0]})
		}
	}
	c.fetchesMu.Unlock()
	c.auditUnlistedRefusals()
}

// auditUnlistedRefusals audits, in one row, the refused reads of the
// connection past maxRefusedListed.
func (c *personConn) auditUnlistedRefusals() {
	if n := c.refused.Load() - maxRefusedListed; n > 0 {
		c.srv.audit(store.AuditEvent{Actor: c.person, Action: "recording.download", Outcome: "denied",
			Detail: fmt.Sprintf("%d more refused reads on this connection, not listed one by one", n), Source: c.remote})
		c.log.Warn("recording downloads refused, not listed one by one", "count", n)
	}
}

// Fetched audits a download: the first of each recording and outcome on
// the connection in a row of its own, the ones after it counted and summed
// up when the connection ends (auditDownloadSums), so that opening the
// same recording in a loop cannot fill the audit table.
func (l *library) Fetched(e download.Entry, via string, sent int64, err error) {
	outcome, detail := "allowed", fmt.Sprintf("%s, %d bytes", via, sent)
	if err != nil {
		outcome, detail = "failed", fmt.Sprintf("%s, %d bytes: %v", via, sent, err)
	}
	action, key := "recording.download", e.ID
	if e.Manifest != nil {
		action, key = "recording.manifest", e.ID+".manifest"
	}
	if l.conn.fetchedBefore(key, outcome) {
		l.srv.log.Debug("recording downloaded again", "session", e.ID, "via", via, "bytes", sent, "err", err)
		return
	}
	l.srv.audit(store.AuditEvent{Actor: l.who.Person, Action: action, Target: e.ID, Outcome: outcome,
		Detail: detail, Source: l.who.Source, SessionID: e.ID})
	l.srv.log.Info("recording downloaded", "session", e.ID, "person", l.who.Person, "via", via, "bytes", sent, "err", err)
}

// Manifest is session id's signed manifest (download.Manifests).
func (l *library) Manifest(ctx context.Context, id string) ([]byte, error) {
	ev := l.srv.cfg.Evidence
	if ev == nil {
		return nil, store.ErrNotFound
	}
	return ev.Store.Manifest(ctx, id)
}

// downloadCommand is the scp command line that fetches id's recording.
func (s *Server) downloadCommand(id string) string {
	host, port := s.cfg.Address, ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		host, port = h, p
	}
	if port != "" && port != "22" {
		return fmt.Sprintf("scp -P %s rr@%s:recordings/%s.gz .", port, host, id)
	}
	return fmt.Sprintf("scp rr@%s:recordings/%s.gz .", host, id)
}
