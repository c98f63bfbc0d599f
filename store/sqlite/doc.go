// Package sqlite is rr's store on one SQLite file through mattn/go-sqlite3
// (WAL, busy timeout, foreign keys, migrations embedded and applied at
// Open, a schema_version table). It is the only package that imports a
// database driver, and it needs cgo.
//
// It must not make policy decisions or speak SSH: it stores and answers,
// in the types of package store, with store's sentinel errors. Times are
// stored as UTC Unix nanoseconds, so they round-trip exactly.
package sqlite
