#!/usr/bin/env bash
# Imports flow one way (docs/architecture.md#packages): cmd → gateway/agent → auth,
# recorder, store → nothing of ours (gateway's own parts, the admin console
# and the recordings tree, import neither gateway nor each other); gateway and agent share only wire and
# internal helpers. Fails when a package imports what it must not.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
fail=0
check() { # package, forbidden import prefixes...
  local pkg=$1; shift
  [ -d "${pkg#$mod/}" ] || return 0
  local deps
  deps=$(go list -deps "$pkg" 2>/dev/null | grep "^$mod/" || true)
  for bad in "$@"; do
    if grep -qx "$mod/$bad" <<<"$deps"; then
      echo "imports: $pkg must not import $mod/$bad"; fail=1
    fi
  done
}
check "$mod/gateway" agent cmd/rr-gateway cmd/rr-agent
check "$mod/gateway/admin" gateway gateway/download agent recorder cmd/rr-gateway
check "$mod/gateway/web" agent store/sqlite auth/mail cmd/rr-gateway
check "$mod/gateway/download" gateway gateway/admin agent store auth recorder cmd/rr-gateway
check "$mod/agent" gateway store recorder auth cmd/rr-gateway cmd/rr-agent
check "$mod/store" gateway agent auth recorder wire store/sqlite
check "$mod/store/sqlite" gateway agent auth recorder wire store/postgres
check "$mod/store/postgres" gateway agent auth recorder wire store/sqlite
check "$mod/store/sqlstore" gateway agent auth recorder wire store/sqlite store/postgres
check "$mod/store/storetest" gateway agent auth recorder wire store/sqlite store/postgres
check "$mod/wire" gateway agent store auth recorder internal/sshkit internal/config
check "$mod/auth" gateway agent store recorder wire auth/mail
check "$mod/auth/mail" gateway agent store recorder wire
check "$mod/recorder" gateway agent store auth
check "$mod/events" gateway gateway/admin gateway/download agent recorder wire cmd/rr-gateway
check "$mod/evidence" gateway agent auth recorder store/sqlite wire cmd/rr-gateway
check "$mod/internal/termtext" gateway agent store auth recorder wire internal/sshkit internal/config
# The packages that use the store's types and the mailer's interface build
# without cgo and carry neither the SQLite driver nor the SMTP client: those
# belong to store/sqlite and auth/mail, which only the programs (cmd/...)
# and the test harness (gateway/gatewaytest) put together. store/sqlite
# itself builds without cgo too (its Open then fails), so the harness does.
heavy="github.com/mattn/go-sqlite3 github.com/wneessen/go-mail github.com/jackc/pgx/v5"
for pkg in gateway gateway/admin gateway/download auth store events evidence; do
  deps=$(go list -deps "$mod/$pkg")
  for bad in $heavy; do
    if grep -qx "$bad" <<<"$deps"; then
      echo "imports: $mod/$pkg must not depend on $bad"; fail=1
    fi
  done
done
if ! out=$(CGO_ENABLED=0 go build ./gateway/... ./auth/... ./store/... 2>&1); then
  echo "imports: gateway, auth and store must build with CGO_ENABLED=0:"; echo "$out"; fail=1
fi
check "$mod/internal/pgtest" gateway gateway/download agent store auth recorder wire internal/sshkit internal/config internal/termtext
check "$mod/internal/testtool" gateway gateway/download agent store auth recorder wire internal/sshkit internal/config internal/termtext
# gliderlabs/ssh serves tests and the bench only; why the programs stay on
# x/crypto/ssh is in gateway/doc.go.
if go list -deps ./cmd/... | grep -qx 'github.com/gliderlabs/ssh'; then
  echo "imports: the programs (cmd/...) must not import github.com/gliderlabs/ssh"; fail=1
fi
exit $fail
