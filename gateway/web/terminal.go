package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/rr-gateway/rr/gateway"
)

// terminal upgrades to the WebSocket of one started session: the login's
// cookie, a page of this origin (coder/websocket refuses a handshake
// whose Origin is not the request's host), and a ticket that this login
// got when the session's factors passed, used once.
func (h *Handler) terminal(w http.ResponseWriter, r *http.Request) {
	l := h.logins.get(r)
	if l == nil {
		fail(w, http.StatusUnauthorized, "log in first")
		return
	}
	t, ok := l.takeTicket(r.URL.Query().Get("ticket"), h.cfg.Now())
	if !ok {
		fail(w, http.StatusForbidden, "rr: no such session waiting for its terminal; start it again")
		return
	}
	cols, rows := dimension(r, "cols", 80), dimension(r, "rows", 24)
	l.mu.Lock()
	full := l.terminals >= h.cfg.TerminalsPerLogin
	if !full {
		l.terminals++
	}
	l.mu.Unlock()
	if full {
		fail(w, http.StatusTooManyRequests, "rr: too many terminals open from this login")
		return
	}
	defer func() {
		l.mu.Lock()
		l.terminals--
		l.mu.Unlock()
	}()
	// The server's request deadlines would end the terminal in seconds:
	// its own limits (idle, maximum length) bound it instead.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	// No compression: secrets typed and shown share a stream with what a
	// page could inject (CRIME, BREACH), and keystrokes are tiny anyway.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		h.log.Warn("web: terminal refused", "person", l.login.Person.Name, "remote", r.RemoteAddr, "err", err)
		return // Accept has answered (403 for another origin)
	}
	if h.cfg.Admitted != nil {
		h.cfg.Admitted(r)
	}
	h.wg.Add(1)
	defer h.wg.Done()
	ctx := r.Context()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// A running terminal keeps its login seen; the login's end (logout,
		// its absolute lifetime) and the console's close end the terminal.
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-h.ctx.Done():
				conn.Close(websocket.StatusGoingAway, "the gateway is shutting down")
				return
			case <-l.ended:
				conn.Close(websocket.StatusPolicyViolation, "logged out")
				return
			case <-tick.C:
				h.logins.touch(l)
			case <-stop:
				return
			}
		}
	}()
	person := l.login.Person.Name
	ch := newWSChannel(ctx, conn, func(reason string) {
		h.log.Warn("web: terminal message refused", "person", person, "remote", r.RemoteAddr, "reason", reason)
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ch.readLoop()
	}()
	if t.watch != "" {
		h.runWatch(ctx, l, remoteAddr(r), t.watch, ch)
		ch.Close()
		<-done
		return
	}
	err = h.cfg.Gateway.RunWebSession(ctx, gateway.WebTerminal{Login: t.login, Passphrase: t.passphrase,
		Remote: remoteAddr(r), Host: t.host, Event: t.event, Term: "xterm-256color", Cols: cols, Rows: rows,
		Channel: ch, Requests: ch.reqs})
	if err != nil {
		h.log.Warn("web: session not run", "person", person, "err", err)
	}
	ch.Close()
	<-done
}

// dimension is a terminal size from the query, bounded.
func dimension(r *http.Request, name string, def uint32) uint32 {
	n, err := strconv.ParseUint(r.URL.Query().Get(name), 10, 32)
	if err != nil || n == 0 || n > 1000 {
		return def
	}
	return uint32(n)
}
