package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/rr-gateway/rr/auth"
)

// cookieName is the login cookie's: the __Host- prefix makes the browser
// refuse it unless Secure, for this host only, on path /.
const cookieName = "__Host-rr-login"

// webLogin is one browser's login: who (with the team they act under),
// its CSRF token, and the terminals it has started.
type webLogin struct {
	key     [32]byte // the cookie's SHA-256: what the table is keyed by
	login   *auth.Login
	remote  string
	csrf    string
	created time.Time
	ended   chan struct{} // closed when the login ends: its terminals close

	mu        sync.Mutex
	seen      time.Time
	conv      *conversation      // the factors being asked, if any
	tickets   map[string]*ticket // started sessions not yet connected
	terminals int                // WebSockets running
}

// ticket is a session whose factors have passed, waiting for its
// WebSocket (for a short while, once).
type ticket struct {
	watch       string // a live session to watch, instead of a session to start
	host, event string
	login       *auth.Login // fresh, with the factors given
	passphrase  auth.Secret
	expires     time.Time
}

// logins is every browser's login, bounded.
type logins struct {
	idle, max time.Duration
	limit     int // logins at once, all people together
	perPerson int
	now       func() time.Time

	mu  sync.Mutex
	all map[[32]byte]*webLogin
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// add makes a login for l and returns its cookie's value; the oldest of
// the person's logins goes when they have too many.
func (ls *logins) add(l *auth.Login, remote string) (string, *webLogin, bool) {
	token := randomToken()
	now := ls.now()
	w := &webLogin{key: sha256.Sum256([]byte(token)), login: l, remote: remote, csrf: randomToken(),
		created: now, seen: now, tickets: map[string]*ticket{}, ended: make(chan struct{})}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.expireLocked(now)
	var oldest *webLogin
	n := 0
	for _, o := range ls.all {
		if o.login.Person.Name == l.Person.Name {
			n++
			if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
	}
	if n >= ls.perPerson && oldest != nil {
		ls.dropLocked(oldest)
	}
	if len(ls.all) >= ls.limit {
		return "", nil, false
	}
	ls.all[w.key] = w
	return token, w, true
}

// get returns the login of r's cookie, if it is live, and marks it seen.
func (ls *logins) get(r *http.Request) *webLogin {
	c, err := r.Cookie(cookieName)
	if err != nil || len(c.Value) != 43 {
		return nil
	}
	key := sha256.Sum256([]byte(c.Value))
	now := ls.now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	w := ls.all[key]
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.seen) > ls.idle || now.Sub(w.created) > ls.max {
		ls.dropLocked(w)
		return nil
	}
	w.seen = now
	return w
}

// remove ends w: its cookie is worth nothing from now on.
func (ls *logins) remove(w *webLogin) {
	ls.mu.Lock()
	ls.dropLocked(w)
	ls.mu.Unlock()
}

// dropLocked forgets w and ends its terminals (ls.mu held).
func (ls *logins) dropLocked(w *webLogin) {
	if ls.all[w.key] == w {
		delete(ls.all, w.key)
		close(w.ended)
	}
}

// touch keeps w seen (a terminal is running), unless it has ended or
// reached its absolute lifetime.
func (ls *logins) touch(w *webLogin) {
	now := ls.now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	w.mu.Lock()
	over := now.Sub(w.created) > ls.max
	if !over {
		w.seen = now
	}
	w.mu.Unlock()
	if over {
		ls.dropLocked(w)
	}
}

func (ls *logins) expireLocked(now time.Time) {
	for _, w := range ls.all {
		w.mu.Lock()
		old := now.Sub(w.seen) > ls.idle || now.Sub(w.created) > ls.max
		w.mu.Unlock()
		if old {
			ls.dropLocked(w)
		}
	}
}

// csrfOK compares r's CSRF header with w's token in constant time.
func (w *webLogin) csrfOK(r *http.Request) bool {
	got := r.Header.Get("X-CSRF-Token")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(w.csrf)) == 1
}

// setCookie sets the login cookie (value "" clears it).
func setCookie(w http.ResponseWriter, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: cookieName, Value: value, Path: "/", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(maxAge / time.Second)}
	if value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}
