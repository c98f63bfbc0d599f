package main

import (
	"strings"
	"testing"

	"github.com/rr-gateway/rr/gateway"
)

// TestSSHAlgorithmsConfig: the ssh section reaches the gateway's config
// and an unsupported or insecure name is refused at start with the list
// of supported ones.
func TestSSHAlgorithmsConfig(t *testing.T) {
	dir := t.TempDir()
	c, err := configIn(t, dir, "ssh: {kex: [curve25519-sha256], ciphers: [aes256-gcm@openssh.com], macs: [hmac-sha2-512-etm@openssh.com]}\n", true)
	if err != nil {
		t.Fatal(err)
	}
	if a := c.SSH.algorithms(); strings.Join(a.KeyExchanges, ",") != "curve25519-sha256" || strings.Join(a.Ciphers, ",") != "aes256-gcm@openssh.com" {
		t.Fatalf("algorithms %+v", a)
	}
	_, err = configIn(t, dir, "ssh: {kex: [ecdh-sha2-nistp256, diffie-hellman-group14-sha1], ciphers: [3des-cbc], macs: [hmac-sha1-96, hmac-sha2-256-etm@openssh.com]}\n", false)
	for _, want := range []string{`"diffie-hellman-group14-sha1" is not supported`, `cipher "3des-cbc"`, `MAC "hmac-sha1-96"`, "supported: aes128-gcm@openssh.com"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check: %v; want %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), `"ecdh-sha2-nistp256" is not`) {
		t.Errorf("check refused a supported name: %v", err)
	}
	d := gateway.DefaultAlgorithms()
	if len(d.KeyExchanges) == 0 || len(d.Ciphers) == 0 || len(d.MACs) == 0 {
		t.Fatal("no defaults")
	}
}
