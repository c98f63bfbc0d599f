package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/internal/config"
)

// fileConfig is configs/gateway.yaml; every field is commented there.
type fileConfig struct {
	Listen             string        `yaml:"listen"`
	AgentListen        string        `yaml:"agent_listen"`
	HostKey            string        `yaml:"host_key"`
	Database           string        `yaml:"database"`
	Name               string        `yaml:"name"`
	Log                config.Log    `yaml:"log"`
	LoginGraceTime     time.Duration `yaml:"login_grace_time"`
	ShutdownGrace      time.Duration `yaml:"shutdown_grace"`
	AgentKeepalive     time.Duration `yaml:"agent_keepalive"`
	ClientKeepalive    time.Duration `yaml:"client_keepalive"`
	KeepaliveMaxMissed int           `yaml:"keepalive_max_missed"`
	People             []filePerson  `yaml:"people"`
	Hosts              []fileHost    `yaml:"hosts"`
}

type filePerson struct {
	Name     string   `yaml:"name"`
	Keys     []string `yaml:"keys"`
	KeyFiles []string `yaml:"key_files"`
	Hosts    []string `yaml:"hosts"`
}

type fileHost struct {
	Name         string `yaml:"name"`
	AgentKey     string `yaml:"agent_key"`
	AgentKeyFile string `yaml:"agent_key_file"`
}

func defaultConfig() fileConfig {
	return fileConfig{
		Listen:      ":2222",
		AgentListen: ":2223",
		HostKey:     "/var/lib/rr/ssh_host_ed25519_key",
		Database:    "/var/lib/rr/rr.db",
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
	if c.Database == "" {
		errs = append(errs, errors.New("database: empty"))
	}
	seen := map[string]bool{}
	for i, h := range c.Hosts {
		if !gateway.ValidName(h.Name) {
			errs = append(errs, fmt.Errorf("hosts[%d]: bad name %q", i, h.Name))
		}
		if seen[h.Name] {
			errs = append(errs, fmt.Errorf("hosts[%d]: %q declared twice", i, h.Name))
		}
		seen[h.Name] = true
		if h.AgentKey != "" && h.AgentKeyFile != "" {
			errs = append(errs, fmt.Errorf("hosts[%d]: agent_key and agent_key_file both set", i))
		}
	}
	return errors.Join(errs...)
}

// people turns the people section into gateway.Person values.
func (c *fileConfig) people() ([]gateway.Person, error) {
	var errs []error
	var out []gateway.Person
	for i, p := range c.People {
		gp := gateway.Person{Name: p.Name, Hosts: p.Hosts}
		lines := append([]string(nil), p.Keys...)
		for _, f := range p.KeyFiles {
			b, err := os.ReadFile(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("people[%d] %s: %w", i, p.Name, err))
				continue
			}
			lines = append(lines, strings.Split(string(b), "\n")...)
		}
		for _, line := range lines {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				errs = append(errs, fmt.Errorf("people[%d] %s: bad key: %w", i, p.Name, err))
				continue
			}
			gp.Keys = append(gp.Keys, k)
		}
		for _, h := range p.Hosts {
			if h != "*" && !gateway.ValidName(h) {
				errs = append(errs, fmt.Errorf("people[%d] %s: bad host %q", i, p.Name, h))
			}
		}
		out = append(out, gp)
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
