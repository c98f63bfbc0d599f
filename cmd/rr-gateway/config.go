package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/internal/config"
	"github.com/rr-gateway/rr/store"
)

// fileConfig is configs/gateway.yaml; every field is commented there.
type fileConfig struct {
	Listen             string         `yaml:"listen"`
	AgentListen        string         `yaml:"agent_listen"`
	HTTPListen         string         `yaml:"http_listen"`
	HostKey            string         `yaml:"host_key"`
	Database           string         `yaml:"database"`
	Store              fileStore      `yaml:"store"`
	Name               string         `yaml:"name"`
	Address            string         `yaml:"address"`
	Log                config.Log     `yaml:"log"`
	LoginGraceTime     time.Duration  `yaml:"login_grace_time"`
	ShutdownGrace      time.Duration  `yaml:"shutdown_grace"`
	AgentKeepalive     time.Duration  `yaml:"agent_keepalive"`
	ClientKeepalive    time.Duration  `yaml:"client_keepalive"`
	KeepaliveMaxMissed int            `yaml:"keepalive_max_missed"`
	IdleTimeout        time.Duration  `yaml:"idle_timeout"`
	MaxSessionLength   time.Duration  `yaml:"max_session_length"`
	Recordings         fileRecordings `yaml:"recordings"`
	Mail               fileMail       `yaml:"mail"`
	Demo               bool           `yaml:"demo"`
	SSH                fileSSH        `yaml:"ssh"`
	Auth               fileAuth       `yaml:"auth"`
	People             []filePerson   `yaml:"people"`
	Teams              []fileTeam     `yaml:"teams"`
	Hosts              []fileHost     `yaml:"hosts"`
	HTTPS              fileHTTPS      `yaml:"https"`
	Events             fileEvents     `yaml:"events"`
	Web                fileWeb        `yaml:"web"`
	Audit              fileAudit      `yaml:"audit"`
	Cluster            fileCluster    `yaml:"cluster"`

	// Before login and without a channel (prelogin.go).
	PromptGraceTime   time.Duration   `yaml:"prompt_grace_time"`
	UnusedConnTimeout *time.Duration  `yaml:"unused_connection_timeout"`
	BeforeLogin       fileBeforeLogin `yaml:"before_login"`
}

// fileCluster is how this gateway runs beside peers on one store.
type fileCluster struct {
	Advertise string        `yaml:"advertise"`
	Lease     time.Duration `yaml:"lease"`
	KillPoll  time.Duration `yaml:"kill_poll"`
}

// fileAudit is the evidence: the audit key and how often it signs.
type fileAudit struct {
	SigningKey         string        `yaml:"signing_key"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// auditKey is the audit key's file: signing_key, else audit_ed25519_key
// in host_key's folder.
func (c *fileConfig) auditKey() string {
	if c.Audit.SigningKey != "" {
		return c.Audit.SigningKey
	}
	return filepath.Join(filepath.Dir(c.HostKey), "audit_ed25519_key")
}

type fileRecordings struct {
	Spool         string        `yaml:"spool"`
	FlushInterval time.Duration `yaml:"flush_interval"`
	S3            fileS3        `yaml:"s3"`
}

type fileS3 struct {
	Bucket              string `yaml:"bucket"`
	Endpoint            string `yaml:"endpoint"`
	Region              string `yaml:"region"`
	Prefix              string `yaml:"prefix"`
	PathStyle           bool   `yaml:"path_style"`
	AccessKeyID         string `yaml:"access_key_id"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`
	SecretAccessKeyEnv  string `yaml:"secret_access_key_env"`
	MultipartThreshold  int64  `yaml:"multipart_threshold"`
	PartSize            int64  `yaml:"part_size"`
}

type fileMail struct {
	Mode   string   `yaml:"mode"` // console, file or smtp
	From   string   `yaml:"from"`
	Outbox string   `yaml:"outbox"`
	SMTP   fileSMTP `yaml:"smtp"`
}

// fileSSH is the SSH algorithms both ports offer; an empty list is
// gateway.DefaultAlgorithms' list.
type fileSSH struct {
	KeyExchanges []string `yaml:"kex"`
	Ciphers      []string `yaml:"ciphers"`
	MACs         []string `yaml:"macs"`
}

func (s fileSSH) algorithms() gateway.Algorithms {
	return gateway.Algorithms{KeyExchanges: s.KeyExchanges, Ciphers: s.Ciphers, MACs: s.MACs}
}

type fileSMTP struct {
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	TLS          string `yaml:"tls"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	CAFile       string `yaml:"ca_file"`
}

type fileAuth struct {
	CodeTTL         time.Duration `yaml:"code_ttl"`
	CodeTries       int           `yaml:"code_tries"`
	PassphraseTries int           `yaml:"passphrase_tries"`
	Limits          fileLimits    `yaml:"limits"`
	// HashMemoryBudget (bytes) bounds the password and passphrase checks
	// running at once; 0: auth.DefaultHashMemoryBudget.
	HashMemoryBudget int64 `yaml:"hash_memory_budget"`
}

