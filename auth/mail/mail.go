package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rr-gateway/rr/auth"
	gomail "github.com/wneessen/go-mail"
)

// SMTPConfig says how to reach a mail server.
type SMTPConfig struct {
	Host     string
	Port     int    // 0: 587 for starttls, 465 for tls, 25 for none
	TLS      string // "starttls" (default: required), "tls" (implicit), "none"
	Username string
	Password auth.Secret
	From     string
	// RootCAs, if set, replaces the system's roots for the server's
	// certificate (a private mail relay's CA).
	RootCAs *x509.CertPool
	Timeout time.Duration // 10s
}

// SMTPMailer sends through an SMTP server with go-mail.
type SMTPMailer struct {
	cfg  SMTPConfig
	opts []gomail.Option
}

// NewSMTPMailer checks cfg; a misconfiguration is an error at start, not
// at the first code.
func NewSMTPMailer(cfg SMTPConfig) (*SMTPMailer, error) {
	var errs []error
	if cfg.Host == "" {
		errs = append(errs, errors.New("mail: smtp host is empty"))
	}
	if cfg.From == "" {
		errs = append(errs, errors.New("mail: from address is empty"))
	} else if err := gomail.NewMsg().From(cfg.From); err != nil {
		errs = append(errs, fmt.Errorf("mail: from %q: %w", cfg.From, err))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	opts := []gomail.Option{gomail.WithTimeout(cfg.Timeout)}
	switch cfg.TLS {
	case "", "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
		if cfg.Port == 0 {
			cfg.Port = 587
		}
	case "tls":
		opts = append(opts, gomail.WithSSL())
		if cfg.Port == 0 {
			cfg.Port = 465
		}
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
		if cfg.Port == 0 {
			cfg.Port = 25
		}
	default:
		errs = append(errs, fmt.Errorf("mail: tls %q: want starttls, tls or none", cfg.TLS))
	}
	opts = append(opts, gomail.WithPort(cfg.Port))
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(cfg.Username),
			gomail.WithPassword(cfg.Password.Reveal()))
	}
	if cfg.RootCAs != nil {
		opts = append(opts, gomail.WithTLSConfig(&tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &SMTPMailer{cfg: cfg, opts: opts}, nil
}

// Send delivers m.
func (s *SMTPMailer) Send(ctx context.Context, m auth.Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return fmt.Errorf("mail: from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mail: to: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	c, err := gomail.NewClient(s.cfg.Host, s.opts...)
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: send: %w", err)
	}
	return nil
}

// FileMailer writes each mail as an .eml file in Dir (the demo's outbox)
// and, if Console is set, prints it there too.
type FileMailer struct {
	Dir     string
	Console io.Writer
	From    string
}

// Send writes m to a new file in Dir.
func (f *FileMailer) Send(_ context.Context, m auth.Message) error {
	from := f.From
	if from == "" {
		from = "rr@localhost"
	}
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return fmt.Errorf("mail: from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mail: to: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	if f.Dir != "" {
		if err := os.MkdirAll(f.Dir, 0o700); err != nil {
			return fmt.Errorf("mail: outbox: %w", err)
		}
		var r [4]byte
		rand.Read(r[:])
		name := filepath.Join(f.Dir, time.Now().UTC().Format("20060102T150405.000000000")+"-"+hex.EncodeToString(r[:])+".eml")
		if err := msg.WriteToFile(name); err != nil {
			return fmt.Errorf("mail: write %s: %w", name, err)
		}
	}
	if f.Console != nil {
		fmt.Fprintf(f.Console, "---- mail to %s: %s\n%s\n----\n", m.To, m.Subject, m.Body)
	}
	return nil
}
