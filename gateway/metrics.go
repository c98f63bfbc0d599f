package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rr-gateway/rr/auth"
)

// Metrics counts what a gateway did, for Prometheus: sessions ended (by
// state), bytes relayed (by direction) and authentication decisions (by
// action and outcome). Register adds them, with what the gateway holds
// now (live sessions, connected agents, open connections), to a registry.
// No label carries a name, a host or a reason: nothing a person typed.
type Metrics struct {
	sessionsEnded *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	authDecisions *prometheus.CounterVec
	connRefused   *prometheus.CounterVec
}

// NewMetrics returns the counters, at zero.
func NewMetrics() *Metrics {
	return &Metrics{
		sessionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rr_sessions_ended_total", Help: "Sessions finalized, by the state their row ended in (closed, killed).",
		}, []string{"state"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rr_session_bytes_total", Help: "Bytes relayed and recorded by ended sessions: in (person to host), out (host to person).",
		}, []string{"direction"}),
		authDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rr_auth_decisions_total", Help: "Authentication decisions, by step (login, team, passphrase, code, ...) and outcome (allowed, denied, failed).",
		}, []string{"action", "outcome"}),
		connRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rr_connections_refused_total", Help: "Connections refused before login, by port (people, agents, http) and reason (per_address, early_drop, full).",
		}, []string{"port", "reason"}),
	}
}

// ConnRefused returns what counts a port's connections refused before
// login (prelogin.Config.Refused); nil when m is nil.
func (m *Metrics) ConnRefused(port string) func(reason string) {
	if m == nil {
		return nil
	}
	return func(reason string) { m.connRefused.WithLabelValues(port, reason).Inc() }
}

// AuthDecision counts one authentication decision; chain it into
// auth.Config.Audit.
func (m *Metrics) AuthDecision(e auth.Event) {
	m.authDecisions.WithLabelValues(e.Action, e.Outcome).Inc()
}

// sessionEnded counts a finalized session.
func (m *Metrics) sessionEnded(state string, in, out int64) {
	m.sessionsEnded.WithLabelValues(state).Inc()
	m.bytes.WithLabelValues("in").Add(float64(in))
	m.bytes.WithLabelValues("out").Add(float64(out))
}

// Register adds s's metrics to reg: Config.Metrics' counters (if any) and
// gauges read when scraped.
func (s *Server) Register(reg prometheus.Registerer) error {
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rr_sessions_live", Help: "Sessions live on this gateway, set-up included."},
			func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(len(s.sessions)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rr_agents_connected", Help: "Hosts whose agent holds a tunnel to this gateway."},
			func() float64 { return float64(s.registry.count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rr_connections_open", Help: "SSH connections open, people's and agents'."},
			func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(len(s.conns)) }),
	}
	if m := s.cfg.Metrics; m != nil {
		gauges = append(gauges, m.sessionsEnded, m.bytes, m.authDecisions, m.connRefused)
	}
	for _, c := range gauges {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
