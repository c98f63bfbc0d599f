# need_postgres installs Debian's postgresql when its server programs are
# missing: store/postgres's tests, make demo-ha, the load and bench runs
# start a throwaway cluster of their own (internal/pgtest), never the
# package's. Sourced by scripts/test.sh, bench.sh and load.sh.
need_postgres() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && return 0
  command -v initdb >/dev/null && return 0
  echo "installing postgresql (apt-get)"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
}
