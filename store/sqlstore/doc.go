// Package sqlstore is rr's store written once in SQL over database/sql:
// every query of people, teams, hosts, tokens, sessions, events, the
// audit chain and the cluster (leases, kill requests, host presence), for
// both backends. A backend (store/sqlite,
// store/postgres) opens its database, applies its own migrations with
// Migrate and hands the *sql.DB over with its Dialect: the placeholder
// style, how its driver reports a broken constraint, the lock that keeps
// the audit chain one line. Queries use '?' and the SQL both databases
// speak (ON CONFLICT, TRUE/FALSE, no RETURNING on a constraint path).
// What gateways race for (an expired lease, kill requests) is claimed by
// one UPDATE or DELETE … RETURNING, never a SELECT then a write: under
// PostgreSQL's READ COMMITTED two transactions may both read a row that
// only one of them will change.
//
// Must not: import a database driver (the backends do), make policy
// decisions or speak SSH. Times are stored as UTC Unix nanoseconds, so
// they round-trip exactly on both backends.
package sqlstore
