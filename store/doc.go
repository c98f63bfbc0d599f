// Package store holds the types of rr's persistent state — people and
// their keys, teams, hosts and the agent keys bound to them, one-time
// enrollment tokens (only their SHA-256), sessions and the audit trail —
// with the sentinel errors every backend returns and the rules for names.
// The backends live below it: store/sqlite (the default, one file, cgo)
// and store/postgres (one PostgreSQL shared by several gateways), both on
// the queries of store/sqlstore; store/storetest is the behaviour both
// must show.
//
// It imports no database driver and nothing of ours, so the packages that
// use its types (gateway, its console, auth's adapters) build without cgo.
// Each consumer declares the subset of a backend's methods it uses.
//
// It must not make policy decisions or speak SSH: it stores and answers.
package store
