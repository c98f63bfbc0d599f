package gateway

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Algorithms are the SSH key exchanges, ciphers and MACs both of the
// gateway's ports offer. An empty list takes its default
// (DefaultAlgorithms); a name x/crypto/ssh does not support, or supports
// only as insecure, is an error.
type Algorithms struct {
	KeyExchanges []string
	Ciphers      []string
	MACs         []string
}

// DefaultAlgorithms is a modern set that passes ssh-audit with neither a
// failure nor a warning: no NIST curves, no SHA-1 and no 2048-bit group;
// AEAD ciphers and AES-CTR; MACs only encrypt-then-MAC. Every OpenSSH
// since 7.4 and x/crypto/ssh's defaults (the agent, the Go clients) find
// a match. Strict key exchange (kex-strict, against Terrapin) is
// x/crypto/ssh's own and always on.
func DefaultAlgorithms() Algorithms {
	return Algorithms{
		KeyExchanges: []string{ssh.KeyExchangeMLKEM768X25519, ssh.KeyExchangeCurve25519, ssh.KeyExchangeDH16SHA512},
		// x/crypto/ssh's client preference comes first: the Go paths
		// (agent, benchmarks) keep AES-GCM.
		Ciphers: []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM, ssh.CipherChaCha20Poly1305,
			ssh.CipherAES256CTR, ssh.CipherAES192CTR, ssh.CipherAES128CTR},
		MACs: []string{ssh.HMACSHA256ETM, ssh.HMACSHA512ETM},
	}
}

// Check reports every name in a that x/crypto/ssh does not support, with
// the names it does.
func (a Algorithms) Check() error { return a.checkAndSetDefaults() }

// checkAndSetDefaults fills in empty lists and reports every unknown name.
func (a *Algorithms) checkAndSetDefaults() error {
	d, supported := DefaultAlgorithms(), ssh.SupportedAlgorithms()
	return errors.Join(
		checkAlgos("key exchange", &a.KeyExchanges, d.KeyExchanges, supported.KeyExchanges),
		checkAlgos("cipher", &a.Ciphers, d.Ciphers, supported.Ciphers),
		checkAlgos("MAC", &a.MACs, d.MACs, supported.MACs),
	)
}

func checkAlgos(what string, names *[]string, def, supported []string) error {
	if len(*names) == 0 {
		*names = slices.Clone(def)
		return nil
	}
	var errs []error
	for _, n := range *names {
		if !slices.Contains(supported, n) {
			errs = append(errs, fmt.Errorf("%s %q is not supported (supported: %s)", what, n, strings.Join(supported, ", ")))
		}
	}
	return errors.Join(errs...)
}

// apply makes cfg offer a's algorithms.
func (a *Algorithms) apply(cfg *ssh.ServerConfig) {
	cfg.KeyExchanges = slices.Clone(a.KeyExchanges)
	cfg.Ciphers = slices.Clone(a.Ciphers)
	cfg.MACs = slices.Clone(a.MACs)
}
