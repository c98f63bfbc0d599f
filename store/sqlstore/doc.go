// Package sqlstore is rr's store written once in SQL over database/sql:
// every query of people, teams, hosts, tokens, sessions, events and the
// audit chain, for both backends. A backend (store/sqlite,
// store/postgres) opens its database, applies its own migrations with
// Migrate and hands the *sql.DB over with its Dialect: the placeholder
// style, how its driver reports a broken constraint, the lock that keeps
// the audit chain one line. Queries use '?' and the SQL both databases
// speak (ON CONFLICT, TRUE/FALSE, no RETURNING on a constraint path).
//
// Must not: import a database driver (the backends do), make policy
// decisions or speak SSH. Times are stored as UTC Unix nanoseconds, so
// they round-trip exactly on both backends.
package sqlstore
