// Package agent is rr-agent: it runs on a host, dials out to one or more
// gateways, and serves the sessions each gateway opens back over that
// connection. It is the only importer of creack/pty.
//
// One tunnel per gateway address, each a small state machine:
//
//	dialing ──handshake ok──▶ connected ──conn lost──▶ disconnected
//	   ▲                                                   │
//	   └──────────── jittered exponential back-off ◀───────┘
//
// Dialing resolves the gateway's name anew, pins its host key (a mismatch
// is refused before any credential is sent), and authenticates as the host
// with the agent's key (plus, once, an enrollment token). Connected, it
// answers keepalives, sends its own (a silent gateway is dropped within
// KeepaliveInterval×KeepaliveMaxMissed), and serves wire.ChannelSession
// channels; every other channel type is rejected. Back-off doubles from
// BackoffMin to BackoffMax with "equal jitter" (half fixed, half random) and
// starts over after a connection that lasted longer than BackoffMax.
//
// A session runs the configured user's shell — as a login shell, or
// SHELL -c COMMAND for exec — on a pty or on pipes, in its own process
// group. When it exits, its output is drained, then exit-status (or
// exit-signal), EOF and close are sent. When the channel closes first (the
// person left, the gateway killed it, the tunnel dropped, the agent stops),
// the group gets SIGHUP, then SIGKILL after KillGrace.
//
// The agent must not listen on anything, and must not run anything the
// gateway did not ask for.
package agent
