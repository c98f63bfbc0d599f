package auth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/alexedwards/argon2id"
	"golang.org/x/crypto/bcrypt"
)

// verifierParams are argon2id's costs for passwords and host passphrases:
// 64 MiB, 3 passes (about 0.1 s here), a fresh 16-byte salt per hash.
var verifierParams = &argon2id.Params{Memory: 64 * 1024, Iterations: 3, Parallelism: 2, SaltLength: 16, KeyLength: 32}

// ErrSecretTooLong is returned by HashSecret for a secret no login could
// give: longer than MaxAnswer.
var ErrSecretTooLong = fmt.Errorf("auth: a password or passphrase may be at most %d bytes, what a login answer carries", MaxAnswer)

// HashSecret makes the slow verifier stored for a password or a host
// passphrase: an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$key).
// A secret longer than MaxAnswer bytes is refused (ErrSecretTooLong).
func HashSecret(secret string) (string, error) {
	if len(secret) > MaxAnswer {
		return "", fmt.Errorf("%w (this one is %d)", ErrSecretTooLong, len(secret))
	}
	return argon2id.CreateHash(secret, verifierParams)
}

// ErrBadVerifier is returned for a stored verifier in no known format.
var ErrBadVerifier = errors.New("auth: verifier is neither argon2id nor bcrypt")

// CheckSecret reports whether secret matches verifier (argon2id, or bcrypt
// for passwords carried over from elsewhere). Both compare in constant
// time.
func CheckSecret(secret, verifier string) (bool, error) {
	switch {
	case strings.HasPrefix(verifier, "$argon2id$"):
		return argon2id.ComparePasswordAndHash(secret, verifier)
	case strings.HasPrefix(verifier, "$2a$"), strings.HasPrefix(verifier, "$2b$"), strings.HasPrefix(verifier, "$2y$"):
		err := bcrypt.CompareHashAndPassword([]byte(verifier), []byte(secret))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		return err == nil, err
	}
	return false, ErrBadVerifier
}

// ValidVerifier reports whether v is a verifier CheckSecret understands:
// argon2id, or bcrypt with one of the prefixes it compares ($2a$, $2b$,
// $2y$; bcrypt.Cost alone would also take $2x$, which CheckSecret refuses).
func ValidVerifier(v string) bool {
	switch {
	case strings.HasPrefix(v, "$argon2id$"):
		_, _, _, err := argon2id.DecodeHash(v)
		return err == nil
	case strings.HasPrefix(v, "$2a$"), strings.HasPrefix(v, "$2b$"), strings.HasPrefix(v, "$2y$"):
		_, err := bcrypt.Cost([]byte(v))
		return err == nil
	}
	return false
}
