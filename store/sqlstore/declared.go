package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/rr-gateway/rr/store"
)

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
	err := s.tx(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name FROM `+table+` WHERE declared ORDER BY name`)
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
	return s.tx(ctx, func(tx *Tx) error {
		for _, n := range names {
			res, err := tx.ExecContext(ctx, `UPDATE `+table+` SET declared = TRUE WHERE name = ?`, n)
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
