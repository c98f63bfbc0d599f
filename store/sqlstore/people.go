package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rr-gateway/rr/store"
)

// UpsertPerson creates or updates a person (keys and memberships apart).
func (s *Store) UpsertPerson(ctx context.Context, p store.Person) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO people (name, email, role, password_hash, totp_secret, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET email = excluded.email, role = excluded.role,
		password_hash = excluded.password_hash, totp_secret = excluded.totp_secret`,
		p.Name, p.Email, p.Role, p.PasswordHash, p.TOTPSecret, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("store: upsert person %s: %w", p.Name, err)
	}
	return nil
}

// SetPeopleKeys replaces the public keys of several people at once, in
// one transaction: every listed person's keys go, then the new ones come,
// so that a key may move from one of them to another. keys maps each
// person to their keys (fingerprint → authorized_keys line). A key
// registered to someone not listed is ErrConflict, and nothing changes.
func (s *Store) SetPeopleKeys(ctx context.Context, keys map[string]map[string]string) error {
	return s.tx(ctx, func(tx *Tx) error {
		for person := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM person_keys WHERE person = ?`, person); err != nil {
				return err
			}
		}
		for person, ks := range keys {
			for fp, line := range ks {
				if err := insertKey(ctx, tx, person, fp, line); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// SetPersonKeys replaces a person's public keys. keys maps each key's
// SHA256 fingerprint to its authorized_keys line. A key registered to
// someone else is ErrConflict.
func (s *Store) SetPersonKeys(ctx context.Context, person string, keys map[string]string) error {
	return s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM person_keys WHERE person = ?`, person); err != nil {
			return err
		}
		for fp, line := range keys {
			if err := insertKey(ctx, tx, person, fp, line); err != nil {
				return err
			}
		}
		return nil
	})
}

func scanPerson(sc interface{ Scan(...any) error }) (store.Person, error) {
	var p store.Person
	err := sc.Scan(&p.Name, &p.Email, &p.Role, &p.PasswordHash, &p.TOTPSecret)
	return p, err
}

const personCols = `name, email, role, password_hash, totp_secret`

// PersonByName returns a person.
func (s *Store) PersonByName(ctx context.Context, name string) (store.Person, error) {
	p, err := scanPerson(s.db.QueryRowContext(ctx, `SELECT `+personCols+` FROM people WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Person{}, fmt.Errorf("%w: person %s", store.ErrNotFound, name)
	}
	return p, err
}

// PersonByKey returns the person a key (by SHA256 fingerprint) belongs to.
func (s *Store) PersonByKey(ctx context.Context, fingerprint string) (store.Person, error) {
	p, err := scanPerson(s.db.QueryRowContext(ctx, `SELECT p.name, p.email, p.role, p.password_hash, p.totp_secret
		FROM person_keys k JOIN people p ON p.name = k.person WHERE k.fingerprint = ?`, fingerprint))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Person{}, fmt.Errorf("%w: key %s", store.ErrNotFound, fingerprint)
	}
	return p, err
}