type fileLimits struct {
	SourceAttempts        int           `yaml:"source_attempts"`
	SourceWindow          time.Duration `yaml:"source_window"`
	FailuresBeforeLockout int           `yaml:"failures_before_lockout"`
	LockoutBase           time.Duration `yaml:"lockout_base"`
	LockoutMax            time.Duration `yaml:"lockout_max"`
	MailsPerPerson        int           `yaml:"mails_per_person"`
	MailWindow            time.Duration `yaml:"mail_window"`
}

type filePerson struct {
	Name           string   `yaml:"name"`
	Email          string   `yaml:"email"`
	Role           string   `yaml:"role"`
	PasswordHash   string   `yaml:"password_hash"`
	TOTPSecretFile string   `yaml:"totp_secret_file"`
	Keys           []string `yaml:"keys"`
	KeyFiles       []string `yaml:"key_files"`
}

type fileTeam struct {
	Name          string   `yaml:"name"`
	RapidResponse bool     `yaml:"rapid_response"`
	Members       []string `yaml:"members"`
	Hosts         []string `yaml:"hosts"`
	// Events is the least severe priority of the security events mailed
	// to the team's members ("" critical; off: none).
	Events string `yaml:"events"`
}

type fileHost struct {
	Name               string   `yaml:"name"`
	Labels             []string `yaml:"labels"`
	PassphraseVerifier string   `yaml:"passphrase_verifier"`
	AgentKey           string   `yaml:"agent_key"`
	AgentKeyFile       string   `yaml:"agent_key_file"`
	Enroll             string   `yaml:"enroll"`        // "" or "token" (see tokenRule)
	EnrollReason       string   `yaml:"enroll_reason"` // why tokens are allowed: audited with each
}

func defaultConfig() fileConfig {
	return fileConfig{
		Listen:      ":2222",
		AgentListen: ":2223",
		HostKey:     "/var/lib/rr/ssh_host_ed25519_key",
		Database:    "/var/lib/rr/rr.db",
		Mail:        fileMail{Mode: "smtp", From: "rr@localhost"},
		Recordings: fileRecordings{Spool: "/var/lib/rr/recordings", FlushInterval: time.Second,
			S3: fileS3{Region: "us-east-1", Prefix: "recordings/"}},
		Events:  defaultEvents(),
		Web:     defaultWeb(),
		Audit:   fileAudit{CheckpointInterval: 10 * time.Minute},
		Cluster: fileCluster{Lease: 15 * time.Second, KillPoll: 500 * time.Millisecond},
	}
}

