package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode/utf8"
)

// falcoAlert is Falco's json_output (http_output), with falcosidekick's
// uuid.
type falcoAlert struct {
	UUID         string         `json:"uuid"`
	Time         string         `json:"time"`
	Rule         string         `json:"rule"`
	Priority     string         `json:"priority"`
	Output       string         `json:"output"`
	OutputFields map[string]any `json:"output_fields"`
	Source       string         `json:"source"`
	Tags         []string       `json:"tags"`
	Hostname     string         `json:"hostname"`
}

// ParseFalco parses one Falco alert (Falco's http_output posts one per
// request). rule, priority, time and output are required.
func ParseFalco(body []byte) (Parsed, error) {
	var a falcoAlert
	if err := decode(body, &a); err != nil {
		return Parsed{}, err
	}
	var missing []string
	for _, f := range [][2]string{{"rule", a.Rule}, {"priority", a.Priority}, {"time", a.Time}, {"output", a.Output}} {
		if strings.TrimSpace(f[1]) == "" {
			missing = append(missing, f[0])
		}
	}
	if len(missing) > 0 {
		return Parsed{}, fmt.Errorf("%w: missing %s", ErrBadPayload, strings.Join(missing, ", "))
	}
	prio, ok := ParsePriority(a.Priority)
	if !ok {
		return Parsed{}, fmt.Errorf("%w: priority %q: want one of %s", ErrBadPayload, bounded(a.Priority), strings.Join(PriorityNames(), ", "))
	}
	t, err := time.Parse(time.RFC3339Nano, a.Time)
	if err != nil {
		return Parsed{}, fmt.Errorf("%w: time %q: want RFC 3339", ErrBadPayload, bounded(a.Time))
	}
	host := a.Hostname
	for _, k := range []string{"evt.hostname", "k8s.node.name"} {
		if host != "" {
			break
		}
		if s, ok := a.OutputFields[k].(string); ok {
			host = s
		}
	}
	p := Parsed{Source: SourceFalco, Rule: bounded(a.Rule), Priority: prio, Time: t.UnixNano(),
		Host: bounded(host), Summary: oneLine(falcoSummary(a.Output), maxSummary), Raw: cut(body, maxRaw)}
	if u := bounded(a.UUID); u != "" {
		p.Key = "falco:uuid:" + u
	} else {
		// Without falcosidekick's uuid, the same alert posted twice is
		// the same time, rule, host and output.
		h := sha256.Sum256([]byte(a.Time + "\x00" + a.Rule + "\x00" + host + "\x00" + a.Output))
		p.Key = "falco:sha256:" + hex.EncodeToString(h[:16])
	}
	return p, nil
}

// falcoSummary drops the "16:31:56.746609046: Error " prefix Falco puts
// before its output line: the event has its time and priority already.
func falcoSummary(out string) string {
	ts, rest, ok := strings.Cut(out, ": ")
	if !ok || len(ts) < 8 || ts[2] != ':' || strings.ContainsAny(ts, " \t") {
		return out
	}
	word, after, ok := strings.Cut(rest, " ")
	if _, isPrio := ParsePriority(word); ok && isPrio {
		return after
	}
	return rest
}

// amPayload is Alertmanager's webhook body, version 4.
type amPayload struct {
	Version string    `json:"version"`
	Status  string    `json:"status"`
	Alerts  []amAlert `json:"alerts"`
}

type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// maxAlerts bounds the alerts of one Alertmanager delivery.
const maxAlerts = 1000

// DefaultHostLabels are the labels whose value names an Alertmanager
// alert's host, the first present winning.
var DefaultHostLabels = []string{"host", "hostname", "node", "instance"}

