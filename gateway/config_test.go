package gateway_test

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
)

// TestNoRecordersRefused: a gateway without recorders does not start
// (sessions are never run unrecorded); NopRecorders must be named.
func TestNoRecordersRefused(t *testing.T) {
	_, err := gateway.New(gateway.Config{})
	if err == nil || !strings.Contains(err.Error(), "no recorders") {
		t.Fatalf("New without recorders: %v; want it refused", err)
	}
	_, err = gateway.New(gateway.Config{Recorders: gateway.NopRecorders{}})
	if err == nil || strings.Contains(err.Error(), "recorders") {
		t.Fatalf("New with NopRecorders named: %v; want only the other fields missing", err)
	}
}

// handshake reports how an SSH handshake with addr ends when the client
// offers only algos.
func handshake(addr string, algos ssh.Config) error {
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{Config: algos, User: "nobody",
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err == nil {
		c.Close()
	}
	return err
}

// TestWeakAlgorithmsRefused: neither port negotiates what ssh-audit
// fails or warns about (NIST curves, SHA-1 key exchange, encrypt-and-MAC
// MACs), both negotiate the defaults, and a configured list is what is
// offered.
func TestWeakAlgorithmsRefused(t *testing.T) {
	gw := gatewaytest.StartGateway(t, gatewaytest.Config{})
	narrow := gatewaytest.StartGateway(t, gatewaytest.Config{Gateway: gateway.Config{
		Algorithms: gateway.Algorithms{Ciphers: []string{ssh.CipherAES256CTR}}}})
	noCommon := "no common algorithm"
	for _, tc := range []struct {
		name  string
		addrs []string
		algos ssh.Config
		want  string // "" for a handshake that gets as far as authentication
	}{
		{"NIST curve", []string{gw.PeopleAddr, gw.AgentAddr}, ssh.Config{KeyExchanges: []string{ssh.KeyExchangeECDHP256}}, noCommon},
		{"group14-sha1", []string{gw.PeopleAddr, gw.AgentAddr}, ssh.Config{KeyExchanges: []string{ssh.InsecureKeyExchangeDH14SHA1}}, noCommon},
		{"encrypt-and-MAC", []string{gw.PeopleAddr, gw.AgentAddr},
			ssh.Config{Ciphers: []string{ssh.CipherAES128CTR}, MACs: []string{ssh.HMACSHA256, ssh.HMACSHA1, ssh.InsecureHMACSHA196}}, noCommon},
		{"defaults", []string{gw.PeopleAddr, gw.AgentAddr}, ssh.Config{}, ""},
		{"post-quantum", []string{gw.PeopleAddr, gw.AgentAddr}, ssh.Config{KeyExchanges: []string{ssh.KeyExchangeMLKEM768X25519}}, ""},
		{"ETM with CTR", []string{gw.PeopleAddr, gw.AgentAddr}, ssh.Config{Ciphers: []string{ssh.CipherAES128CTR}, MACs: []string{ssh.HMACSHA256ETM}}, ""},
		{"configured: not offered", []string{narrow.PeopleAddr, narrow.AgentAddr}, ssh.Config{Ciphers: []string{ssh.CipherAES128GCM}}, noCommon},
		{"configured: offered", []string{narrow.PeopleAddr, narrow.AgentAddr}, ssh.Config{Ciphers: []string{ssh.CipherAES256CTR}}, ""},
	} {
		for _, addr := range tc.addrs {
			err := handshake(addr, tc.algos)
			if tc.want == "" {
				// Key exchange done; the login is what fails.
				if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
					t.Errorf("%s on %s: %v; want the handshake to reach authentication", tc.name, addr, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s on %s: %v; want %q", tc.name, addr, err, tc.want)
			}
		}
	}
	if _, err := gateway.New(gateway.Config{Recorders: gateway.NopRecorders{},
		Algorithms: gateway.Algorithms{MACs: []string{ssh.InsecureHMACSHA196}}}); err == nil ||
		!strings.Contains(err.Error(), `MAC "hmac-sha1-96" is not supported`) {
		t.Fatalf("an insecure MAC configured: %v", err)
	}
}
