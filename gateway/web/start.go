package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/rr-gateway/rr/auth"
)

// ticketTTL is how long a started session waits for its terminal.
const ticketTTL = time.Minute

// start begins a session on a host (or an event's host): the host's
// passphrase and the second factor are asked, one question per request,
// on a fresh Login: every session asks them anew, as an SSH connection
// does. No terminal opens before they have passed.
func (h *Handler) start(w http.ResponseWriter, r *http.Request, l *webLogin) {
	var in struct {
		Host  string `json:"host"`
		Event string `json:"event"`
	}
	if !decode(w, r, &in) {
		return
	}
	if (in.Host == "") == (in.Event == "") {
		fail(w, http.StatusBadRequest, "rr: name a host or an event")
		return
	}
	host := in.Host
	if in.Event != "" {
		var err error
		if host, err = h.eventHost(r, l, in.Event); err != nil {
			fail(w, http.StatusNotFound, "rr: "+err.Error())
			return
		}
	}
	hosts, err := h.cfg.Gateway.WebHosts(r.Context(), l.login)
	if err != nil {
		fail(w, http.StatusForbidden, "rr: "+err.Error())
		return
	}
	known, online := false, false
	for _, x := range hosts {
		if x.Name == host {
			known, online = true, x.Online
		}
	}
	switch {
	case !known:
		fail(w, http.StatusNotFound, fmt.Sprintf("rr: no host %q that you may reach", host))
		return
	case !online:
		fail(w, http.StatusConflict, fmt.Sprintf("rr: host %q is offline: its agent is not connected to the gateway", host))
		return
	}
	fresh := l.login.Fresh()
	h.wg.Add(1)
	c := startConversation(h.ctx, h.cfg.PromptGrace, nil, func(ctx context.Context, c *conversation) (any, error) {
		defer h.wg.Done()
		pp, err := h.cfg.Auth.HostFactors(ctx, c, fresh, host)
		if err != nil {
			return nil, err
		}
		return &ticket{host: host, event: in.Event, login: fresh, passphrase: pp}, nil
	})
	l.mu.Lock()
	if l.conv != nil {
		l.conv.stop() // one session's factors at a time per login
	}
	l.conv = c
	l.mu.Unlock()
	q, err := c.next(r.Context())
	h.startStep(w, r, l, c, q, err)
}

// startAnswer answers the pending session's question.
func (h *Handler) startAnswer(w http.ResponseWriter, r *http.Request, l *webLogin) {
	var in answer
	if !decode(w, r, &in) {
		return
	}
	l.mu.Lock()
	c := l.conv
	l.mu.Unlock()
	if c == nil || c.id != in.Conv {
		fail(w, http.StatusConflict, "rr: that session's questions are over; start again")
		return
	}
	q, err := c.answer(r.Context(), in.Answer)
	h.startStep(w, r, l, c, q, err)
}

func (h *Handler) startStep(w http.ResponseWriter, r *http.Request, l *webLogin, c *conversation, q *question, err error) {
	if q != nil {
		reply(w, http.StatusOK, step{Conv: c.id, Question: q})
		return
	}
	c.stop()
	l.mu.Lock()
	if l.conv == c {
		l.conv = nil
	}
	l.mu.Unlock()
	t, _ := c.value.(*ticket)
	if err != nil || t == nil {
		fail(w, http.StatusUnauthorized, refusal(err))
		return
	}
	id, ok := l.addTicket(t, h.cfg.Now().Add(ticketTTL), h.cfg.TerminalsPerLogin)
	if !ok {
		fail(w, http.StatusTooManyRequests, "rr: too many sessions waiting for their terminal")
		return
	}
	reply(w, http.StatusOK, step{Done: true, Ticket: id})
}

// addTicket keeps t until expires under a new id, unless l has max
// waiting already.
func (l *webLogin) addTicket(t *ticket, expires time.Time, max int) (string, bool) {
	t.expires = expires
	id := randomToken()
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, o := range l.tickets {
		if expires.Add(-ticketTTL).After(o.expires) {
			delete(l.tickets, k)
		}
	}
	if len(l.tickets) >= max {
		return "", false
	}
	l.tickets[id] = t
	return id, true
}

// takeTicket returns, once, the started session id names.
func (l *webLogin) takeTicket(id string, now time.Time) (*ticket, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tickets[id]
	delete(l.tickets, id)
	if t == nil || now.After(t.expires) {
		return nil, false
	}
	return t, true
}

var _ auth.Prompter = (*conversation)(nil)
