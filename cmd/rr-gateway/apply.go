package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/auth/mail"
	"github.com/rr-gateway/rr/evidence"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/internal/config"
	"github.com/rr-gateway/rr/recorder"
	"github.com/rr-gateway/rr/recorder/s3sink"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// mailer builds the mailer the mail section describes. A misconfigured
// SMTP section is an error here, at start, not at the first code.
func (c *fileConfig) mailer(console io.Writer) (auth.Mailer, error) {
	m := c.Mail
	if err := c.checkMail(); err != nil {
		return nil, err
	}
	switch m.Mode {
	case "console":
		return &mail.FileMailer{Console: console, From: m.From}, nil
	case "file":
		if m.Outbox == "" {
			return nil, errors.New("mail: mode file needs outbox (a folder)")
		}
		return &mail.FileMailer{Dir: m.Outbox, Console: console, From: m.From}, nil
	case "", "smtp":
		pw, err := config.Secret("", m.SMTP.PasswordFile, m.SMTP.PasswordEnv)
		if err != nil {
			return nil, fmt.Errorf("mail: smtp password: %w", err)
		}
		if m.SMTP.Username != "" && pw == "" {
			return nil, errors.New("mail: smtp username set but no password (password_file or password_env)")
		}
		cfg := mail.SMTPConfig{Host: m.SMTP.Host, Port: m.SMTP.Port, TLS: m.SMTP.TLS,
			Username: m.SMTP.Username, Password: auth.NewSecret(pw), From: m.From}
		if m.SMTP.CAFile != "" {
			pem, err := os.ReadFile(m.SMTP.CAFile)
			if err != nil {
				return nil, fmt.Errorf("mail: ca_file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("mail: ca_file %s holds no PEM certificate", m.SMTP.CAFile)
			}
		}
		return mail.NewSMTPMailer(cfg)
	default:
		return nil, fmt.Errorf("mail: mode %q: want console, file or smtp", m.Mode)
	}
}

// authConfig is the auth section as auth.Config's knobs.
func (c *fileConfig) authConfig() auth.Config {
	a, l := c.Auth, c.Auth.Limits
	return auth.Config{
		CodeTTL: a.CodeTTL, CodeTries: a.CodeTries, PassphraseTries: a.PassphraseTries,
		Limits: auth.Limits{
			SourceAttempts: l.SourceAttempts, SourceWindow: l.SourceWindow,
			FailuresBeforeLockout: l.FailuresBeforeLockout, LockoutBase: l.LockoutBase, LockoutMax: l.LockoutMax,
			MailsPerPerson: l.MailsPerPerson, MailWindow: l.MailWindow,
		},
		HashMemoryBudget: a.HashMemoryBudget,
	}
}

// apply makes the store hold what the file declares: people (with their
// keys), hosts (labels, passphrase verifier, agent key) and teams (members
// and hosts). It is idempotent. A person, team or host the file declared
// at an earlier start and no longer names is removed first (logged and
// audited): taking someone out of the file takes their access away, and a
// key can move to someone the file names now. What the file never named
// is left alone, and so is a whole kind whose section the file leaves out
// (people: [] removes every person it declared; no people: at all, or a
// bare people:, removes none).
func (c *fileConfig) apply(ctx context.Context, st *sqlite.Store, log *slog.Logger) error {
	type kindNames struct {
		kind    string
		names   []string
		managed bool // the file has the section
	}
	kinds := []kindNames{{kind: "team", managed: c.Teams != nil}, {kind: "person", managed: c.People != nil},
		{kind: "host", managed: c.Hosts != nil}}
	for _, t := range c.Teams {
		kinds[0].names = append(kinds[0].names, t.Name)
	}
	for _, p := range c.People {
		kinds[1].names = append(kinds[1].names, p.Name)
	}
	for _, h := range c.Hosts {
		kinds[2].names = append(kinds[2].names, h.Name)
	}
	for _, k := range kinds {
		if !k.managed {
			continue
		}
		removed, err := st.PruneDeclared(ctx, k.kind, k.names, time.Now())
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		for _, name := range removed {
			if log != nil {
				log.Warn("removed: no longer in the configuration file", "kind", k.kind, "name", name)
			}
		}
	}

	keysOf := map[string]map[string]string{} // check has refused a key given to two people
	for _, p := range c.People {
		keys, err := p.keys()
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		keysOf[p.Name] = keys
	}
	for _, p := range c.People {
		totp := ""
		if p.TOTPSecretFile != "" {
			b, err := os.ReadFile(p.TOTPSecretFile)
			if err != nil {
				return fmt.Errorf("config: people %s: %w", p.Name, err)
			}
			totp = strings.TrimSpace(string(b))
		}
		if err := st.UpsertPerson(ctx, store.Person{Name: p.Name, Email: p.Email, Role: p.Role,
			PasswordHash: p.PasswordHash, TOTPSecret: totp}); err != nil {
			return err
		}
	}
	// All at once: a key may move from one declared person to another.
	if err := st.SetPeopleKeys(ctx, keysOf); err != nil {
		return fmt.Errorf("config: people's keys: %w", err)
	}
	for _, h := range c.Hosts {
		key, err := h.agentKey()
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := st.UpsertHost(ctx, h.Name); err != nil {
			return err
		}
		if key != "" {
			if err := st.SetAgentKey(ctx, h.Name, key); err != nil {
				return err
			}
		}
		if err := st.SetHostLabels(ctx, h.Name, h.Labels); err != nil {
			return err
		}
		if h.PassphraseVerifier != "" {
			if err := st.SetHostPassphrase(ctx, h.Name, h.PassphraseVerifier); err != nil {
				return err
			}
		}
	}
	for _, t := range c.Teams {
		if err := st.UpsertTeam(ctx, store.Team{Name: t.Name, RapidResponse: t.RapidResponse,
			Hosts: t.Hosts, Members: t.Members}); err != nil {
			return err
		}
		if err := st.SetEventSubscription(ctx, t.Name, t.Events); err != nil {
			return err
		}
	}
	for _, k := range kinds {
		if err := st.MarkDeclared(ctx, k.kind, k.names); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}

// uploader builds the uploader of recordings to S3 and the opener that
// reads them back wherever they are, or a nil uploader and the local
// opener when no bucket is configured (recordings then stay in the spool). The bucket is
// reached at once: a wrong endpoint, credentials or bucket stop the start.
func (c *fileConfig) uploader(ctx context.Context, spool *recorder.Spool, st *sqlite.Store, log *slog.Logger) (*recorder.Uploader, recorder.Opener, *s3sink.Sink, error) {
	s := c.Recordings.S3
	if s.Bucket == "" {
		return nil, recorder.Opener{}, nil, nil
	}
	secret, err := config.Secret("", s.SecretAccessKeyFile, s.SecretAccessKeyEnv)
	if err != nil {
		return nil, recorder.Opener{}, nil, fmt.Errorf("config: recordings.s3: %w", err)
	}
	sink, err := s3sink.New(ctx, s3sink.Config{Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, Prefix: s.Prefix,
		PathStyle: s.PathStyle, AccessKeyID: s.AccessKeyID, SecretAccessKey: secret,
		MultipartThreshold: s.MultipartThreshold, PartSize: s.PartSize})
	if err != nil {
		return nil, recorder.Opener{}, nil, fmt.Errorf("config: recordings.%w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sink.Check(cctx); err != nil {
		return nil, recorder.Opener{}, nil, err
	}
	open := recorder.Opener{Remote: map[string]recorder.RemoteOpener{"s3": sink}, Corrupt: s3sink.ErrMismatch}
	up, err := recorder.NewUploader(recorder.UploaderConfig{
		Spool: spool, Sink: sink, Logger: log,
		Final: func(ctx context.Context, id string) (recorder.Closed, bool, error) {
			sess, err := st.Session(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				return recorder.Closed{}, false, nil // not ours to move
			}
			if err != nil || sess.State == store.StateLive {
				return recorder.Closed{}, false, err
			}
			return recorder.Closed{Path: sess.Recording, Size: sess.RecordingSize, SHA256: sess.RecordingSHA256}, true, nil
		},
		Moved:        st.MoveSessionRecording,
		Location:     sink.Location,
		AlreadyThere: s3sink.ErrExists,
		Mismatch:     s3sink.ErrMismatch,
	})
	return up, open, sink, err
}

// notary loads (or creates) the audit key and signs with it into the
// store and the bucket, or the spool folder without one. A key that cannot
// be loaded stops the gateway: the trail is never left unsigned.
func (c *fileConfig) notary(ctx context.Context, st *sqlite.Store, sink *s3sink.Sink, log *slog.Logger) (*evidence.Notary, error) {
	signer, created, err := evidence.LoadOrCreateKey(c.auditKey())
	if err != nil {
		return nil, fmt.Errorf("audit.signing_key: %w", err)
	}
	if created {
		log.Warn("audit key created: publish its public key (rr-gateway audit-key) where auditors find it",
			"file", c.auditKey())
	}
	var pub evidence.Publisher = evidence.DirPublisher{Dir: c.Recordings.Spool}
	where := c.Recordings.Spool
	if sink != nil {
		pub, where = sink, sink.Location("")
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		locked, why := sink.ObjectLock(lctx)
		cancel()
		if locked {
			log.Info("evidence published under object lock", "bucket", c.Recordings.S3.Bucket, "lock", why)
		} else {
			log.Warn("evidence published without object lock: whoever may write the bucket may delete it", "why", why)
		}
	}
	log.Info("audit key", "key", ssh.FingerprintSHA256(signer.PublicKey()), "publishes_to", where,
		"checkpoint_interval", c.Audit.CheckpointInterval)
	// Manifests go beside the recordings in the spool, which the uploader
	// carries to the bucket with them: a session's end never waits on S3.
	return evidence.NewNotary(evidence.NotaryConfig{Signer: signer, Store: st, Publisher: pub,
		Manifests: evidence.DirPublisher{Dir: c.Recordings.Spool}, Interval: c.Audit.CheckpointInterval, Logger: log})
}

// address is how people reach the gateway, for hints: the address setting,
// else the name with listen's port.
// gatewayName is name, else the machine's: the same in session rows, the
// lease and the recovery of this gateway's own rows.
func (c *fileConfig) gatewayName() string {
	if c.Name != "" {
		return c.Name
	}
	return gateway.DefaultName()
}

func (c *fileConfig) address() string {
	if c.Address != "" {
		return c.Address
	}
	name := c.gatewayName()
	if _, port, err := net.SplitHostPort(c.Listen); err == nil && port != "22" {
		return net.JoinHostPort(name, port)
	}
	return name
}

// declared reports whether the file declares a person, team or host of
// that name: apply writes those at every start.
func (c *fileConfig) declared(kind, name string) bool {
	switch kind {
	case "person":
		return slices.ContainsFunc(c.People, func(p filePerson) bool { return p.Name == name })
	case "team":
		return slices.ContainsFunc(c.Teams, func(t fileTeam) bool { return t.Name == name })
	case "host":
		return slices.ContainsFunc(c.Hosts, func(h fileHost) bool { return h.Name == name })
	}
	return false
}
