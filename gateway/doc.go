// Package gateway is rr's SSH server: the port people connect to with stock
// OpenSSH, the port agents dial out to, and the bridge between the two.
//
// It owns:
//   - the people's listener: authentication (through auth.Service: key or
//     password, team, host passphrase, code), the host menu, the refusal of
//     every kind of forwarding, and one session per "session" channel;
//   - the agents' listener: agent authentication (a key bound to a host, or
//     a one-time enrollment token that binds one to a host with none),
//     keepalives, and the registry of online hosts, which keeps one agent
//     key per host: another key's agent is refused while one is live, and
//     a tunnel whose key the store no longer binds gets no session;
//   - the bridge: a person's channel forwarded as a wire.ChannelSession
//     channel over the host's tunnel, data and requests both ways, both data
//     directions teed into a SessionRecorder;
//   - the session lifecycle: one row in the store per session, finalized on
//     every exit path (exit, client gone, agent gone, kill, shutdown);
//   - watching a live session (watch.go, watching.go): each session's hub
//     takes its output after the recorder, into a ring of recent output
//     (none before the first output, 1 KiB then, up to 256 KiB) and into
//     each watcher's bounded buffer, never waiting: a watcher too far
//     behind is dropped. A watch (console watch ID, or exec watch:ID) is
//     allowed to whoever may see the session (admin.MaySee), after the
//     host's passphrase; it replays the screen, follows, tells the person
//     and is audited. One gateway: a remote session's watch would feed a
//     watcher of the same shape;
//   - running beside peers on one store (cluster.go): the lease renewed
//     every third of Config.Lease, the takeover of peers whose lease
//     expired (their live rows interrupted, once its own renewals have
//     held for a lease), kill requests taken while it holds live sessions
//     (polled every Config.KillPoll, woken by a store's Notifier), a kill
//     of a peer's session asked through the store and awaited on its row,
//     and its hosts' presence rows; its session rows name it and its
//     Advertise address;
//   - what a person reaches on the gateway itself, without a host: the
//     rr-admin console (package gateway/admin, with Kill, the live
//     registry, the connection's second factor for changes, the admins'
//     notices and the dropping of a re-enrolled host's agents plugged in) and the read-only recordings tree over SFTP and
//     legacy scp (package gateway/download, over a library of the sessions
//     the person may see and an opener of the spool or S3).
//
// Lifecycle of a session (runSession owns it until it is live, then
// liveSession.serve on a fresh goroutine, so that an idle session's stack
// holds the bridge's frames only):
//
//	channel accepted ─▶ setup requests buffered (pty-req, env, window-change)
//	  ─▶ shell/exec/subsystem names the host (login name, command, or menu),
//	     or a security event (event:ID) whose host it takes
//	  ─▶ policy: may this person reach it? is it online?
//	  ─▶ the host's factors; for an event, its banner
//	  ─▶ store row (live) + recorder started (fail closed)
//	  ─▶ agent channel opened, buffered requests replayed, shell/exec sent
//	  ─▶ bridge until the host side exits, the person leaves, or the
//	     session context is cancelled (its cause is what the person is told)
//	  ─▶ recorder closed, store row finished, channels closed
//
// Text the gateway writes on a person's terminal itself (notices, kill
// reasons someone else typed, refusals, prompts) goes through
// internal/termtext: control, bidi and invisible characters escaped. Of the
// requests an agent sends on a session, only the first well-formed
// exit-status or exit-signal goes on to the person, re-encoded, its
// signal name and message bounded (256 bytes) and the message escaped;
// the rest is dropped. The session's own bytes are never touched.
//
// Before login each port's listener is wrapped by internal/prelogin (caps
// per address and in all, the handshake deadline, then the login grace,
// extended to PromptGraceTime once a person's identity is proven); after
// login, a person's connection with no channel open is closed
// (UnusedConnectionTimeout).
//
// The gateway never runs a shell itself and never forwards TCP, X11 or the
// SSH agent: those would carry traffic the recorder cannot see.
//
// Both ports are on golang.org/x/crypto/ssh, not gliderlabs/ssh (which the
// tests' and bench's simple servers use): its auth handlers return a bool,
// so a key cannot lead on to keyboard-interactive factors
// (PartialSuccessError) nor a refusal tell the person why (BannerError);
// it answers pty-req, env and window-change itself, where the bridge must
// buffer them and replay them, payload intact, to the agent; and its Pty
// drops the terminal modes the agent applies.
//
// Imports: wire, auth, store (types and the SQLite implementation behind a
// consumer interface), gateway/admin, gateway/download, internal/sshkit and
// internal/termtext, internal/prelogin; never agent.
package gateway
