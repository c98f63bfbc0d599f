package events

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// MaxBody bounds one delivery's body.
const MaxBody = 1 << 20

// HandlerConfig configures the intake's HTTP handler. Intake is required;
// a source without a token refuses every delivery.
type HandlerConfig struct {
	Intake *Intake
	// Tokens maps a source (SourceFalco, SourceAlertmanager) to its
	// bearer token.
	Tokens map[string][]byte
	// HostLabels name an Alertmanager alert's host (nil: DefaultHostLabels).
	HostLabels []string
	// Rate and Burst limit the deliveries accepted from each source
	// (per second; 0: 200 and 1000).
	Rate   float64
	Burst  int
	Logger *slog.Logger
	Now    func() time.Time
}

type handler struct {
	cfg     HandlerConfig
	log     *slog.Logger
	tokens  map[string][32]byte
	limits  map[string]*bucket
	audits  map[string]*bucket // refusals audited per source and second
	unknown *bucket
}

// NewHandler returns the handler of POST /v1/events/falco and
// /v1/events/alertmanager; every other path is 404.
func NewHandler(cfg HandlerConfig) (http.Handler, error) {
	if cfg.Intake == nil {
		return nil, errors.New("events: HandlerConfig.Intake is required")
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 200
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &handler{cfg: cfg, log: cfg.Logger, tokens: map[string][32]byte{}, limits: map[string]*bucket{},
		audits: map[string]*bucket{}, unknown: newBucket(10, 20, cfg.Now())}
	for _, s := range Sources() {
		if t := cfg.Tokens[s]; len(t) > 0 {
			h.tokens[s] = sha256.Sum256(t)
		}
		h.limits[s] = newBucket(cfg.Rate, float64(cfg.Burst), cfg.Now())
		h.audits[s] = newBucket(10, 20, cfg.Now())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/events/{source}", h.deliver)
	mux.HandleFunc("/", h.notFound)
	return mux, nil
}

// reply writes a JSON answer: {"error": msg} for a refusal.
func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

type errorJSON struct {
	Error string `json:"error"`
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.cfg.Intake.Count("none", "not_found")
	if h.unknown.take(h.cfg.Now()) {
		h.cfg.Intake.Refused(r.Context(), "none", r.RemoteAddr, "not found: "+bounded(r.Method+" "+r.URL.Path))
	}
	reply(w, http.StatusNotFound, errorJSON{"no such endpoint: POST /v1/events/falco or /v1/events/alertmanager"})
}

func (h *handler) refuse(w http.ResponseWriter, r *http.Request, source string, status int, outcome, msg string) {
	h.cfg.Intake.Count(source, outcome)
	if b := h.audits[source]; b != nil && b.take(h.cfg.Now()) {
		h.cfg.Intake.Refused(r.Context(), source, r.RemoteAddr, outcome+": "+msg)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rr events"`)
	}
	reply(w, status, errorJSON{msg})
}

func (h *handler) deliver(w http.ResponseWriter, r *http.Request) {
	source := r.PathValue("source")
	if _, ok := h.limits[source]; !ok {
		h.notFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, r, source, http.StatusMethodNotAllowed, "bad_request", "deliveries are POSTed")
		return
	}
	if !h.authorized(source, r.Header.Get("Authorization")) {
		h.refuse(w, r, source, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
		return
	}
	if !h.limits[source].take(h.cfg.Now()) {
		w.Header().Set("Retry-After", "1")
		h.refuse(w, r, source, http.StatusTooManyRequests, "rate_limited", "too many deliveries; retry later")
		return
	}
	if r.ContentLength > MaxBody {
		h.refuse(w, r, source, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body over %d bytes", MaxBody))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.refuse(w, r, source, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body over %d bytes", MaxBody))
		return
	case err != nil:
		h.refuse(w, r, source, http.StatusBadRequest, "bad_request", "body not read: "+err.Error())
		return
	}
	var ps []Parsed
	if source == SourceFalco {
		var p Parsed
		if p, err = ParseFalco(body); err == nil {
			ps = []Parsed{p}
		}
	} else {
		ps, err = ParseAlertmanager(body, h.cfg.HostLabels)
	}
	if err != nil {
		h.refuse(w, r, source, http.StatusBadRequest, "bad_request", strings.TrimPrefix(err.Error(), ErrBadPayload.Error()+": "))
		return
	}
	res, err := h.cfg.Intake.Accept(r.Context(), source, r.RemoteAddr, ps)
	if err != nil {
		h.log.Error("events: delivery not stored", "source", source, "err", err)
		h.cfg.Intake.Count(source, "failed")
		reply(w, http.StatusInternalServerError, errorJSON{"not stored; retry later"})
		return
	}
	reply(w, http.StatusOK, struct {
		Accepted   []string `json:"accepted"`
		Duplicates []string `json:"duplicates"`
		Resolved   []string `json:"resolved"`
	}{orEmpty(res.Accepted), orEmpty(res.Duplicates), orEmpty(res.Resolved)})
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// authorized compares the bearer token in constant time (of the
// digests: the length of the token tells nothing either).
func (h *handler) authorized(source, header string) bool {
	want, ok := h.tokens[source]
	scheme, tok, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		tok = ""
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	match := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	return ok && tok != "" && match
}

// bucket is a token bucket: rate per second, up to burst.
type bucket struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	last        time.Time
}

func newBucket(rate, burst float64, now time.Time) *bucket {
	return &bucket{rate: rate, burst: burst, tokens: burst, last: now}
}

func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
