// Package sshkit holds the small SSH chores that both programs do the same
// way: loading or creating an ed25519 key file, checking a pinned host key
// fingerprint in constant time, and keeping a connection alive with
// keepalive@openssh.com requests. It depends only on x/crypto/ssh.
package sshkit
