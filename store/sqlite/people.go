package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
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
	return s.tx(ctx, func(tx *sql.Tx) error {
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
	return s.tx(ctx, func(tx *sql.Tx) error {
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

// UpsertTeam creates or updates a team and replaces its hosts and members.
// Every member must exist.
func (s *Store) UpsertTeam(ctx context.Context, t store.Team) error {
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
func (s *Store) TeamsOf(ctx context.Context, person string) ([]store.Team, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.name, t.rapid_response, COALESCE(h.pattern, '')
		FROM team_members m JOIN teams t ON t.name = m.team LEFT JOIN team_hosts h ON h.team = t.name
		WHERE m.person = ? ORDER BY t.name, h.pattern`, person)
	if err != nil {
		return nil, fmt.Errorf("store: teams of %s: %w", person, err)
	}
	defer rows.Close()
	var out []store.Team
	for rows.Next() {
		var name, pattern string
		var rr bool
		if err := rows.Scan(&name, &rr, &pattern); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Name != name {
			out = append(out, store.Team{Name: name, RapidResponse: rr})
		}
		if pattern != "" {
			out[len(out)-1].Hosts = append(out[len(out)-1].Hosts, pattern)
		}
	}
	return out, rows.Err()
}

// SetHostPassphrase stores host's passphrase verifier (never the
// passphrase).
func (s *Store) SetHostPassphrase(ctx context.Context, host, verifier string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE hosts SET passphrase_verifier = ? WHERE name = ?`, verifier, host)
	if err != nil {
		return fmt.Errorf("store: passphrase of %s: %w", host, err)
	}
	return mustAffect(res, "host "+host)
}

// SetHostLabels replaces host's labels ("K=V" each).
func (s *Store) SetHostLabels(ctx context.Context, host string, labels []string) error {
	l := append([]string(nil), labels...)
	sort.Strings(l)
	res, err := s.db.ExecContext(ctx, `UPDATE hosts SET labels = ? WHERE name = ?`, strings.Join(l, ","), host)
	if err != nil {
		return fmt.Errorf("store: labels of %s: %w", host, err)
	}
	return mustAffect(res, "host "+host)
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
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := exists(ctx, tx, `SELECT 1 FROM people WHERE name = ?`, "person "+person, person); err != nil {
			return err
		}
		return insertKey(ctx, tx, person, fingerprint, authorizedKey)
	})
}

// insertKey registers a key to person; a fingerprint registered to anyone
// already is ErrConflict.
func insertKey(ctx context.Context, tx *sql.Tx, person, fingerprint, authorizedKey string) error {
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

// CreateTeam adds a team without members or hosts; one by that name
// already is ErrConflict.
func (s *Store) CreateTeam(ctx context.Context, name string, rapidResponse bool) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO teams (name, rapid_response) VALUES (?, ?)`, name, rapidResponse)
	if isConstraint(err) {
		return fmt.Errorf("%w: team %s exists", store.ErrConflict, name)
	}
	if err != nil {
		return fmt.Errorf("store: create team %s: %w", name, err)
	}
	return nil
}

// Teams returns every team with its hosts and members, all sorted.
func (s *Store) Teams(ctx context.Context) ([]store.Team, error) {
	return s.teams(ctx, `SELECT name, rapid_response FROM teams ORDER BY name`)
}

// Team returns one team with its hosts and members, sorted.
func (s *Store) Team(ctx context.Context, name string) (store.Team, error) {
	ts, err := s.teams(ctx, `SELECT name, rapid_response FROM teams WHERE name = ?`, name)
	if err != nil {
		return store.Team{}, err
	}
	if len(ts) == 0 {
		return store.Team{}, fmt.Errorf("%w: team %s", store.ErrNotFound, name)
	}
	return ts[0], nil
}

// teams runs query (which selects name and rapid_response) and fills in
// each team's hosts and members: three queries, however many teams.
func (s *Store) teams(ctx context.Context, query string, args ...any) ([]store.Team, error) {
	var out []store.Team
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var t store.Team
			if err := rows.Scan(&t.Name, &t.RapidResponse); err != nil {
				rows.Close()
				return err
			}
			out = append(out, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		byName := make(map[string]*store.Team, len(out))
		for i := range out {
			byName[out[i].Name] = &out[i]
		}
		if err := eachPair(ctx, tx, `SELECT team, pattern FROM team_hosts ORDER BY team, pattern`, func(team, pattern string) {
			if t := byName[team]; t != nil {
				t.Hosts = append(t.Hosts, pattern)
			}
		}); err != nil {
			return err
		}
		return eachPair(ctx, tx, `SELECT team, person FROM team_members ORDER BY team, person`, func(team, person string) {
			if t := byName[team]; t != nil {
				t.Members = append(t.Members, person)
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: teams: %w", err)
	}
	return out, nil
}

// DeleteTeam removes a team with its memberships and host patterns.
func (s *Store) DeleteTeam(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM teams WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("store: delete team %s: %w", name, err)
	}
	return mustAffect(res, "team "+name)
}

// SetTeamRapidResponse switches a team's Rapid Response on or off.
func (s *Store) SetTeamRapidResponse(ctx context.Context, name string, on bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE teams SET rapid_response = ? WHERE name = ?`, on, name)
	if err != nil {
		return fmt.Errorf("store: rapid response of %s: %w", name, err)
	}
	return mustAffect(res, "team "+name)
}

// AddTeamMember puts person in team. No such team or person:
// ErrNotFound; already a member: ErrConflict.
func (s *Store) AddTeamMember(ctx context.Context, team, person string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := exists(ctx, tx, `SELECT 1 FROM teams WHERE name = ?`, "team "+team, team); err != nil {
			return err
		}
		if err := exists(ctx, tx, `SELECT 1 FROM people WHERE name = ?`, "person "+person, person); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO team_members (team, person) VALUES (?, ?)`, team, person)
		if isConstraint(err) {
			return fmt.Errorf("%w: %s is already a member of %s", store.ErrConflict, person, team)
		}
		if err != nil {
			return fmt.Errorf("store: team %s member %s: %w", team, person, err)
		}
		return nil
	})
}

// RemoveTeamMember takes person out of team; ErrNotFound if not a member.
func (s *Store) RemoveTeamMember(ctx context.Context, team, person string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM team_members WHERE team = ? AND person = ?`, team, person)
	if err != nil {
		return fmt.Errorf("store: team %s member %s: %w", team, person, err)
	}
	return mustAffect(res, person+" in team "+team)
}

