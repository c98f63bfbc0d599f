package store

// Person is someone who may log in.
type Person struct {
	Name         string
	Email        string
	Role         string // admin, advanced or standard
	PasswordHash string // argon2id or bcrypt; "" for key-only people
	TOTPSecret   string // base32; "" unless enrolled
}

// PersonKey is one of a person's public keys.
type PersonKey struct {
	Fingerprint   string // SHA256:…
	AuthorizedKey string // authorized_keys line
}
