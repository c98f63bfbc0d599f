#!/usr/bin/env bash
# Builds the web console's front end (web/) into gateway/web/dist/app,
# which rr-gateway embeds: npm ci with the lock file's versions (again
# only when the lock file changed), then esbuild. Nothing is fetched at
# run time.
set -euo pipefail
cd "$(dirname "$0")/../web"
if ! command -v npm >/dev/null; then
  echo "web: npm is missing (Debian: apt-get install nodejs npm); the console will say it was not built" >&2
  exit 1
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node build.mjs
echo "web: built gateway/web/dist/app"
