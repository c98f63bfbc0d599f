// Package wire is the one thing the gateway and the agent share: the names
// and payloads of what crosses the tunnel between them.
//
// The agent dials the gateway's agent port and authenticates as its host
// name (the SSH user) with its own key. The gateway then opens one
// ChannelSession channel back over that connection for every person's
// session, with a SessionOpen as extra data, and forwards the person's
// channel requests (RFC 4254 §6: pty-req, env, shell, exec, subsystem,
// window-change, signal) to it unchanged. The agent answers with data,
// extended data (stderr), and the exit-status or exit-signal request, then
// EOF and close, in that order.
//
//	person ──session──▶ gateway ──rr-session@rr──▶ agent ──pty/pipes──▶ process
//
// This package holds only constants, payload structs and their
// (un)marshalling; it must not import anything of ours.
package wire
