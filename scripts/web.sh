#!/usr/bin/env bash
# Builds the web console's front end (web/) into gateway/web/dist/app,
# which rr-gateway embeds: npm ci with the lock file's versions (again
# only when the lock file changed), then esbuild. Installs Debian's nodejs
# and npm when missing. Nothing is fetched at run time.
set -euo pipefail
cd "$(dirname "$0")/../web"
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "web: installing nodejs and npm (apt-get)"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node build.mjs
echo "web: built gateway/web/dist/app"