// UseTOTPStep records that person's authenticator code of time step
// (Unix time / 30 s) was accepted, and reports whether it was later than
// every step accepted from them before: false means the code was used
// already (or an older one), or there is no such person. It is one
// statement, so two logins racing with one code cannot both win.
func (s *Store) UseTOTPStep(ctx context.Context, person string, step int64) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE people SET totp_last_step = ? WHERE name = ? AND totp_last_step < ?`,
		step, person, step)
	if err != nil {
		return false, fmt.Errorf("store: totp step of %s: %w", person, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: totp step of %s: %w", person, err)
	}
	return n == 1, nil
}

// CreatePerson adds a new person; one by that name already is ErrConflict.
func (s *Store) CreatePerson(ctx context.Context, p store.Person) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO people (name, email, role, password_hash, totp_secret, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, p.Name, p.Email, p.Role, p.PasswordHash, p.TOTPSecret, time.Now().UnixNano())
	if isConstraint(err) {
		return fmt.Errorf("%w: person %s exists", store.ErrConflict, p.Name)
	}
	if err != nil {
		return fmt.Errorf("store: create person %s: %w", p.Name, err)
	}
	return nil
}

// UpdatePerson replaces an existing person's email, role, password hash
// and TOTP secret. No such person: ErrNotFound.
func (s *Store) UpdatePerson(ctx context.Context, p store.Person) error {
	res, err := s.db.ExecContext(ctx, `UPDATE people SET email = ?, role = ?, password_hash = ?, totp_secret = ? WHERE name = ?`,
		p.Email, p.Role, p.PasswordHash, p.TOTPSecret, p.Name)
	if err != nil {
		return fmt.Errorf("store: update person %s: %w", p.Name, err)
	}
	return mustAffect(res, "person "+p.Name)
}

// People returns everyone, ordered by name.
func (s *Store) People(ctx context.Context) ([]store.Person, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+personCols+` FROM people ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: people: %w", err)
	}
	defer rows.Close()
	var out []store.Person
	for rows.Next() {
		p, err := scanPerson(rows)
		if err != nil {
			return nil, fmt.Errorf("store: people: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeletePerson removes a person with their keys and memberships.
func (s *Store) DeletePerson(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM people WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("store: delete person %s: %w", name, err)
	}
	return mustAffect(res, "person "+name)
}

// PersonKeys returns person's keys, ordered by fingerprint. A person
// without keys, or no such person, has none.
func (s *Store) PersonKeys(ctx context.Context, person string) ([]store.PersonKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT fingerprint, authorized_key FROM person_keys WHERE person = ? ORDER BY fingerprint`, person)
	if err != nil {
		return nil, fmt.Errorf("store: keys of %s: %w", person, err)
	}
	defer rows.Close()
	var out []store.PersonKey
	for rows.Next() {
		var k store.PersonKey
		if err := rows.Scan(&k.Fingerprint, &k.AuthorizedKey); err != nil {
			return nil, fmt.Errorf("store: keys of %s: %w", person, err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// KeyCounts returns how many keys each person has; people without keys
// are not in the map.
func (s *Store) KeyCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT person, count(*) FROM person_keys GROUP BY person`)
	if err != nil {
		return nil, fmt.Errorf("store: key counts: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var person string
		var n int
		if err := rows.Scan(&person, &n); err != nil {
			return nil, fmt.Errorf("store: key counts: %w", err)
		}
		out[person] = n
	}
	return out, rows.Err()
}

// AddPersonKey registers a key to person. No such person: ErrNotFound; a
// fingerprint registered to anyone (person included): ErrConflict.
func (s *Store) AddPersonKey(ctx context.Context, person, fingerprint, authorizedKey string) error {
	return s.tx(ctx, func(tx *Tx) error {
		if err := exists(ctx, tx, `SELECT 1 FROM people WHERE name = ?`, "person "+person, person); err != nil {
			return err
		}
		return insertKey(ctx, tx, person, fingerprint, authorizedKey)
	})
}

// insertKey registers a key to person; a fingerprint registered to anyone
// already is ErrConflict.
func insertKey(ctx context.Context, tx *Tx, person, fingerprint, authorizedKey string) error {
	var owner string
	err := tx.QueryRowContext(ctx, `SELECT person FROM person_keys WHERE fingerprint = ?`, fingerprint).Scan(&owner)
	if err == nil {
		return fmt.Errorf("%w: key %s belongs to %s", store.ErrConflict, fingerprint, owner)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: key %s: %w", fingerprint, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO person_keys (fingerprint, person, authorized_key) VALUES (?, ?, ?)`,
		fingerprint, person, authorizedKey); err != nil {
		return fmt.Errorf("store: key of %s: %w", person, err)
	}
	return nil
}

// RemovePersonKey removes one of person's keys; ErrNotFound if person has
// no key with that fingerprint.
func (s *Store) RemovePersonKey(ctx context.Context, person, fingerprint string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM person_keys WHERE person = ? AND fingerprint = ?`, person, fingerprint)
	if err != nil {
		return fmt.Errorf("store: remove key of %s: %w", person, err)
	}
	return mustAffect(res, "key "+fingerprint+" of "+person)
}
