// Package e2e holds the end-to-end tests: a real gateway and real agents
// started in-process on 127.0.0.1, driven by the real OpenSSH client
// binaries, with tmux as the person's terminal where a terminal matters.
// TestInterop drives every other SSH client Debian packages (PuTTY,
// Dropbear, paramiko, asyncssh, rclone, lftp, curl, sshfs) the same way
// and prints which client does what (`make interop`).
// It has no code of its own; `make test` installs the tools it needs.
package e2e
