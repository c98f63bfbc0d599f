// Package store owns rr's persistent state: hosts and the agent keys bound
// to them, one-time enrollment tokens (only their SHA-256), sessions and the
// audit trail — and, as the authentication issue lands, people, keys and
// teams. SQLite through mattn/go-sqlite3 is the default (WAL, busy timeout,
// foreign keys, migrations embedded and applied at Open, a schema_version
// table); it is the only package that imports a database driver.
//
// It must not make policy decisions or speak SSH: it stores and answers.
// Times are stored as UTC Unix nanoseconds, so they round-trip exactly.
package store
