// Package auth decides who may open a shell (docs/architecture.md#logging-in): it owns the
// prompts and their order — identity (key, or username and password), team,
// host passphrase, emailed code (or an authenticator app's code) — the
// factors' checks, the mailer that sends codes, and the rate limits and
// lockouts on everything guessable.
//
// The same flow runs over two kinds of Prompter: SSH keyboard-interactive
// (when the login name carries the host: ssh rr+web-01@gw) and the
// session's own terminal (ssh -t rr@gw web-01, where the host is known only
// after authentication). A key login that has nothing to ask at login
// time (no host in the login name, one team) is completed by KeyLogin
// without a Prompter; what it did not ask is asked where it is needed.
// Every decision is reported to the Config.Audit function, allowed or
// denied, with its reason.
//
// Failures all read "permission denied" at the SSH layer and cost about
// the same time whether the person exists or not. Every password and
// passphrase check takes its argon2id memory from one budget
// (Config.HashMemoryBudget) and waits its turn, with a deadline, rather
// than allocate beyond it; lockouts and the address limit are checked
// before any hash. Codes and passphrases
// are never logged; a passphrase is held in a Secret, whose LogValue is
// REDACTED, until the recorder has keyed the session with it.
//
// auth imports nothing of ours: the gateway adapts the store to Directory.
package auth
