#!/usr/bin/env bash
# make bench: benchmarks reported as ratios against baselines measured in
# the same run. First the Go benchmarks (recorder and SHA-256 against raw AES-256-CTR,
# the gateway's in-process bulk with recording on against off, the audit
# chain's append against a plain insert, rr verify-audit on a million
# events), then
# bench/rrbench, which runs gateway, agents and a one-hop endpoint as
# processes of their own (bulk, CPU per byte, keystrokes, set-up, memory).
# Writes bench/results.md and bench/results.json.
#
# Sizes: BULK=1GiB BULK_RUNS=5 SESSIONS=1000 AGENTS=1000 MEMORY_RUNS=3 KEYSTROKES=2000
# SETUPS=200 EVENTS=20000
# WORKERS=8; BENCHTIME, BULKTIME and COUNT for the Go benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1
# OpenSSH's sshd: the ssh -J and OpenSSH direct references (skipped without).
if ! command -v sshd >/dev/null && [ ! -x /usr/sbin/sshd ]; then
  echo "bench: installing openssh-server (apt-get)"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openssh-server >/dev/null
fi
# PostgreSQL's server: the store figures start a throwaway one.
. scripts/postgres.sh
need_postgres
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# 1000 PTY sessions and 1000 agent tunnels need file descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-1s}" -count "${COUNT:-3}" ./recorder | tee "$tmp/gobench.txt" | grep -E '^Benchmark' >&2
go test -run '^$' -bench 'Bulk|Upload|Binary' -benchmem -benchtime "${BULKTIME:-3x}" -count "${COUNT:-3}" ./gateway | tee -a "$tmp/gobench.txt" | grep -E '^Benchmark' >&2
# The evidence: an audit append with the hash chain against one without,
# and rr verify-audit on an export of one million events.
go test -run '^$' -bench 'Audit(Chained|Unchained)' -benchmem -benchtime "${BENCHTIME:-1s}" -count "${COUNT:-3}" ./store/sqlite | tee -a "$tmp/gobench.txt" | grep -E '^Benchmark' >&2
go test -run '^$' -bench 'VerifyAudit1M' -benchmem -benchtime 1x -count 1 ./cmd/rr | tee -a "$tmp/gobench.txt" | grep -E '^Benchmark' >&2
go build -o "$tmp/rrbench" ./bench/rrbench
"$tmp/rrbench" -gobench "$tmp/gobench.txt" -out bench
