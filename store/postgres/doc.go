// Package postgres is rr's store on a PostgreSQL server through
// jackc/pgx v5 (a pgxpool behind database/sql), shared by several
// gateways. Its queries are store/sqlstore's, the same as SQLite's, so
// the two backends behave alike (store/storetest checks it); what is its
// own is here: connecting, the embedded migrations applied once under an
// advisory lock however many gateways start at once, the advisory lock
// that keeps the audit chain one line, and LISTEN/NOTIFY wake-ups.
//
// Must not: make policy decisions or speak SSH; print a DSN (it may carry
// a password) in an error or a log line.
package postgres
