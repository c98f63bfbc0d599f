// Package agent is rr-agent's core: it runs on a host, dials out to one or
// more gateways, and serves the session channels each gateway opens back
// over that connection. It owns the tunnel client and the host-side
// sessions (processes, ptys, signals, exit statuses), and is the only
// importer of creack/pty.
//
// # Tunnels
//
// Run starts one tunnel per gateway address, each a small state machine
// that refuses illegal transitions and reports every change to OnState:
//
//	dialing ──handshake ok──▶ connected ──conn lost──▶ disconnected
//	   │                                                 ▲   │
//	   └──────────── dial or handshake error ────────────┘   │
//	   ▲                                                     │
//	   └──────────── jittered exponential back-off ◀─────────┘
//
// Dialing resolves the gateway's name anew, pins its host key (a mismatch
// is refused before any credential is sent, logged at error level with
// both fingerprints, and retried), and authenticates as the host with the
// agent's key, plus the enrollment token when the gateway asks for it.
// Connected, it answers keepalive@openssh.com (every other global request
// gets false), sends its own keepalives (a silent gateway is dropped
// within KeepaliveInterval×KeepaliveMaxMissed), and serves
// wire.ChannelSession channels; every other channel type is rejected.
// Back-off doubles from BackoffMin to BackoffMax with "equal jitter" (half
// the step fixed, half random: never an immediate retry, yet the agents of
// a restarted gateway spread out) and starts over after a connection that
// stayed up longer than BackoffMax or 10 s, whichever is shorter.
//
// # Sessions
//
// A session runs the configured user's shell — as a login shell
// ("-bash"), or SHELL -c COMMAND for exec — on a pty or on pipes, with a
// login shell's environment, in a session of its own (setsid, as sshd
// does: the process leads a new session and process group). A signal
// request goes to the terminal's foreground process group with a pty,
// else to the session's process group. When the process exits, its output
// is drained, then exit-status (or exit-signal), EOF and close are sent.
// When the channel closes first (the person left, the gateway killed it,
// the tunnel dropped, the agent stops), every process of the session — its
// process group and, found through /proc, jobs that an interactive shell
// put in groups of their own — gets SIGHUP, then SIGKILL after KillGrace.
// A process that left the session (setsid, a daemon) is out of reach.
//
// # Lifecycle
//
// Run(ctx) returns nil once ctx is done and everything has stopped:
// connections closed, every session's processes ended (so Run may take up
// to KillGrace), every goroutine exited. Each goroutine has an owner: Run
// waits for the tunnels, a tunnel for its connection's keepalive, request
// and session goroutines, a session for its copies and its waiter. A panic
// in a session is logged with its stack and ends that session only.
//
// The agent is on golang.org/x/crypto/ssh, not gliderlabs/ssh: it is the
// client of its connection (it dials the gateway) and serves channels the
// gateway opens over it, which a server library cannot do, and it needs
// the pty-req's terminal modes, which gliderlabs' Pty leaves out.
//
// # Must not
//
// The agent must not listen on anything, must not run anything the
// gateway did not ask for (no subsystems, no forwarding, no agent or X11
// forwarding), and must not log the enrollment token.
package agent
