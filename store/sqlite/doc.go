// Package sqlite is rr's store on one SQLite file through mattn/go-sqlite3
// (WAL, busy timeout, foreign keys, migrations embedded and applied at
// Open, a schema_version table). The queries are store/sqlstore's; this
// package opens the file, migrates it and says how SQLite differs. It
// needs cgo. Linking it bounds glibc's malloc arenas, process-wide, to
// two (SQLite's memory; see maxArenas).
//
// It must not make policy decisions or speak SSH: it stores and answers,
// in the types of package store, with store's sentinel errors.
package sqlite
