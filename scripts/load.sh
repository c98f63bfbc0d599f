#!/usr/bin/env bash
# make load: the load and soak runs of issue 6 (not part of make test).
#   1. TestLoad: RR_LOAD_SESSIONS (500) concurrent sessions through an
#      in-process gateway and RR_LOAD_HOSTS (4) agents, each pushing random
#      data (exec cat) or typing commands (PTY shell) for RR_LOAD_SECONDS
#      to twice that (10-20 s); then every recording decrypted and compared
#      byte for byte with what its client sent and received.
#   2. The same under -race, 50 sessions of 5-10 s (RR_LOAD_RACE_SESSIONS,
#      RR_LOAD_RACE_SECONDS).
#   3. TestFaults: the real rr-gateway and rr-agent processes, mailpit and
#      versitygw; an agent killed, SMTP and S3 stopped, a flood of password
#      guesses, the gateway SIGKILLed and restarted, under load.
#   4. TestLoadHA: RR_LOAD_HA_SESSIONS (200) sessions spread over two
#      gateways on one throwaway PostgreSQL, every recording compared; then
#      the same with PostgreSQL stopped once half are live (logins refused
#      meanwhile) and started again (the other half log in).
# Results: bench/load-results.md and bench/load-results.json (one entry per
# run, replaced by the next run of the same name).
# Usage: scripts/load.sh [load|race|faults|ha]...   (default: all four)
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1 RR_LOAD=1
export RR_LOAD_RESULTS="$PWD/bench/load-results"
mkdir -p bench
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(load race faults ha)

need_tools() {
  command -v mailpit >/dev/null || [ -x "$(go env GOPATH)/bin/mailpit" ] || {
    echo "load: installing mailpit (go install, about a minute)"
    go install github.com/axllent/mailpit@v1.27.11
  }
  command -v versitygw >/dev/null || [ -x "$(go env GOPATH)/bin/versitygw" ] || {
    echo "load: installing versitygw (go install, a minute or two)"
    go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
  }
}

# Sessions, processes and PTYs: raise the open-file limit as far as allowed
# (the tests also raise their own soft limit to the hard one).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

status=0
for step in "${steps[@]}"; do
  case "$step" in
  load)
    echo "== load: ${RR_LOAD_SESSIONS:-500} sessions"
    go test -count=1 -timeout 20m -v -run 'TestLoad$' ./bench/loadtest | grep -v '^=== RUN' || status=1
    ;;
  race)
    echo "== load under -race: ${RR_LOAD_RACE_SESSIONS:-50} sessions"
    RR_LOAD_SESSIONS="${RR_LOAD_RACE_SESSIONS:-50}" RR_LOAD_SECONDS="${RR_LOAD_RACE_SECONDS:-5}" \
      go test -race -count=1 -timeout 20m -v -run 'TestLoad$' ./bench/loadtest | grep -v '^=== RUN' || status=1
    ;;
  faults)
    echo "== fault run (rr-gateway, rr-agent, mailpit, versitygw)"
    need_tools
    go test -count=1 -timeout 20m -v -run 'TestFaults$' ./bench/loadtest | grep -v '^=== RUN' || status=1
    ;;
  ha)
    echo "== two gateways on PostgreSQL: ${RR_LOAD_HA_SESSIONS:-200} sessions, then PostgreSQL restarted under load"
    . scripts/postgres.sh
    need_postgres
    RR_LOAD_SESSIONS="${RR_LOAD_HA_SESSIONS:-200}" CI=true \
      go test -count=1 -timeout 20m -v -run 'TestLoadHA$' ./bench/loadtest | grep -v '^=== RUN' || status=1
    ;;
  *) echo "load: unknown step $step (load, race, faults, ha)"; exit 2 ;;
  esac
done
echo "results: bench/load-results.md, bench/load-results.json"
exit $status