// AddTeamHost lets team reach the hosts pattern names (a host name,
// "label:K=V" or "*"). No such team: ErrNotFound; pattern already there:
// ErrConflict.
func (s *Store) AddTeamHost(ctx context.Context, team, pattern string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := exists(ctx, tx, `SELECT 1 FROM teams WHERE name = ?`, "team "+team, team); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO team_hosts (team, pattern) VALUES (?, ?)`, team, pattern)
		if isConstraint(err) {
			return fmt.Errorf("%w: team %s already has host %s", store.ErrConflict, team, pattern)
		}
		if err != nil {
			return fmt.Errorf("store: team %s host %s: %w", team, pattern, err)
		}
		return nil
	})
}

// RemoveTeamHost removes a host pattern from team; ErrNotFound if absent.
func (s *Store) RemoveTeamHost(ctx context.Context, team, pattern string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM team_hosts WHERE team = ? AND pattern = ?`, team, pattern)
	if err != nil {
		return fmt.Errorf("store: team %s host %s: %w", team, pattern, err)
	}
	return mustAffect(res, "host "+pattern+" in team "+team)
}

// exists returns ErrNotFound (naming what) unless query finds a row.
func exists(ctx context.Context, tx *sql.Tx, query, what string, args ...any) error {
	var one int
	err := tx.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s", store.ErrNotFound, what)
	}
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// eachPair runs query, which selects two text columns, and calls f with
// each row.
func eachPair(ctx context.Context, tx *sql.Tx, query string, f func(a, b string)) error {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			return err
		}
		f(a, b)
	}
	return rows.Err()
}

// declaredTables are the tables PruneDeclared and MarkDeclared keep, by
// kind.
var declaredTables = map[string]string{"person": "people", "team": "teams", "host": "hosts"}

// PruneDeclared deletes the people, teams or hosts (kind "person", "team"
// or "host") that the configuration file declared at an earlier start and
// that keep does not name, with what hangs off them (a person's keys and
// memberships, a team's, a host's enrollment tokens; sessions stay), so
// that taking someone out of the file takes their access away. Each
// deletion is audited (config.remove) in the same transaction. It returns
// the names deleted.
func (s *Store) PruneDeclared(ctx context.Context, kind string, keep []string, at time.Time) ([]string, error) {
	table, ok := declaredTables[kind]
	if !ok {
		return nil, fmt.Errorf("store: declared %q: want person, team or host", kind)
	}
	kept := make(map[string]bool, len(keep))
	for _, n := range keep {
		kept[n] = true
	}
	var removed []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name FROM `+table+` WHERE declared = 1 ORDER BY name`)
		if err != nil {
			return err
		}
		var gone []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			if !kept[n] {
				gone = append(gone, n)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, n := range gone {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE name = ?`, n); err != nil {
				return err
			}
			if err := insertAudit(ctx, tx, store.AuditEvent{Time: at, Actor: "config file", Action: "config.remove",
				Target: n, Outcome: "allowed", Detail: kind + " no longer declared"}); err != nil {
				return err
			}
		}
		removed = gone
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: prune declared %s: %w", table, err)
	}
	return removed, nil
}

// MarkDeclared notes that the configuration file declares names (which
// must exist) of kind: from now on, the file taking one out removes it
// (PruneDeclared), whoever made it first.
func (s *Store) MarkDeclared(ctx context.Context, kind string, names []string) error {
	table, ok := declaredTables[kind]
	if !ok {
		return fmt.Errorf("store: declared %q: want person, team or host", kind)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, n := range names {
			res, err := tx.ExecContext(ctx, `UPDATE `+table+` SET declared = 1 WHERE name = ?`, n)
			if err != nil {
				return fmt.Errorf("store: mark %s %s declared: %w", kind, n, err)
			}
			if err := mustAffect(res, kind+" "+n); err != nil {
				return err
			}
		}
		return nil
	})
}
