// Package admin is the rr-admin console: the line-oriented command
// interpreter people reach with `ssh rr@gateway -s rr-admin` (see
// README.md). It owns the commands, their parsing and output (aligned tables, or
// JSON with --json), who may run which, which sessions a caller may see
// (MaySee), input hygiene, and the audit events of every kill attempt and
// every administrative change.
//
// Anyone in a Rapid Response team may list and inspect the sessions of the
// team they logged in under, kill the live ones and watch them (the
// gateway's Config.Watch, which gets the console's terminal: raw output,
// the keys typed, where to ask the host's passphrase); administrators see
// every session and manage people, keys, teams and hosts. A session the
// caller may not see reads exactly like one that does not exist.
//
// A key alone changes nothing: before a connection's first change the
// console asks the second factor (Config.SecondFactor, the emailed or
// authenticator code; not again on a connection that gave it), on the
// terminal without echo, or without one on stderr with the next input
// line as the answer. A refusal is audited and changes nothing. Every
// change that goes through is audited and told to the admins
// (Config.Notify). A host whose agent is enrolled takes no enrollment
// token: host reenroll unbinds its key, drops its agents
// (Config.DropAgents) and prints a new token; the configuration file's
// rule for tokens (Config.TokenRule) holds for both.
//
// It must not speak SSH or import package gateway (which imports it): the
// gateway hands it a Caller, the channel's reader and writers, and
// callbacks for what only the gateway knows (Kill, Online, Live,
// DownloadCommand, SecondFactor, Notify, DropAgents, Watch, Watchers). It never sees a
// plaintext secret: passwords and host passphrases arrive as verifiers,
// and enrollment tokens are stored only as their SHA-256. Nothing is cached: every command reads and writes the
// store, so a change takes effect at once.
package admin
