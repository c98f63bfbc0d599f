// Command rr-gateway is rr's SSH gateway: people connect to it with stock
// OpenSSH, agents on hosts dial out to it, and it bridges the two.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/evidence"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/admin"
	"github.com/rr-gateway/rr/internal/sshkit"
	"github.com/rr-gateway/rr/recorder"
	"github.com/rr-gateway/rr/store"
)

const usage = `rr-gateway: the rr SSH gateway.

Usage:
  rr-gateway [-config FILE] [flags]           run the gateway
  rr-gateway enroll [-config FILE] [-ttl D] [-reenroll] HOST
                                              print a one-time token with which HOST's
                                              agent enrolls its key (agent: enroll_token);
                                              -reenroll replaces an enrolled agent
  rr-gateway fingerprint [-config FILE]       print the gateway's host key fingerprint,
                                              for the agents' gateway_host_key
  rr-gateway audit-key [-config FILE]         print the audit public key (an allowed_signers
                                              line: ssh-keygen -Y verify -I rr-audit), for
                                              rr verify-audit and rr verify -manifest;
                                              creates the key (0600) if it does not exist
  rr-gateway passphrase-hash                  read a passphrase (or password) without echo,
                                              twice, and print its argon2id verifier for
                                              hosts[].passphrase_verifier or
                                              people[].password_hash; without a terminal it
                                              reads one line from standard input; at most
                                              256 bytes (what a login answer carries)
  rr-gateway totp-enroll [-issuer S] NAME     print a new authenticator secret for NAME:
                                              an otpauth:// URL for the app on stdout,
                                              the secret (for people[].totp_secret_file)
                                              on stderr
  rr-gateway keygen FILE                      create an ed25519 key pair FILE, FILE.pub
                                              (kept if it exists) and print the public key

The configuration file is YAML; configs/gateway.yaml documents every field.
Flags given on the command line override the file. The store is SQLite's
database file, or with store: {driver: postgres} a PostgreSQL server that
several gateways share, its DSN in store.dsn_file or $RR_STORE_DSN (never a
flag; docs/ha.md).

Flags of the gateway:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "enroll":
			return cmdEnroll(args[1:], stdout, stderr)
		case "fingerprint":
			return cmdFingerprint(args[1:], stdout, stderr)
		case "audit-key":
			return cmdAuditKey(args[1:], stdout, stderr)
		case "keygen":
			return cmdKeygen(args[1:], stdout, stderr)
		case "totp-enroll":
			return cmdTOTPEnroll(args[1:], stdout, stderr)
		case "passphrase-hash":
			return cmdPassphraseHash(args[1:], os.Stdin, stdout, stderr)
		case "serve":
			args = args[1:]
		case "help":
			args = []string{"-h"}
		}
	}
	return cmdServe(args, stdout, stderr)
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "rr-gateway: %v\n", err)
	return 1
}

func cmdServe(args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("rr-gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	path := fs.String("config", "", "YAML configuration `file`")
	listen := fs.String("listen", "", "people's SSH `address` (overrides listen)")
	agentListen := fs.String("agent-listen", "", "agents' SSH `address` (overrides agent_listen)")
	hostKey := fs.String("host-key", "", "host key `file` (overrides host_key)")
	database := fs.String("database", "", "SQLite database `file` (overrides database)")
	logFormat := fs.String("log-format", "", "json or text (overrides log.format)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (overrides log.level)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rr-gateway: unexpected argument %q (see rr-gateway -h)\n", fs.Arg(0))
		return 2
	}
	c, err := loadConfig(*path)
	if err != nil {
		return fail(stderr, err)
	}
	override(&c.Listen, *listen)
	override(&c.AgentListen, *agentListen)
	override(&c.HostKey, *hostKey)
	override(&c.Database, *database)
	override(&c.Log.Format, *logFormat)
	override(&c.Log.Level, *logLevel)
	if err := errors.Join(c.check(), c.checkMail()); err != nil { // checkMail: only serving mails codes
		return fail(stderr, fmt.Errorf("config: %w", err))
	}
	log, err := c.Log.Logger(stderr)
	if err != nil {
		return fail(stderr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, c, log); err != nil {
		log.Error("gateway stopped", "err", err)
		return 1
	}
	return 0
}

func override(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// serve builds the parts, serves until ctx is done, then shuts down.
func serve(ctx context.Context, c fileConfig, log *slog.Logger) error {
	mailer, err := c.mailer(os.Stderr)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	c.warnDemo(log)
	signer, err := sshkit.LoadOrCreateKey(c.HostKey)
	if err != nil {
		return err
	}
	st, gst, err := c.openStore(ctx, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := c.apply(ctx, st, log); err != nil {
		return err
	}
	spool, err := recorder.NewSpool(recorder.SpoolConfig{Dir: c.Recordings.Spool, FlushInterval: c.Recordings.FlushInterval, Logger: log})
	if err != nil {
		return err
	}
	defer spool.Close()
	acfg := c.authConfig()
	acfg.Directory = gateway.StoreDirectory(st)
	acfg.Counters = st // shared by every gateway on the store, kept across restarts
	acfg.Mailer = mailer
	acfg.Logger = log
	metrics := gateway.NewMetrics()
	// srv is set before any connection is served, so before auth's first
	// decision: its audit then waits out a store outage with the rest.
	var srv *gateway.Server
	acfg.Audit = func(e auth.Event) { metrics.AuthDecision(e); srv.AuthAudit(e) }
	authSvc, err := auth.New(acfg)
	if err != nil {
		return err
	}
	limitMemory(authSvc.HashMemoryBudget(), c.uploadMemory(), log)
	uploader, recordings, sink, err := c.uploader(ctx, spool, st, log)
	if err != nil {
		return err
	}
	notary, err := c.notary(ctx, st, sink, log)
	if err != nil {
		return err
	}
	// Before the uploader runs: it takes only recordings their sessions
	// have sealed; and with the notary, so that sealed ones are signed.
	if err := gateway.RecoverSessions(ctx, c.gatewayName(), st, spool, notary, log); err != nil {
		return err
	}
	// A checkpoint now covers what the last run and the recovery wrote;
	// then one every interval, and a last one at shutdown.
	if err := notary.Checkpoint(ctx); err != nil {
		log.Error("audit checkpoint failed", "err", err)
	}
	ntCtx, stopNotary := context.WithCancel(context.Background())
	ntDone := make(chan struct{})
	go func() { defer close(ntDone); notary.Run(ntCtx) }()
	defer func() {
		stopNotary()
		<-ntDone
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := notary.Checkpoint(cctx); err != nil {
			log.Error("audit checkpoint at shutdown failed", "err", err)
		}
	}()
	var kick func()
	upCtx, stopUploads := context.WithCancel(context.Background())
	upDone := make(chan struct{})
	if uploader != nil {
		kick = uploader.Kick
		go func() { defer close(upDone); uploader.Run(upCtx) }()
	} else {
		close(upDone)
	}
	defer func() { stopUploads(); <-upDone }()
	peopleLimits, agentLimits := c.BeforeLogin.gatewayLimits()
	srv, err = gateway.New(gateway.Config{
		HostKey:            signer,
		Store:              gst,
		Auth:               authSvc,
		Recorders:          gateway.SpoolRecorders(spool, st, log, kick),
		Logger:             log,
		Metrics:            metrics,
		Name:               c.gatewayName(),
		Address:            c.address(),
		Advertise:          c.Cluster.Advertise,
		Lease:              c.Cluster.Lease,
		KillPoll:           c.Cluster.KillPoll,
		Recordings:         recordings,
		Notary:             notary,
		Evidence:           &admin.Evidence{Store: st, Key: notary.PublicKey()},
		Declared:           c.declared,
		TokenRule:          c.tokenRule,
		Algorithms:         c.SSH.algorithms(),
		LoginGraceTime:     c.LoginGraceTime,
		ShutdownGrace:      c.ShutdownGrace,
		AgentKeepalive:     c.AgentKeepalive,
		ClientKeepalive:    c.ClientKeepalive,
		KeepaliveMaxMissed: c.KeepaliveMaxMissed,
		IdleTimeout:        c.IdleTimeout,
		MaxSessionLength:   c.MaxSessionLength,

		PromptGraceTime:         c.PromptGraceTime,
		UnusedConnectionTimeout: c.unusedConnTimeout(),
		PeopleLimits:            peopleLimits,
		AgentLimits:             agentLimits,
	})
	if err != nil {
		return err
	}
	pl, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	al, err := net.Listen("tcp", c.AgentListen)
	if err != nil {
		pl.Close()
		return err
	}
	ev, err := c.newEvents(st, mailer, log)
	if err != nil {
		pl.Close()
		al.Close()
		return fmt.Errorf("config: %w", err)
	}
	evCtx, stopEvents := context.WithCancel(context.Background())
	evDone := make(chan struct{}, 2)
	go func() { defer func() { evDone <- struct{}{} }(); ev.notifier.Run(evCtx) }()
	go func() { defer func() { evDone <- struct{}{} }(); pruneEvents(evCtx, st, c.Events.Retention, log) }()
	defer func() { stopEvents(); <-evDone; <-evDone }()
	httpsH, closeWeb, err := c.httpsHandler(ev.handler, srv, authSvc, log)
	if err != nil {
		pl.Close()
		al.Close()
		return err
	}
	if closeWeb != nil {
		defer closeWeb()
	}
	intake, err := c.serveHTTPS(httpsH, metrics, log)
	if err != nil {
		pl.Close()
		al.Close()
		return err
	}
	if intake != nil {
		defer intake.Close()
	}
	var web *http.Server
	if c.HTTPListen != "" {
		h, err := httpHandler(srv, st, ev.intake.Collector())
		if err != nil {
			pl.Close()
			al.Close()
			return err
		}
		web = newHTTPServer(h)
		hl, err := c.BeforeLogin.listenHTTP(c.HTTPListen, web, metrics, log)
		if err != nil {
			pl.Close()
			al.Close()
			return fmt.Errorf("http_listen: %w", err)
		}
		go web.Serve(hl)
		defer web.Close()
		log.Info("metrics and health", "http", hl.Addr().String())
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.ServePeople(pl) }()
	go func() { errc <- srv.ServeAgents(al) }()
	log.Info("gateway listening", "people", pl.Addr().String(), "agents", al.Addr().String(),
		"host_key", ssh.FingerprintSHA256(signer.PublicKey()))

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownGrace()+15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	if serveErr != nil && !errors.Is(serveErr, gateway.ErrServerClosed) {
		return serveErr
	}
	log.Info("gateway stopped")
	return nil
}

func (c *fileConfig) shutdownGrace() time.Duration {
	if c.ShutdownGrace > 0 {
		return c.ShutdownGrace
	}
	return 10 * time.Second
}

func cmdEnroll(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rr-gateway enroll", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration `file`")
	database := fs.String("database", "", "SQLite database `file` (overrides database)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token stays valid")
	reenroll := fs.Bool("reenroll", false, "replace HOST's enrolled agent: unbind its key (it stops working at once)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: rr-gateway enroll [-config FILE] [-ttl D] [-reenroll] HOST\n\n"+
			"Prints a one-time token for HOST's agent (agent config: enroll_token_file or\n"+
			"RR_ENROLL_TOKEN). Its first connection binds the agent's key to HOST.\n"+
			"A host whose agent is enrolled takes no token: -reenroll unbinds its key and\n"+
			"spends its old tokens first; a running gateway drops the old agent when it\n"+
			"next opens a session to HOST or the new agent connects. A host the file\n"+
			"declares takes a token only with enroll: token (hosts[] in the file).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 || !store.ValidName(fs.Arg(0)) || *ttl <= 0 {
		fs.Usage()
		return 2
	}
	host := fs.Arg(0)
	c, err := loadConfig(*path)
	if err != nil {
		return fail(stderr, err)
	}
	override(&c.Database, *database)
	reason, err := c.tokenRule(host)
	if err != nil {
		return fail(stderr, err)
	}
	st, _, err := c.openStore(context.Background(), slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return fail(stderr, err)
	}
	defer st.Close()
	ctx := context.Background()
	token, hash := store.NewEnrollToken()
	now := time.Now()
	expires := now.Add(*ttl)
	action, detail := "agent.token", "expires "+expires.UTC().Format(time.RFC3339)
	if *reenroll {
		old, err := st.ReenrollHost(ctx, host, hash, expires, now)
		if err != nil {
			return fail(stderr, err)
		}
		action, detail = "agent.reenroll", "unbound key "+keyFingerprint(old)+", "+detail
	} else {
		if err := st.UpsertHost(ctx, host); err != nil {
			return fail(stderr, err)
		}
		err := st.CreateEnrollToken(ctx, host, hash, expires)
		if errors.Is(err, store.ErrEnrolled) {
			return fail(stderr, fmt.Errorf("host %s has an enrolled agent; to replace it: rr-gateway enroll -reenroll %s", host, host))
		}
		if err != nil {
			return fail(stderr, err)
		}
	}
	if reason != "" {
		detail += "; the configuration file allows it: " + reason
	}
	if err := st.Audit(ctx, store.AuditEvent{Time: now, Actor: "cli", Action: action,
		Target: host, Outcome: "ok", Detail: detail}); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, token)
	fmt.Fprintf(stderr, "one-time enrollment token for %s, valid until %s\n", host, expires.Format(time.RFC3339))
	return 0
}

// keyConfig parses the flags of a subcommand about one key file: -config
// and keyFlag, which overrides the setting at *setting(&c). It returns the
// config, or the exit status when there is nothing more to do.
func keyConfig(name, keyFlag, keyUsage string, setting func(*fileConfig) *string, args []string, stderr io.Writer) (fileConfig, int, bool) {
	fs := flag.NewFlagSet("rr-gateway "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration `file`")
	key := fs.String(keyFlag, "", keyUsage)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return fileConfig{}, 0, false
		}
		return fileConfig{}, 2, false
	}
	c, err := loadConfig(*path)
	if err != nil {
		return c, fail(stderr, err), false
	}
	override(setting(&c), *key)
	return c, 0, true
}

func cmdFingerprint(args []string, stdout, stderr io.Writer) int {
	c, code, ok := keyConfig("fingerprint", "host-key", "host key `file` (overrides host_key)",
		func(c *fileConfig) *string { return &c.HostKey }, args, stderr)
	if !ok {
		return code
	}
	signer, err := sshkit.LoadOrCreateKey(c.HostKey)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, ssh.FingerprintSHA256(signer.PublicKey()))
	return 0
}

func cmdAuditKey(args []string, stdout, stderr io.Writer) int {
	c, code, ok := keyConfig("audit-key", "key", "audit key `file` (overrides audit.signing_key)",
		func(c *fileConfig) *string { return &c.Audit.SigningKey }, args, stderr)
	if !ok {
		return code
	}
	signer, created, err := evidence.LoadOrCreateKey(c.auditKey())
	if err != nil {
		return fail(stderr, err)
	}
	if created {
		fmt.Fprintf(stderr, "rr-gateway: created the audit key %s\n", c.auditKey())
	}
	fmt.Fprint(stdout, evidence.AllowedSigners(signer.PublicKey()))
	return 0
}

func cmdKeygen(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		fmt.Fprint(stderr, "Usage: rr-gateway keygen FILE\n\nCreates an ed25519 key pair FILE and FILE.pub unless FILE exists, and prints\nthe public key (an authorized_keys line).\n")
		if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return 0
		}
		return 2
	}
	signer, err := sshkit.LoadOrCreateKey(args[0])
	if err != nil {
		return fail(stderr, err)
	}
	if err := sshkit.WritePublicKey(args[0]+".pub", signer); err != nil {
		return fail(stderr, err)
	}
	stdout.Write(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	return 0
}

func cmdPassphraseHash(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprint(stderr, "Usage: rr-gateway passphrase-hash\n\nReads a passphrase without echo (twice) and prints its argon2id verifier.\n"+
			"Without a terminal it reads one line from standard input. At most 256 bytes\n"+
			"(what a login answer carries).\n")
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			return 0
		}
		return 2
	}
	var secret string
	if term.IsTerminal(int(stdin.Fd())) {
		fmt.Fprint(stderr, "Passphrase: ")
		a, err := term.ReadPassword(int(stdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(stdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return fail(stderr, err)
		}
		if string(a) != string(b) {
			return fail(stderr, errors.New("the two passphrases differ"))
		}
		secret = string(a)
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fail(stderr, err)
		}
		secret = strings.TrimRight(line, "\r\n")
	}
	if secret == "" {
		return fail(stderr, errors.New("empty passphrase"))
	}
	h, err := auth.HashSecret(secret)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, h)
	return 0
}

func cmdTOTPEnroll(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rr-gateway totp-enroll", flag.ContinueOnError)
	fs.SetOutput(stderr)
	issuer := fs.String("issuer", "rr", "the issuer name the app shows")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: rr-gateway totp-enroll [-issuer S] NAME\n\n"+
			"Prints an otpauth:// URL for NAME's authenticator app on stdout and the secret on\n"+
			"stderr. Put the secret in a file (mode 0600) and name it in people[].totp_secret_file.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 || !store.ValidName(fs.Arg(0)) {
		fs.Usage()
		return 2
	}
	key, err := auth.NewTOTPKey(*issuer, fs.Arg(0))
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, key.URL())
	fmt.Fprintf(stderr, "secret: %s\n", key.Secret())
	return 0
}
