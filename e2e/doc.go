// Package e2e holds the end-to-end tests: a real gateway and real agents
// started in-process on 127.0.0.1, driven by the real OpenSSH client
// binaries, with tmux as the person's terminal where a terminal matters.
// It has no code of its own; `make test` installs the tools it needs.
package e2e
