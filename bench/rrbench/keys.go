package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// signer is a key derived from name, so that every process of the
// benchmark knows every key without passing files around. Benchmark
// keys only: anyone can derive them.
func signer(name string) ssh.Signer {
	s, err := ssh.NewSignerFromKey(privateKey(name))
	if err != nil {
		panic(err)
	}
	return s
}

func privateKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("rrbench/" + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func authorizedLine(s ssh.Signer) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

// The names the roles agree on.
const (
	gatewayKeyName = "gateway-host"
	onehopKeyName  = "onehop-host"
	passphrase     = "bench-passphrase-h0"
	sessionHost    = "h0" // the host every person session goes to
)

func personName(i int) string         { return "p" + strconv.Itoa(i) }
func personEmail(i int) string        { return personName(i) + "@bench.invalid" }
func personKey(i int) ssh.Signer      { return signer("person-" + personName(i)) }
func agentKey(host string) ssh.Signer { return signer("agent-" + host) }
