#!/usr/bin/env bash
# make test: lint, unit tests (with -race where there is concurrency), the
# end-to-end tests that drive the real OpenSSH client, then the interop
# suite (every SSH client from Debian; prints its matrix). Installs what the
# tests need when it is missing. Usage: scripts/test.sh [lint|unit|e2e|interop]...
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(lint unit e2e interop)

need_tools() {
  local missing=()
  command -v ssh >/dev/null || missing+=(openssh-client)
  command -v tmux >/dev/null || missing+=(tmux)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v asciinema >/dev/null || missing+=(asciinema)
  command -v strace >/dev/null || missing+=(strace) # the agent test of a process that never ends
  command -v ssh-audit >/dev/null || missing+=(ssh-audit) # both SSH ports audited
  command -v systemd-analyze >/dev/null || missing+=(systemd) # the units in configs/ verified
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "test: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The SSH clients of the interop suite (e2e/interop_test.go), from Debian.
need_clients() {
  local missing=()
  command -v plink >/dev/null && command -v pscp >/dev/null && command -v puttygen >/dev/null || missing+=(putty-tools)
  command -v dbclient >/dev/null && command -v dropbearconvert >/dev/null || missing+=(dropbear-bin)
  /usr/bin/python3 -c 'import paramiko' 2>/dev/null || missing+=(python3-paramiko)
  /usr/bin/python3 -c 'import asyncssh' 2>/dev/null || missing+=(python3-asyncssh)
  command -v rclone >/dev/null || missing+=(rclone)
  command -v lftp >/dev/null || missing+=(lftp)
  curl -V 2>/dev/null | grep -qw sftp || missing+=(curl)
  command -v sshfs >/dev/null || missing+=(sshfs)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "test: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# mailpit, the SMTP server that captures mail in the e2e tests: built once
# with go install and kept in $(go env GOPATH)/bin.
need_mailpit() {
  command -v mailpit >/dev/null && return 0
  [ -x "$(go env GOPATH)/bin/mailpit" ] && return 0
  echo "test: installing mailpit (go install, about a minute)"
  go install github.com/axllent/mailpit@v1.27.11
}

# versitygw, the S3-compatible server the recordings' S3 tests use.
need_versitygw() {
  command -v versitygw >/dev/null && return 0
  [ -x "$(go env GOPATH)/bin/versitygw" ] && return 0
  echo "test: installing versitygw (go install, a minute or two)"
  go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
}

# staticcheck, pinned to a release that knows this Go: built once with go
# install and kept in $(go env GOPATH)/bin.
staticcheck_version=v0.8.2 # 2026.2.2
need_staticcheck() {
  local bin
  bin="$(go env GOPATH)/bin/staticcheck"
  if [ -x "$bin" ] && "$bin" -version | grep -q "(${staticcheck_version#v})"; then
    return 0
  fi
  echo "test: installing staticcheck $staticcheck_version (go install, about a minute)"
  go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
}

for step in "${steps[@]}"; do
  case "$step" in
  lint)
    echo "== lint"
    bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
    if [ -n "$bad" ]; then echo "gofmt would change: $bad"; exit 1; fi
    go vet ./...
    need_staticcheck
    "$(go env GOPATH)/bin/staticcheck" ./...
    scripts/check-imports.sh
    ;;
  unit)
    echo "== unit tests (-race)"
    need_tools # some unit tests use the real ssh, scp, sftp and openssl too
    need_versitygw
    # cmd/rr reads one file on one goroutine; its test of a 128 MiB
    # recording's memory would take the race detector 40 s.
    go test -race -count=1 -timeout 10m $(go list ./... | grep -v -e /e2e -e /cmd/rr$)
    go test -count=1 -timeout 5m ./cmd/rr
    ;;
  e2e)
    echo "== end-to-end tests (real ssh)"
    need_tools
    need_mailpit
    need_versitygw
    go test -count=1 -timeout 15m -skip '^TestInterop$' ./e2e/...
    ;;
  interop)
    echo "== interop: every SSH client from Debian against one gateway"
    need_tools
    need_clients
    matrix=$(mktemp)
    RR_INTEROP_MATRIX=$matrix go test -count=1 -timeout 10m -run '^TestInterop$' ./e2e/
    cat "$matrix"
    rm -f "$matrix"
    ;;
  *) echo "test: unknown step $step (lint, unit, e2e, interop)"; exit 2 ;;
  esac
done
