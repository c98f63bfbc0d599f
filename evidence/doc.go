// Package evidence makes rr's audit trail and recordings verifiable by
// someone who trusts neither the store nor the gateway's operators.
//
// It owns the audit key (an Ed25519 key file kept apart from the store),
// signatures in OpenSSH's SSHSIG format (so `ssh-keygen -Y verify` checks
// them with nothing of ours), the signed checkpoints of the audit hash
// chain, the signed manifests of finalized recordings, and the checks of
// all three that `rr verify-audit`, `rr verify -manifest` and the console's
// `audit verify` run.
//
// The chain's canonical form is store.ChainHash; this package verifies it
// but never writes the store, and it must not import a database driver or
// speak SSH to anyone: it signs, formats and checks.
package evidence
