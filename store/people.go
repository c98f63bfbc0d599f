package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Person is someone who may log in.
type Person struct {
	Name         string
	Email        string
	Role         string // admin, advanced or standard
	PasswordHash string // argon2id or bcrypt; "" for key-only people
	TOTPSecret   string // base32; "" unless enrolled
}

// Team groups people and the hosts they reach.
type Team struct {
	Name          string
	RapidResponse bool
	Hosts         []string // names, "label:K=V" or "*"
	Members       []string
}

// UpsertPerson creates or updates a person (keys and memberships apart).
func (s *SQLite) UpsertPerson(ctx context.Context, p Person) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO people (name, email, role, password_hash, totp_secret, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET email = excluded.email, role = excluded.role,
		password_hash = excluded.password_hash, totp_secret = excluded.totp_secret`,
		p.Name, p.Email, p.Role, p.PasswordHash, p.TOTPSecret, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("store: upsert person %s: %w", p.Name, err)
	}
	return nil
}

// SetPersonKeys replaces a person's public keys. keys maps each key's
// SHA256 fingerprint to its authorized_keys line. A key registered to
// someone else is ErrConflict.
func (s *SQLite) SetPersonKeys(ctx context.Context, person string, keys map[string]string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM person_keys WHERE person = ?`, person); err != nil {
			return err
		}
		for fp, line := range keys {
			var owner string
			err := tx.QueryRowContext(ctx, `SELECT person FROM person_keys WHERE fingerprint = ?`, fp).Scan(&owner)
			if err == nil {
				return fmt.Errorf("%w: key %s belongs to %s", ErrConflict, fp, owner)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO person_keys (fingerprint, person, authorized_key) VALUES (?, ?, ?)`,
				fp, person, line); err != nil {
				return fmt.Errorf("store: key of %s: %w", person, err)
			}
		}
		return nil
	})
}

func scanPerson(sc interface{ Scan(...any) error }) (Person, error) {
	var p Person
	err := sc.Scan(&p.Name, &p.Email, &p.Role, &p.PasswordHash, &p.TOTPSecret)
	return p, err
}

const personCols = `name, email, role, password_hash, totp_secret`

// PersonByName returns a person.
func (s *SQLite) PersonByName(ctx context.Context, name string) (Person, error) {
	p, err := scanPerson(s.db.QueryRowContext(ctx, `SELECT `+personCols+` FROM people WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Person{}, fmt.Errorf("%w: person %s", ErrNotFound, name)
	}
	return p, err
}

// PersonByKey returns the person a key (by SHA256 fingerprint) belongs to.
func (s *SQLite) PersonByKey(ctx context.Context, fingerprint string) (Person, error) {
	p, err := scanPerson(s.db.QueryRowContext(ctx, `SELECT p.name, p.email, p.role, p.password_hash, p.totp_secret
		FROM person_keys k JOIN people p ON p.name = k.person WHERE k.fingerprint = ?`, fingerprint))
	if errors.Is(err, sql.ErrNoRows) {
		return Person{}, fmt.Errorf("%w: key %s", ErrNotFound, fingerprint)
	}
	return p, err
}

// UpsertTeam creates or updates a team and replaces its hosts and members.
// Every member must exist.
func (s *SQLite) UpsertTeam(ctx context.Context, t Team) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO teams (name, rapid_response) VALUES (?, ?)
			ON CONFLICT(name) DO UPDATE SET rapid_response = excluded.rapid_response`, t.Name, t.RapidResponse); err != nil {
			return fmt.Errorf("store: team %s: %w", t.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM team_hosts WHERE team = ?`, t.Name); err != nil {
			return err
		}
		for _, h := range t.Hosts {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO team_hosts (team, pattern) VALUES (?, ?)`, t.Name, h); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM team_members WHERE team = ?`, t.Name); err != nil {
			return err
		}
		for _, m := range t.Members {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO team_members (team, person) VALUES (?, ?)`, t.Name, m); err != nil {
				return fmt.Errorf("store: team %s member %s: %w", t.Name, m, err)
			}
		}
		return nil
	})
}

// TeamsOf returns the teams person belongs to, by name, with their hosts.
func (s *SQLite) TeamsOf(ctx context.Context, person string) ([]Team, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.name, t.rapid_response, COALESCE(h.pattern, '')
		FROM team_members m JOIN teams t ON t.name = m.team LEFT JOIN team_hosts h ON h.team = t.name
		WHERE m.person = ? ORDER BY t.name, h.pattern`, person)
	if err != nil {
		return nil, fmt.Errorf("store: teams of %s: %w", person, err)
	}
	defer rows.Close()
	var out []Team
	for rows.Next() {
		var name, pattern string
		var rr bool
		if err := rows.Scan(&name, &rr, &pattern); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Name != name {
			out = append(out, Team{Name: name, RapidResponse: rr})
		}
		if pattern != "" {
			out[len(out)-1].Hosts = append(out[len(out)-1].Hosts, pattern)
		}
	}
	return out, rows.Err()
}

// SetHostPassphrase stores host's passphrase verifier (never the
// passphrase).
func (s *SQLite) SetHostPassphrase(ctx context.Context, host, verifier string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE hosts SET passphrase_verifier = ? WHERE name = ?`, verifier, host)
	if err != nil {
		return fmt.Errorf("store: passphrase of %s: %w", host, err)
	}
	return mustAffect(res, "host "+host)
}

// SetHostLabels replaces host's labels ("K=V" each).
func (s *SQLite) SetHostLabels(ctx context.Context, host string, labels []string) error {
	l := append([]string(nil), labels...)
	sort.Strings(l)
	res, err := s.db.ExecContext(ctx, `UPDATE hosts SET labels = ? WHERE name = ?`, strings.Join(l, ","), host)
	if err != nil {
		return fmt.Errorf("store: labels of %s: %w", host, err)
	}
	return mustAffect(res, "host "+host)
}
