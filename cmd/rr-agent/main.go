// Command rr-agent runs on a host: it dials out to the rr gateway(s),
// holds the tunnel, and runs the sessions the gateway opens over it.
// Nothing listens on the host.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/internal/config"
	"github.com/rr-gateway/rr/internal/sshkit"
)

const usage = `rr-agent: the rr agent, run on each host a gateway should reach.

Usage:
  rr-agent -config FILE [flags]

It dials the gateway(s) named in the file, checks each one's host key
against gateway_host_key, authenticates as host with its own key (created on
first start) and, the first time, with a one-time enrollment token from
"rr-gateway enroll HOST". configs/agent.yaml documents every field. The token
may also come from the RR_ENROLL_TOKEN environment variable.

Flags:
`

// fileConfig is configs/agent.yaml; every field is commented there.
type fileConfig struct {
	Gateways           []string      `yaml:"gateways"`
	GatewayHostKey     string        `yaml:"gateway_host_key"`
	GatewayHostKeys    []string      `yaml:"gateway_host_keys"`
	ResolveInterval    time.Duration `yaml:"resolve_interval"`
	Host               string        `yaml:"host"`
	Key                string        `yaml:"key"`
	EnrollToken        string        `yaml:"enroll_token"`
	EnrollTokenFile    string        `yaml:"enroll_token_file"`
	User               string        `yaml:"user"`
	Shell              string        `yaml:"shell"`
	KeepaliveInterval  time.Duration `yaml:"keepalive_interval"`
	KeepaliveMaxMissed int           `yaml:"keepalive_max_missed"`
	BackoffMin         time.Duration `yaml:"backoff_min"`
	BackoffMax         time.Duration `yaml:"backoff_max"`
	KillGrace          time.Duration `yaml:"kill_grace"`
	Log                config.Log    `yaml:"log"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("rr-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	path := fs.String("config", "", "YAML configuration `file` (required)")
	host := fs.String("host", "", "this host's `name` (overrides host)")
	key := fs.String("key", "", "the agent's key `file` (overrides key)")
	logFormat := fs.String("log-format", "", "json or text (overrides log.format)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (overrides log.level)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	c := fileConfig{Key: "/var/lib/rr-agent/id_ed25519"}
	if err := config.Load(*path, &c); err != nil {
		return fail(stderr, err)
	}
	override(&c.Host, *host)
	override(&c.Key, *key)
	override(&c.Log.Format, *logFormat)
	override(&c.Log.Level, *logLevel)
	log, err := c.Log.Logger(stderr)
	if err != nil {
		return fail(stderr, err)
	}
	token, err := config.Secret(c.EnrollToken, c.EnrollTokenFile, "RR_ENROLL_TOKEN")
	if errors.Is(err, os.ErrNotExist) && c.EnrollTokenFile != "" {
		// A one-time token's file, deleted once used: the key alone will
		// do from now on (and the gateway says so if it does not).
		log.Info("no enrollment token: its file is gone", "file", c.EnrollTokenFile)
		token, err = "", nil
	}
	if err != nil {
		return fail(stderr, err)
	}
	if c.Key == "" {
		return fail(stderr, errors.New("config: key: empty"))
	}
	signer, err := sshkit.LoadOrCreateKey(c.Key)
	if err != nil {
		return fail(stderr, err)
	}
	a, err := agent.New(agent.Config{
		Gateways:           c.Gateways,
		GatewayHostKey:     c.GatewayHostKey,
		GatewayHostKeys:    c.GatewayHostKeys,
		ResolveInterval:    c.ResolveInterval,
		Host:               c.Host,
		Signer:             signer,
		EnrollToken:        token,
		User:               c.User,
		Shell:              c.Shell,
		KeepaliveInterval:  c.KeepaliveInterval,
		KeepaliveMaxMissed: c.KeepaliveMaxMissed,
		BackoffMin:         c.BackoffMin,
		BackoffMax:         c.BackoffMax,
		KillGrace:          c.KillGrace,
		Logger:             log,
	})
	if err != nil {
		return fail(stderr, fmt.Errorf("config: %w", err))
	}
	// SIGHUP too (a terminal closing, a service manager's reload): the
	// agent ends its sessions and stops cleanly rather than die and leave
	// them running.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	log.Info("agent starting", "host", c.Host, "gateways", c.Gateways)
	if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("agent stopped", "err", err)
		return 1
	}
	log.Info("agent stopped", "host", c.Host)
	return 0
}

func override(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "rr-agent: %v\n", err)
	return 1
}