// loadConfig reads path (if not empty) over the defaults.
func loadConfig(path string) (fileConfig, error) {
	c := defaultConfig()
	if path != "" {
		if err := config.Load(path, &c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// check reports every problem in c at once.
func (c *fileConfig) check() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen: empty"))
	}
	if c.AgentListen == "" {
		errs = append(errs, errors.New("agent_listen: empty"))
	}
	if c.HostKey == "" {
		errs = append(errs, errors.New("host_key: empty"))
	}
	if c.Database == "" && c.Store.Driver != "postgres" {
		errs = append(errs, errors.New("database: empty"))
	}
	if err := c.Store.check(); err != nil {
		errs = append(errs, err)
	}
	if c.Cluster.Lease < 3*time.Second {
		errs = append(errs, errors.New("cluster.lease: at least 3s (it is renewed every third of it)"))
	}
	if c.Cluster.KillPoll < 10*time.Millisecond || c.Cluster.KillPoll > c.Cluster.Lease {
		errs = append(errs, errors.New("cluster.kill_poll: between 10ms and cluster.lease"))
	}
	if c.Cluster.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Cluster.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("cluster.advertise: want HOST:PORT: %w", err))
		}
	}
	if c.Audit.CheckpointInterval < time.Second {
		errs = append(errs, errors.New("audit.checkpoint_interval: at least 1s"))
	}
	if c.Auth.HashMemoryBudget < 0 {
		errs = append(errs, errors.New("auth.hash_memory_budget: negative (bytes; 0 for 512 MiB)"))
	}
	if c.Recordings.Spool == "" {
		errs = append(errs, errors.New("recordings.spool: empty (sessions are never run unrecorded)"))
	}
	if err := c.SSH.algorithms().Check(); err != nil {
		errs = append(errs, fmt.Errorf("ssh: %w", err))
	}
	if err := c.BeforeLogin.check(); err != nil {
		errs = append(errs, err)
	}
	if err := c.checkEvents(); err != nil {
		errs = append(errs, err)
	}
	people := map[string]bool{}
	keyOwner := map[string]string{} // fingerprint → person
	for i, p := range c.People {
		if keys, err := p.keys(); err != nil {
			errs = append(errs, err)
		} else {
			for fp := range keys {
				if o, ok := keyOwner[fp]; ok && o != p.Name {
					errs = append(errs, fmt.Errorf("people[%d] %s: key %s is also %s's; a key is one person's", i, p.Name, fp, o))
				}
				keyOwner[fp] = p.Name
			}
		}
		if p.TOTPSecretFile != "" {
			if b, err := os.ReadFile(p.TOTPSecretFile); err != nil {
				errs = append(errs, fmt.Errorf("people[%d] %s: totp_secret_file: %w", i, p.Name, err))
			} else if !auth.ValidTOTPSecret(strings.TrimSpace(string(b))) {
				errs = append(errs, fmt.Errorf("people[%d] %s: totp_secret_file %s: not a base32 TOTP secret of 80 bits or more (make one with rr-gateway totp-enroll)", i, p.Name, p.TOTPSecretFile))
			}
		}
		if !store.ValidName(p.Name) || p.Name == gateway.ServiceLogin {
			errs = append(errs, fmt.Errorf("people[%d]: bad name %q", i, p.Name))
		}
		if people[p.Name] {
			errs = append(errs, fmt.Errorf("people[%d]: %q declared twice", i, p.Name))
		}
		people[p.Name] = true
		if !auth.ValidRole(p.Role) {
			errs = append(errs, fmt.Errorf("people[%d] %s: role %q: want admin, advanced or standard", i, p.Name, p.Role))
		}
		if p.PasswordHash != "" && !auth.ValidVerifier(p.PasswordHash) {
			errs = append(errs, fmt.Errorf("people[%d] %s: password_hash is not an argon2id or bcrypt hash (make one with rr-gateway passphrase-hash)", i, p.Name))
		}
		if p.Email != "" && !strings.Contains(p.Email, "@") {
			errs = append(errs, fmt.Errorf("people[%d] %s: email %q", i, p.Name, p.Email))
		}
	}
	teams := map[string]bool{}
	for i, t := range c.Teams {
		if !store.ValidName(t.Name) {
			errs = append(errs, fmt.Errorf("teams[%d]: bad name %q", i, t.Name))
		}
		if teams[t.Name] {
			errs = append(errs, fmt.Errorf("teams[%d]: %q declared twice", i, t.Name))
		}
		teams[t.Name] = true
		for _, m := range t.Members {
			if !people[m] {
				errs = append(errs, fmt.Errorf("teams[%d] %s: member %q is not among people", i, t.Name, m))
			}
		}
		for _, h := range t.Hosts {
			if !store.ValidHostPattern(h) {
				errs = append(errs, fmt.Errorf("teams[%d] %s: host %q: want a name, label:K=V or *", i, t.Name, h))
			}
		}
	}
	seen := map[string]bool{}
	for i, h := range c.Hosts {
		if h.PassphraseVerifier != "" && !strings.HasPrefix(h.PassphraseVerifier, "$argon2id$") {
			errs = append(errs, fmt.Errorf("hosts[%d] %s: passphrase_verifier is not an argon2id hash (make one with rr-gateway passphrase-hash)", i, h.Name))
		} else if h.PassphraseVerifier != "" && !auth.ValidVerifier(h.PassphraseVerifier) {
			errs = append(errs, fmt.Errorf("hosts[%d] %s: passphrase_verifier does not parse", i, h.Name))
		}
		for _, l := range h.Labels {
			if !store.ValidLabel(l) {
				errs = append(errs, fmt.Errorf("hosts[%d] %s: label %q: want K=V", i, h.Name, l))
			}
		}
		if !store.ValidName(h.Name) {
			errs = append(errs, fmt.Errorf("hosts[%d]: bad name %q", i, h.Name))
		}
		if seen[h.Name] {
			errs = append(errs, fmt.Errorf("hosts[%d]: %q declared twice", i, h.Name))
		}
		seen[h.Name] = true
		if h.AgentKey != "" && h.AgentKeyFile != "" {
			errs = append(errs, fmt.Errorf("hosts[%d]: agent_key and agent_key_file both set", i))
		}
		errs = append(errs, h.checkEnroll(i))
	}
	return errors.Join(errs...)
}

// keys returns a person's declared keys: fingerprint → authorized_keys line.
func (p *filePerson) keys() (map[string]string, error) {
	var errs []error
	lines := append([]string(nil), p.Keys...)
	for _, f := range p.KeyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("people %s: %w", p.Name, err))
			continue
		}
		lines = append(lines, strings.Split(string(b), "\n")...)
	}
	out := map[string]string{}
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			errs = append(errs, fmt.Errorf("people %s: bad key: %w", p.Name, err))
			continue
		}
		out[ssh.FingerprintSHA256(k)] = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	}
	return out, errors.Join(errs...)
}

// agentKey returns the host's pre-registered agent key line, or "".
func (h *fileHost) agentKey() (string, error) {
	line := h.AgentKey
	if h.AgentKeyFile != "" {
		b, err := os.ReadFile(h.AgentKeyFile)
		if err != nil {
			return "", fmt.Errorf("hosts %s: %w", h.Name, err)
		}
		line = string(b)
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return "", nil
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return "", fmt.Errorf("hosts %s: bad agent key: %w", h.Name, err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))), nil
}
