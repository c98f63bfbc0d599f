// Package prelogin bounds what strangers can make a listener spend before
// they have logged in: the connections that have not authenticated yet,
// per source address and in all, and how long each may take.
//
// A Listener wraps one port's net.Listener (people's, agents', HTTP: one
// each, so that a flood of one does not starve another):
//
//	Accept ─▶ per-address cap (an IPv4 address, an IPv6 /64)
//	       ─▶ global cap with random early drop (sshd's MaxStartups
//	          start:rate:full)
//	       ─▶ *Conn, deadline now+HandshakeTimeout (version and key exchange)
//	  Conn.KexDone       deadline accepted+LoginGrace (authentication)
//	  Conn.Extend(d)     deadline now+d (identity proven, factors asked)
//	  Conn.Authenticated the slot is given back, the deadline lifted
//	  Conn.Close         the slot is given back if it was still held
//
// A refused connection is closed at once (RST, no TIME_WAIT kept), counted
// through Config.Refused and logged at most once a second. Accept never
// gives up while the listener is open: an error such as EMFILE is logged
// (at most once a second), waited out with back-off, and accepting goes on.
//
// Must not: read or write a connection's bytes (the SSH or HTTP server does),
// hold a goroutine per connection, or log an address per refusal.
package prelogin
