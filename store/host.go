package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// Host is a machine an agent serves.
type Host struct {
	Name               string
	AgentKey           string // authorized_keys line of the agent's key; "" until enrolled
	CreatedAt          time.Time
	LastSeen           time.Time // zero if never
	Labels             []string  // "K=V" each, sorted
	PassphraseVerifier string    // slow verifier of the host's passphrase; "" if none set
}

// NewEnrollToken makes a one-time enrollment token (32 random bytes,
// base64url) and the hash of it the store keeps (EnrollTokenHash).
func NewEnrollToken() (token string, hash []byte) {
	var raw [32]byte
	rand.Read(raw[:])
	token = base64.RawURLEncoding.EncodeToString(raw[:])
	return token, EnrollTokenHash([]byte(token))
}

// EnrollTokenHash is what the store keeps of a token, and what a token an
// agent offers is matched against: its SHA-256.
func EnrollTokenHash(token []byte) []byte {
	sum := sha256.Sum256(token)
	return sum[:]
}