// ParseAlertmanager parses an Alertmanager webhook (version 4): one
// Parsed per alert, firing or resolved. hostLabels are the labels that
// name the host, in order (nil: DefaultHostLabels); "instance" loses its
// port.
func ParseAlertmanager(body []byte, hostLabels []string) ([]Parsed, error) {
	var pl amPayload
	if err := decode(body, &pl); err != nil {
		return nil, err
	}
	if pl.Version != "4" {
		if pl.Version == "" {
			return nil, fmt.Errorf("%w: missing version", ErrBadPayload)
		}
		return nil, fmt.Errorf("%w: version %q: want \"4\"", ErrBadPayload, bounded(pl.Version))
	}
	if pl.Alerts == nil {
		return nil, fmt.Errorf("%w: missing alerts", ErrBadPayload)
	}
	if len(pl.Alerts) > maxAlerts {
		return nil, fmt.Errorf("%w: %d alerts: at most %d in one delivery", ErrBadPayload, len(pl.Alerts), maxAlerts)
	}
	if hostLabels == nil {
		hostLabels = DefaultHostLabels
	}
	out := make([]Parsed, 0, len(pl.Alerts))
	for i, a := range pl.Alerts {
		p, err := parseAlert(a, hostLabels)
		if err != nil {
			return nil, fmt.Errorf("%w (alerts[%d])", err, i)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseAlert(a amAlert, hostLabels []string) (Parsed, error) {
	var missing []string
	name := a.Labels["alertname"]
	for _, f := range [][2]string{{"status", a.Status}, {"labels.alertname", name}, {"startsAt", a.StartsAt}, {"fingerprint", a.Fingerprint}} {
		if strings.TrimSpace(f[1]) == "" {
			missing = append(missing, f[0])
		}
	}
	if len(missing) > 0 {
		return Parsed{}, fmt.Errorf("%w: missing %s", ErrBadPayload, strings.Join(missing, ", "))
	}
	if a.Status != "firing" && a.Status != "resolved" {
		return Parsed{}, fmt.Errorf("%w: status %q: want firing or resolved", ErrBadPayload, bounded(a.Status))
	}
	start, err := time.Parse(time.RFC3339Nano, a.StartsAt)
	if err != nil {
		return Parsed{}, fmt.Errorf("%w: startsAt %q: want RFC 3339", ErrBadPayload, bounded(a.StartsAt))
	}
	host := ""
	for _, k := range hostLabels {
		if v := strings.TrimSpace(a.Labels[k]); v != "" {
			host = v
			if k == "instance" {
				if h, _, err := net.SplitHostPort(v); err == nil {
					host = h
				}
			}
			break
		}
	}
	summary := a.Annotations["summary"]
	if summary == "" {
		summary = a.Annotations["description"]
	}
	if summary == "" {
		summary = name
	}
	raw, _ := json.Marshal(a)
	return Parsed{Source: SourceAlertmanager, Rule: bounded(name), Priority: severity(a.Labels["severity"]),
		Time: start.UnixNano(), Host: bounded(host), Summary: oneLine(summary, maxSummary), Raw: cut(raw, maxRaw),
		Key:      "alertmanager:" + bounded(a.Fingerprint) + ":" + start.UTC().Format(time.RFC3339Nano),
		Resolved: a.Status == "resolved"}, nil
}

// decode is strict JSON: one object, nothing after it.
func decode(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: not JSON of the expected shape: %s", ErrBadPayload, jsonErr(err))
	}
	if d.More() {
		return fmt.Errorf("%w: more than one JSON value", ErrBadPayload)
	}
	return nil
}

// jsonErr says what is wrong without echoing the body.
func jsonErr(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("field %s: want %s", te.Field, te.Type)
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "unexpected end"
}

// cut returns b bounded to max bytes, on a rune boundary.
func cut(b []byte, max int) []byte {
	if len(b) <= max {
		return append([]byte(nil), b...)
	}
	b = b[:max]
	for i := 0; i < 3 && len(b) > 0; i++ { // a rune cut in two
		if r, n := utf8.DecodeLastRune(b); r != utf8.RuneError || n != 1 {
			break
		}
		b = b[:len(b)-1]
	}
	return append([]byte(nil), b...)
}
