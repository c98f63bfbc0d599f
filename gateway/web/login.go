package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/rr-gateway/rr/auth"
)

// step is what a conversation's request answers: the next question (and
// the conversation to answer it in), or the end.
type step struct {
	Conv     string    `json:"conv,omitempty"`
	Question *question `json:"question,omitempty"`
	Done     bool      `json:"done,omitempty"`
	Ticket   string    `json:"ticket,omitempty"` // a started session's, for its terminal
	CSRF     string    `json:"csrf,omitempty"`   // a login's
}

// refusal is what a person reads of a refused login or factor: auth's
// message when it has one for them, else a plain "permission denied"
// (no telling an unknown name from a wrong password).
func refusal(err error) string {
	var d *auth.Denied
	if errors.As(err, &d) && d.Message != "" {
		return d.Message
	}
	if errors.Is(err, errAbandoned) {
		return "rr: the question was not answered in time; start again"
	}
	return "rr: permission denied"
}

// login checks a username and password as an SSH login would (the same
// service, limits, lockouts and audit); a person in several Rapid
// Response teams is asked which one they act under.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if !decode(w, r, &in) {
		return
	}
	h.mu.Lock()
	busy := len(h.pending) >= h.cfg.PendingLogins
	h.mu.Unlock()
	if busy {
		fail(w, http.StatusServiceUnavailable, "rr: too many logins in progress; try again in a minute")
		return
	}
	remote := remoteAddr(r)
	h.wg.Add(1)
	c := startConversation(h.ctx, h.cfg.PromptGrace, []string{in.Username, in.Password}, func(ctx context.Context, c *conversation) (any, error) {
		defer h.wg.Done()
		return h.cfg.Auth.Interactive(ctx, c, nil, auth.ServiceLogin, "", remote)
	})
	q, err := c.next(r.Context())
	h.loginStep(w, r, c, q, err, true)
}

// answer is a conversation's answer, as the page posts it.
type answer struct {
	Conv   string `json:"conv"`
	Answer string `json:"answer"`
}

// loginAnswer answers a pending login's question (the team).
func (h *Handler) loginAnswer(w http.ResponseWriter, r *http.Request) {
	var in answer
	if !decode(w, r, &in) {
		return
	}
	h.mu.Lock()
	c := h.pending[in.Conv]
	h.mu.Unlock()
	if c == nil || len(in.Conv) != 43 {
		fail(w, http.StatusUnauthorized, "rr: that login is over; start again")
		return
	}
	q, err := c.answer(r.Context(), in.Answer)
	h.loginStep(w, r, c, q, err, false)
}

// loginStep answers with the login's next question, or its end: a new
// cookie (a fresh one at every login) and the CSRF token.
func (h *Handler) loginStep(w http.ResponseWriter, r *http.Request, c *conversation, q *question, err error, first bool) {
	if q != nil {
		if first {
			h.mu.Lock()
			h.pending[c.id] = c
			h.mu.Unlock()
			h.wg.Add(1)
			go func() { // forget it when it ends, answered or not
				defer h.wg.Done()
				<-c.done
				h.mu.Lock()
				delete(h.pending, c.id)
				h.mu.Unlock()
			}()
		}
		reply(w, http.StatusOK, step{Conv: c.id, Question: q})
		return
	}
	c.stop()
	if err != nil {
		if r.Context().Err() == nil {
			h.log.Info("web: login refused", "remote", r.RemoteAddr, "err", err)
		}
		fail(w, http.StatusUnauthorized, refusal(err))
		return
	}
	l, _ := c.value.(*auth.Login)
	if l == nil {
		fail(w, http.StatusUnauthorized, "rr: permission denied")
		return
	}
	token, wl, ok := h.logins.add(l, remoteAddr(r))
	if !ok {
		fail(w, http.StatusServiceUnavailable, "rr: too many people logged in to the web console; try again later")
		return
	}
	h.log.Info("web: login", "person", l.Person.Name, "team", l.Team.Name, "remote", r.RemoteAddr)
	setCookie(w, token, h.cfg.MaxLogin)
	reply(w, http.StatusOK, step{Done: true, CSRF: wl.csrf})
}
