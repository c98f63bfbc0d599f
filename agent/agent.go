package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Config configures an Agent. Gateways, GatewayHostKey, Host and Signer
// are required; the rest have defaults, filled in by New.
type Config struct {
	// Gateways are the "host:port" agent ports of the gateways; the agent
	// holds one independent tunnel to every address each resolves to,
	// re-resolved every ResolveInterval (docs/architecture.md#tunnels).
	Gateways []string
	// GatewayHostKey is the "SHA256:…" fingerprint every gateway must
	// present; any other key is refused before a credential is sent.
	// GatewayHostKeys adds more (a host key being rotated); one of the two
	// is required.
	GatewayHostKey  string
	GatewayHostKeys []string
	// LookupHost resolves a gateway's name to its addresses
	// (net.DefaultResolver.LookupHost); ResolveInterval is how often (30s).
	LookupHost      func(ctx context.Context, host string) ([]string, error)
	ResolveInterval time.Duration
	Host            string     // this host's name: the SSH user the agent logs in as
	Signer          ssh.Signer // the agent's own key
	// EnrollToken is a one-time token, offered with the password method
	// after the key when the gateway answers the key with partial success
	// (it does not know the key yet). Never logged.
	EnrollToken string
	// User is the OS user sessions run as ("" = the agent's own user).
	// Another user than the agent's needs the agent to run as root.
	User string
	// Shell is the absolute path of the shell sessions run ("" = User's
	// shell from /etc/passwd, else /bin/sh).
	Shell string

	KeepaliveInterval  time.Duration // 5s: keepalive@openssh.com to the gateway
	KeepaliveMaxMissed int           // 3: unanswered keepalives before the tunnel is dropped
	BackoffMin         time.Duration // 500ms: first redial delay
	BackoffMax         time.Duration // 30s: longest redial delay
	KillGrace          time.Duration // 2s: SIGHUP → SIGKILL of a session's processes
	HandshakeTimeout   time.Duration // 20s: deadline for the SSH handshake, auth included
	Logger             *slog.Logger  // slog.Default()

	// OnState, if set, is called from the tunnel's goroutine on every state
	// change of the tunnel to gateway: with the dial, handshake or
	// connection error on StateDisconnected (context.Cause of Run's ctx
	// when the agent stops), nil otherwise. It must not block for long.
	OnState func(gateway string, s State, err error)
	// Dial, if set, replaces (&net.Dialer{Timeout: 10s}).DialContext.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// State is a tunnel's state.
type State int

// The tunnel states.
const (
	StateDialing State = iota
	StateConnected
	StateDisconnected
)

func (s State) String() string {
	switch s {
	case StateDialing:
		return "dialing"
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// account is the OS user sessions run as.
type account struct {
	name, home, shell string
	uid, gid          uint32
	groups            []uint32
	switchUser        bool   // uid differs from the agent's: set credentials
	ttyGID            uint32 // group of its terminals when switchUser: tty (as sshd), else its own
}

// Agent is a running rr-agent. Create it with New and start it with Run.
type Agent struct {
	cfg  Config
	log  *slog.Logger
	acct account
}

// New checks cfg and fills in its defaults.
func New(cfg Config) (*Agent, error) {
	var errs []error
	if len(cfg.Gateways) == 0 {
		errs = append(errs, errors.New("agent: no gateways"))
	}
	seen := map[string]bool{}
	for _, g := range cfg.Gateways {
		if _, _, err := net.SplitHostPort(g); err != nil {
			errs = append(errs, fmt.Errorf("agent: gateway %q: want host:port", g))
		}
		if seen[g] {
			errs = append(errs, fmt.Errorf("agent: gateway %q listed twice", g))
		}
		seen[g] = true
	}
	if cfg.GatewayHostKey != "" {
		cfg.GatewayHostKeys = append([]string{cfg.GatewayHostKey}, cfg.GatewayHostKeys...)
	}
	if len(cfg.GatewayHostKeys) == 0 {
		errs = append(errs, errors.New(`agent: gateway_host_key: want the gateway's "SHA256:…" fingerprint (rr-gateway fingerprint)`))
	}
	for _, k := range cfg.GatewayHostKeys {
		if !strings.HasPrefix(k, "SHA256:") {
			errs = append(errs, fmt.Errorf(`agent: gateway_host_key(s) %q: want a "SHA256:…" fingerprint (rr-gateway fingerprint)`, k))
		}
	}
	if cfg.Host == "" {
		errs = append(errs, errors.New("agent: no host name"))
	}
	if cfg.Signer == nil {
		errs = append(errs, errors.New("agent: no key"))
	}
	acct, err := lookupAccount(cfg.User, cfg.Shell)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	setDefault(&cfg.KeepaliveInterval, 5*time.Second)
	setDefault(&cfg.BackoffMin, 500*time.Millisecond)
	setDefault(&cfg.BackoffMax, 30*time.Second)
	setDefault(&cfg.KillGrace, 2*time.Second)
	setDefault(&cfg.HandshakeTimeout, 20*time.Second)
	setDefault(&cfg.ResolveInterval, 30*time.Second)
	if cfg.LookupHost == nil {
		cfg.LookupHost = net.DefaultResolver.LookupHost
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = cfg.BackoffMin
	}
	if cfg.KeepaliveMaxMissed <= 0 {
		cfg.KeepaliveMaxMissed = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("host", cfg.Host)
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}).DialContext
	}
	return &Agent{cfg: cfg, log: cfg.Logger, acct: acct}, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// lookupAccount resolves the user sessions run as.
func lookupAccount(name, shell string) (account, error) {
	var u *user.User
	var err error
	if name == "" {
		u, err = user.Current()
	} else {
		u, err = user.Lookup(name)
	}
	if err != nil {
		return account{}, fmt.Errorf("agent: user %q: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return account{}, fmt.Errorf("agent: user %q: non-numeric ids", u.Username)
	}
	acct := account{name: u.Username, home: u.HomeDir, uid: uint32(uid), gid: uint32(gid)}
	acct.switchUser = int(uid) != os.Getuid()
	if acct.switchUser {
		if os.Geteuid() != 0 {
			return account{}, fmt.Errorf("agent: sessions as %q need the agent to run as root", u.Username)
		}
		gids, err := u.GroupIds()
		if err != nil {
			return account{}, fmt.Errorf("agent: groups of %q: %w", u.Username, err)
		}
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				acct.groups = append(acct.groups, uint32(n))
			}
		}
		acct.ttyGID = acct.gid
		if g, err := user.LookupGroup("tty"); err == nil {
			if n, err := strconv.ParseUint(g.Gid, 10, 32); err == nil {
				acct.ttyGID = uint32(n)
			}
		}
	}
	acct.shell = shell
	if acct.shell == "" {
		acct.shell = passwdShell(u.Username)
	}
	if acct.shell == "" {
		acct.shell = "/bin/sh"
	}
	if !filepath.IsAbs(acct.shell) {
		return account{}, fmt.Errorf("agent: shell %q: want an absolute path", acct.shell)
	}
	if _, err := os.Stat(acct.shell); err != nil {
		return account{}, fmt.Errorf("agent: shell: %w", err)
	}
	return acct, nil
}

// passwdShell reads name's login shell from /etc/passwd (os/user has no
// field for it), or returns "".
func passwdShell(name string) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) == 7 && fields[0] == name {
			return fields[6]
		}
	}
	return ""
}
