package auth

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
)

// Roles (docs/security.md#who-may-do-what).
const (
	RoleAdmin    = "admin"
	RoleAdvanced = "advanced"
	RoleStandard = "standard"
)

// ValidRole reports whether r is one of the roles.
func ValidRole(r string) bool { return r == RoleAdmin || r == RoleAdvanced || r == RoleStandard }

// Person is what auth needs to know of someone.
type Person struct {
	Name         string
	Email        string
	Role         string
	PasswordHash string
	TOTPSecret   string
}

// Team is a team with the hosts it reaches.
type Team struct {
	Name          string
	RapidResponse bool
	Hosts         []string // names, "label:K=V", or "*"
}

// Host is what auth needs to know of a host.
type Host struct {
	Name               string
	Labels             []string
	PassphraseVerifier string
}

// Directory is the subset of the store auth reads, and the one thing it
// writes: the last authenticator step used. Lookups of someone or
// something absent return found == false, not an error.
type Directory interface {
	PersonByName(ctx context.Context, name string) (p Person, found bool, err error)
	PersonByKey(ctx context.Context, fingerprint string) (p Person, found bool, err error)
	TeamsOf(ctx context.Context, person string) ([]Team, error)
	Host(ctx context.Context, name string) (h Host, found bool, err error)
	// UseTOTPStep records person's authenticator time step as used and
	// reports whether it is later than every step used before, atomically
	// (two logins with one code: one wins).
	UseTOTPStep(ctx context.Context, person string, step int64) (fresh bool, err error)
}

// Event is one audited decision.
type Event struct {
	Person  string // as claimed; may not exist
	Action  string // "login", "team", "passphrase", "code", "code.send", "lockout"
	Target  string // host or team
	Outcome string // "allowed", "denied", "failed"
	Reason  string
	Source  string
}

// Secret is a string that never prints.
type Secret struct{ s string }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{s} }

// Reveal returns the secret.
func (s Secret) Reveal() string { return s.s }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.s == "" }

// String hides the secret.
func (Secret) String() string { return "REDACTED" }

// LogValue hides the secret from slog.
func (Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Config configures a Service. Directory and Mailer are required.
type Config struct {
	Directory Directory
	Mailer    Mailer
	Audit     func(Event)
	Logger    *slog.Logger
	Now       func() time.Time

	CodeTTL         time.Duration // 5m
	CodeTries       int           // 3
	PassphraseTries int           // 3
	// Limits on guessing and on mail; zero values take the defaults of
	// DefaultLimits.
	Limits Limits
	// Counters keep the limits' counts: a store's, shared by every
	// gateway on it and kept across restarts. nil: in memory, this
	// process's only.
	Counters Counters
	// HashMemoryBudget (bytes) bounds the memory password and passphrase
	// checks hold at once (64 MiB each); HashWait is how long a check
	// waits for its share before failing as a wrong answer. Zero:
	// DefaultHashMemoryBudget, DefaultHashWait.
	HashMemoryBudget int64
	HashWait         time.Duration
}

// Service runs the authentication flow.
type Service struct {
	cfg     Config
	log     *slog.Logger
	limiter *limiter
	gate    *hashGate // the hash memory budget
	dummy   string    // a password hash to compare against for unknown people
	// dummyTook is how long the last check against dummy took
	// (nanoseconds): every password check is made to take as long, so
	// that a person whose hash is cheaper (bcrypt) is not told apart
	// from someone unknown by the time it takes.
	dummyTook atomic.Int64
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	var errs []error
	if cfg.Directory == nil {
		errs = append(errs, errors.New("auth: no directory"))
	}
	if cfg.Mailer == nil {
		errs = append(errs, errors.New("auth: no mailer"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Audit == nil {
		cfg.Audit = func(Event) {}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CodeTTL <= 0 {
		cfg.CodeTTL = 5 * time.Minute
	}
	if cfg.CodeTries <= 0 {
		cfg.CodeTries = 3
	}
	if cfg.PassphraseTries <= 0 {
		cfg.PassphraseTries = 3
	}
	cfg.Limits = cfg.Limits.withDefaults()
	cfg.HashMemoryBudget = orDefault(cfg.HashMemoryBudget, DefaultHashMemoryBudget)
	cfg.HashWait = orDefault(cfg.HashWait, DefaultHashWait)
	dummy, err := HashSecret("not a password of anyone's")
	if err != nil {
		return nil, err
	}
	lim := newLimiter(cfg.Limits, cfg.Now)
	lim.log = cfg.Logger
	if cfg.Counters != nil {
		lim.c = cfg.Counters
	}
	return &Service{cfg: cfg, log: cfg.Logger, limiter: lim,
		gate: newHashGate(cfg.HashMemoryBudget), dummy: dummy}, nil
}

// MayReach reports whether team t reaches host h: by name, by one of its
// labels ("label:K=V"), or "*".
func MayReach(t Team, h Host) bool {
	for _, p := range t.Hosts {
		switch {
		case p == "*" || p == h.Name:
			return true
		case strings.HasPrefix(p, "label:"):
			for _, l := range h.Labels {
				if l == p[len("label:"):] {
					return true
				}
			}
		}
	}
	return false
}

// MaskEmail shows enough of an address to recognise it: a***@example.com.
func MaskEmail(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		return "***"
	}
	return local[:1] + "***@" + domain
}

// Denied is an authentication failure. Reason is for the audit trail and
// the logs; Message, when set, is the one line the person may be told (it
// never says which factor failed for someone who is not known).
type Denied struct {
	Reason  string
	Message string
}

func (d *Denied) Error() string { return "auth: denied: " + d.Reason }

func denied(reason, message string) error { return &Denied{Reason: reason, Message: message} }

func (s *Service) audit(e Event) {
	s.cfg.Audit(e)
	s.log.Info("auth decision", "person", e.Person, "action", e.Action, "target", e.Target,
		"outcome", e.Outcome, "reason", e.Reason, "source", e.Source)
}

// failPassword audits a failed password login under who (the name, or
// its digest if it is no one's) and counts it against who.
func (s *Service) failPassword(who, source, reason string) {
	s.audit(Event{Person: who, Action: "login", Outcome: "denied", Reason: reason, Source: source})
	if s.limiter.passwordFailure(who) {
		s.audit(Event{Person: who, Action: "lockout", Outcome: "denied", Reason: "too many failed passwords", Source: source})
	}
}

// failFactor audits a wrong factor (team, passphrase, code) given by
// person, whose identity was proven, and counts it against them.
func (s *Service) failFactor(person, source, action, target, reason string) {
	s.audit(Event{Person: person, Action: action, Target: target, Outcome: "denied", Reason: reason, Source: source})
	if s.limiter.factorFailure(person) {
		s.audit(Event{Person: person, Action: "lockout", Outcome: "denied", Reason: "too many wrong factors", Source: source})
	}
}
