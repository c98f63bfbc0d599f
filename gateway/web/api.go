package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/store"
)

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, l *webLogin) {
	h.logins.remove(l)
	l.mu.Lock()
	if l.conv != nil {
		l.conv.stop()
	}
	l.mu.Unlock()
	h.log.Info("web: logout", "person", l.login.Person.Name, "remote", r.RemoteAddr)
	setCookie(w, "", 0)
	reply(w, http.StatusOK, map[string]bool{"done": true})
}

// me is who is logged in, and the CSRF token the page sends back.
func (h *Handler) me(w http.ResponseWriter, r *http.Request, l *webLogin) {
	who, err := h.cfg.Gateway.WebCaller(r.Context(), l.login, l.remote)
	if err != nil {
		h.logins.remove(l)
		fail(w, http.StatusUnauthorized, "rr: "+err.Error())
		return
	}
	reply(w, http.StatusOK, map[string]string{"person": who.Person, "role": who.Role, "team": who.Team, "csrf": l.csrf})
}

func (h *Handler) hosts(w http.ResponseWriter, r *http.Request, l *webLogin) {
	list, err := h.cfg.Gateway.WebHosts(r.Context(), l.login)
	if err != nil {
		fail(w, http.StatusForbidden, "rr: "+err.Error())
		return
	}
	reply(w, http.StatusOK, list)
}

// console runs one rr-admin console command for l's person (as they are
// now) and answers with its JSON output: the console's rules, checks
// and audit are the web's.
func (h *Handler) console(w http.ResponseWriter, r *http.Request, l *webLogin, words ...string) {
	out, status, err := h.runConsole(r, l, http.StatusBadRequest, words...)
	if err != nil {
		fail(w, status, "rr: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// runConsole runs one console command for l's person as they are now. Its
// error is what the person reads, with the status to answer: 403 when
// they may no longer use the console, 404 for what they may not see (the
// console says "no …" alike for what does not exist), else otherwise.
func (h *Handler) runConsole(r *http.Request, l *webLogin, otherwise int, words ...string) ([]byte, int, error) {
	who, err := h.cfg.Gateway.WebCaller(r.Context(), l.login, l.remote)
	if err != nil {
		return nil, http.StatusForbidden, err
	}
	var out bytes.Buffer
	if err := h.cfg.Gateway.Console().Exec(r.Context(), who, quoteLine(words), &out); err != nil {
		if strings.HasPrefix(err.Error(), "no ") {
			return nil, http.StatusNotFound, err
		}
		return nil, otherwise, err
	}
	return out.Bytes(), http.StatusOK, nil
}

// quoteLine makes a console line of words, each quoted: the words are the
// browser's (a reason, an id), never console syntax.
func quoteLine(words []string) string {
	var b strings.Builder
	for i, word := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		for _, r := range word {
			if unicode.IsControl(r) {
				r = ' '
			}
			if r == '"' || r == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
	}
	return b.String()
}

func (h *Handler) events(w http.ResponseWriter, r *http.Request, l *webLogin) {
	h.console(w, r, l, "events", "--json", "--limit", "200")
}

func (h *Handler) event(w http.ResponseWriter, r *http.Request, l *webLogin) {
	h.console(w, r, l, "event", "show", r.PathValue("id"), "--json")
}

func (h *Handler) sessions(w http.ResponseWriter, r *http.Request, l *webLogin) {
	h.console(w, r, l, "sessions", "--json", "--limit", "200")
}

// closeSession kills a live session with the console's kill: its person
// is told who closed it and why.
func (h *Handler) closeSession(w http.ResponseWriter, r *http.Request, l *webLogin) {
	var in struct {
		Reason string `json:"reason"`
	}
	if !decode(w, r, &in) {
		return
	}
	if len(in.Reason) > 200 {
		fail(w, http.StatusBadRequest, "rr: the reason is too long (200 characters at most)")
		return
	}
	words := []string{"kill", r.PathValue("id")}
	if in.Reason = strings.TrimSpace(in.Reason); in.Reason != "" {
		words = append(words, in.Reason)
	}
	out, status, err := h.runConsole(r, l, http.StatusConflict, words...)
	if err != nil {
		fail(w, status, "rr: "+err.Error())
		return
	}
	reply(w, http.StatusOK, map[string]string{"closed": r.PathValue("id"), "message": strings.TrimSpace(string(out))})
}

// recording sends a closed session's recording file, as stored.
func (h *Handler) recording(w http.ResponseWriter, r *http.Request, l *webLogin) {
	id := r.PathValue("id")
	who, err := h.cfg.Gateway.WebCaller(r.Context(), l.login, l.remote)
	if err != nil {
		fail(w, http.StatusForbidden, "rr: "+err.Error())
		return
	}
	started := false
	err = h.cfg.Gateway.WebRecording(r.Context(), who, id, func(x store.Session) {
		started = true
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Length", strconv.FormatInt(x.RecordingSize, 10))
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.gz"`, x.ID))
		w.Header().Set("Digest", "sha-256="+x.RecordingSHA256)
	}, w)
	switch {
	case errors.Is(err, gateway.ErrNoRecording):
		fail(w, http.StatusNotFound, fmt.Sprintf("rr: no closed session %q that you may download", id))
	case err != nil && !started:
		h.log.Error("web: recording", "session", id, "err", err)
		fail(w, http.StatusInternalServerError, "rr: the recording cannot be read now; the gateway log says why")
	case err != nil:
		// Part of it went out: cut the response short, so the browser
		// keeps no file that looks whole.
		h.log.Error("web: recording cut short", "session", id, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// eventHost is the host of event id, if l's person may see it.
func (h *Handler) eventHost(r *http.Request, l *webLogin, id string) (string, error) {
	out, _, err := h.runConsole(r, l, http.StatusBadRequest, "event", "show", id, "--json")
	if err != nil {
		return "", err
	}
	var e struct {
		Host string `json:"host"`
	}
	if err := json.Unmarshal(out, &e); err != nil || e.Host == "" {
		return "", fmt.Errorf("event %s fired on a host rr does not know", id)
	}
	return e.Host, nil
}
