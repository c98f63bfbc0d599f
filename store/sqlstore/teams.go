package sqlstore

import (
	"context"
	"fmt"

	"github.com/rr-gateway/rr/store"
)

// UpsertTeam creates or updates a team and replaces its hosts and members.
// Every member must exist.
func (s *Store) UpsertTeam(ctx context.Context, t store.Team) error {
	return s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO teams (name, rapid_response) VALUES (?, ?)
			ON CONFLICT(name) DO UPDATE SET rapid_response = excluded.rapid_response`, t.Name, t.RapidResponse); err != nil {
			return fmt.Errorf("store: team %s: %w", t.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM team_hosts WHERE team = ?`, t.Name); err != nil {
			return err
		}
		for _, h := range t.Hosts {
			if _, err := tx.ExecContext(ctx, `INSERT INTO team_hosts (team, pattern) VALUES (?, ?) ON CONFLICT DO NOTHING`, t.Name, h); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM team_members WHERE team = ?`, t.Name); err != nil {
			return err
		}
		for _, m := range t.Members {
			if _, err := tx.ExecContext(ctx, `INSERT INTO team_members (team, person) VALUES (?, ?) ON CONFLICT DO NOTHING`, t.Name, m); err != nil {
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
	err := s.tx(ctx, func(tx *Tx) error {
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
	return s.tx(ctx, func(tx *Tx) error {
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
	return s.tx(ctx, func(tx *Tx) error {
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

// eachPair runs query, which selects two text columns, and calls f with
// each row.
func eachPair(ctx context.Context, tx *Tx, query string, f func(a, b string)) error {
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
