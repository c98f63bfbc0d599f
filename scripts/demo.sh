#!/usr/bin/env bash
# make demo: a gateway and an agent for "demo-host" on 127.0.0.1, state in
# demo/ (kept between runs), in the foreground until Ctrl-C.
# DEMO_DIR and DEMO_BIN (default demo and bin) move the state and the
# programs; WEB_PORT (8443) is the HTTPS listener's port (event intake
# and the web console, https://127.0.0.1:WEB_PORT/). The demo person's web
# password is DEMO_PASSWORD's, else one made on the first run (both kept
# in demo/password, mode 0600, and printed).
# make demo-ha (DEMO_HA=1): the same with two gateways (gw1, gw2: one host
# key) on a throwaway PostgreSQL and one S3 bucket (versitygw), the agent
# holding a tunnel to each; state in demo/ha/. GATEWAY2_PORT (2232) and
# AGENT2_PORT (2233) are gw2's ports, S3_PORT (9020) versitygw's.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/.."
GATEWAY_PORT=${GATEWAY_PORT:-2222}
AGENT_PORT=${AGENT_PORT:-2223}
HTTP_PORT=${HTTP_PORT:-9464}
WEB_PORT=${WEB_PORT:-8443}
ha=${DEMO_HA:-}
GATEWAY2_PORT=${GATEWAY2_PORT:-2232}
AGENT2_PORT=${AGENT2_PORT:-2233}
HTTP2_PORT=${HTTP2_PORT:-9465}
S3_PORT=${S3_PORT:-9020}
d=${DEMO_DIR:-demo${ha:+/ha}}
bin=${DEMO_BIN:-bin}
mkdir -p "$d"
chmod 700 "$d"

# The demo host's passphrase lives in demo/passphrase (mode 0600): the one
# made on the first run, or DEMO_PASSPHRASE's, written there; then this
# script starts anew without DEMO_PASSPHRASE, so that no process it leaves
# running (itself, the gateway, the agent) holds it in its environment.
# It is never an argument either. Only its verifier goes into the config.
if [ -n "${DEMO_PASSPHRASE:-}" ] || [ -n "${DEMO_PASSWORD:-}" ]; then
  if [ -n "${DEMO_PASSPHRASE:-}" ]; then
    (umask 077; rm -f "$d/passphrase"; printf '%s\n' "$DEMO_PASSPHRASE" >"$d/passphrase")
  fi
  if [ -n "${DEMO_PASSWORD:-}" ]; then
    (umask 077; rm -f "$d/password"; printf '%s\n' "$DEMO_PASSWORD" >"$d/password")
  fi
  unset DEMO_PASSPHRASE DEMO_PASSWORD
  exec "$self" "$@"
fi
if [ ! -s "$d/password" ]; then
  (umask 077; od -An -N9 -tx1 /dev/urandom | tr -d ' \n' >"$d/password"; echo >>"$d/password")
fi
chmod 600 "$d/password"
if [ ! -s "$d/passphrase" ]; then
  (umask 077; od -An -N9 -tx1 /dev/urandom | tr -d ' \n' >"$d/passphrase"; echo >>"$d/passphrase")
fi
chmod 600 "$d/passphrase"

# Keys: the person's, the agent's, the gateway's. Kept if present.
"$bin"/rr-gateway keygen "$d/id_ed25519" >/dev/null
"$bin"/rr-gateway keygen "$d/agent_ed25519" >/dev/null

# The HTTPS listener's self-signed pair (for 127.0.0.1 and localhost) and
# each event source's bearer token (mode 0600), kept if present.
if [ ! -s "$d/https.crt" ] || [ ! -s "$d/https.key" ]; then
  (umask 077; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/CN=rr demo" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$d/https.key" -out "$d/https.crt" 2>/dev/null)
fi
mkdir -p "$d/tokens"
chmod 700 "$d/tokens"
for src in falco alertmanager; do
  if [ ! -s "$d/tokens/$src" ]; then
    (umask 077; od -An -N18 -tx1 /dev/urandom | tr -d ' \n' >"$d/tokens/$src"; echo >>"$d/tokens/$src")
  fi
  chmod 600 "$d/tokens/$src"
done

passphrase=$(head -n1 "$d/passphrase")
verifier=$(printf '%s\n' "$passphrase" | "$bin"/rr-gateway passphrase-hash)
password=$(head -n1 "$d/password")
password_hash=$(printf '%s\n' "$password" | "$bin"/rr-gateway passphrase-hash)

# Configs are written on every run so that ports can change.
# gateway_config NAME PEOPLE_PORT AGENT_PORT HTTP_PORT [https] prints one
# gateway's; with DEMO_HA, its store is the PostgreSQL and its recordings
# go to the bucket.
gateway_config() {
  local name=$1 people=$2 agents=$3 http=$4 web=${5:-}
  cat <<YAML
# Written by scripts/demo.sh; see configs/gateway.yaml for every field.
listen: 127.0.0.1:$people
agent_listen: 127.0.0.1:$agents
http_listen: 127.0.0.1:$http
host_key: $d/ssh_host_ed25519_key
database: $d/rr.db
name: $name
address: 127.0.0.1:$people
log: {format: text, level: info}
shutdown_grace: 3s
recordings:
  spool: $d/recordings${ha:+-$name}
YAML
  if [ -n "$ha" ]; then
    cat <<YAML
  s3: {bucket: rec, endpoint: "http://127.0.0.1:$S3_PORT", region: us-east-1, path_style: true,
       access_key_id: rr-demo, secret_access_key_file: $d/s3.secret}
store: {driver: postgres, dsn_file: $d/pg.dsn}
YAML
  fi
  cat <<YAML
demo: true            # allows mail mode file, which prints every code below
mail:
  mode: file          # each code: a .eml file in outbox, and printed below
  from: rr@demo.localhost
  outbox: $d/outbox
people:
  - name: demo
    email: demo@demo.localhost
    role: admin         # sees every session and manages people in rr-admin
    key_files: [$d/id_ed25519.pub]
    password_hash: '$password_hash'   # the web console's login
teams:
  - name: demo_RR
    rapid_response: true
    members: [demo]
    hosts: ["*"]
hosts:
  - name: demo-host
    agent_key_file: $d/agent_ed25519.pub
    passphrase_verifier: '$verifier'
YAML
  [ -n "$web" ] || return 0
  cat <<YAML
https:
  listen: 127.0.0.1:$WEB_PORT
  cert_file: $d/https.crt
  key_file: $d/https.key
events:
  falco_token_file: $d/tokens/falco
  alertmanager_token_file: $d/tokens/alertmanager
YAML
}
if [ -n "$ha" ]; then
  gateway_config gw1 "$GATEWAY_PORT" "$AGENT_PORT" "$HTTP_PORT" https >"$d/gateway.yaml"
  gateway_config gw2 "$GATEWAY2_PORT" "$AGENT2_PORT" "$HTTP2_PORT" >"$d/gateway2.yaml"
  agent_gateways="127.0.0.1:$AGENT_PORT, 127.0.0.1:$AGENT2_PORT"
else
  gateway_config demo-gateway "$GATEWAY_PORT" "$AGENT_PORT" "$HTTP_PORT" https >"$d/gateway.yaml"
  agent_gateways="127.0.0.1:$AGENT_PORT"
fi
fp=$("$bin"/rr-gateway fingerprint -config "$d/gateway.yaml")
cat >"$d/agent.yaml" <<YAML
# Written by scripts/demo.sh; see configs/agent.yaml for every field.
gateways: [$agent_gateways]
gateway_host_key: "$fp"
host: demo-host
key: $d/agent_ed25519
backoff_max: 5s
log: {format: text, level: info}
YAML

pids=()  # the gateways and the agent
infra=() # what they stand on (demo-ha: PostgreSQL, S3), stopped after them
stop() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  if [ ${#infra[@]} -gt 0 ]; then
    kill -TERM "${infra[@]}" 2>/dev/null || true
    wait "${infra[@]}" 2>/dev/null || true
  fi
  echo "demo: stopped"
}
trap stop INT TERM EXIT

if [ -n "$ha" ]; then
  # A throwaway PostgreSQL (its DSN, with a password, in $d/pg.dsn) and a
  # bucket on versitygw; then both gateways, at once, on the empty
  # database (it is migrated once).
  (umask 077; [ -s "$d/s3.secret" ] || { od -An -N18 -tx1 /dev/urandom | tr -d ' \n' >"$d/s3.secret"; echo >>"$d/s3.secret"; })
  mkdir -p "$d/s3/rec"
  rm -f "$d/pg.dsn"
  "$bin"/pgserve -dsn-file "$d/pg.dsn" > >(sed -u 's/^/pg      | /') 2>&1 &
  infra+=($!)
  versitygw=$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")
  # setsid: out of the terminal's group, so that a Ctrl-C stops it only
  # after the gateways (their last checkpoint goes to the bucket).
  ROOT_ACCESS_KEY=rr-demo ROOT_SECRET_KEY=$(head -n1 "$d/s3.secret") \
    setsid "$versitygw" --port "127.0.0.1:$S3_PORT" posix "$d/s3" > >(sed -u 's/^/s3      | /') 2>&1 &
  infra+=($!)
  for _ in $(seq 600); do [ -s "$d/pg.dsn" ] && break; sleep 0.1; done # pgserve writes it once ready
  [ -s "$d/pg.dsn" ] || { echo "demo: PostgreSQL did not start"; exit 1; }
  "$bin"/rr-gateway -config "$d/gateway2.yaml" > >(sed -u 's/^/gw2     | /') 2>&1 &
  pids+=($!)
fi
prefix="gateway | "
[ -n "$ha" ] && prefix="gw1     | "
"$bin"/rr-gateway -config "$d/gateway.yaml" > >(sed -u "s/^/$prefix/") 2>&1 &
pids+=($!)
"$bin"/rr-agent -config "$d/agent.yaml" > >(sed -u 's/^/agent   | /') 2>&1 &
pids+=($!)

if [ -n "$ha" ]; then
  cat <<MSG

  rr demo-ha: gateways gw1 on 127.0.0.1:$GATEWAY_PORT and gw2 on 127.0.0.1:$GATEWAY2_PORT (people;
  agents: $AGENT_PORT and $AGENT2_PORT), one host key, one PostgreSQL, one bucket; the
  agent for demo-host holds a tunnel to each. In other terminals, from $(pwd):

    ssh -t -i $d/id_ed25519 -p $GATEWAY_PORT rr@127.0.0.1 demo-host          (a session through gw1)
    ssh -t -i $d/id_ed25519 -p $GATEWAY2_PORT rr@127.0.0.1 -s rr-admin       (gw2's console: sessions, kill ID)

  The web console (gw1): https://127.0.0.1:$WEB_PORT/  as demo, password  $password

  The passphrase is  $(head -n1 "$d/passphrase")  ; the code is printed below. Both
  gateways count lockouts and mail limits together, in the database.
  Ctrl-C stops everything (the database is thrown away; keys stay in $d).

MSG
  wait
  exit
fi
cat <<MSG

  rr demo: gateway on 127.0.0.1:$GATEWAY_PORT (people) and 127.0.0.1:$AGENT_PORT (agents),
  agent for demo-host connected to it. In another terminal, from $(pwd):

    ssh -t -i $d/id_ed25519 -p $GATEWAY_PORT rr@127.0.0.1 demo-host

  It asks "Passphrase for demo-host:" -- the passphrase is  $passphrase
  (in $d/passphrase; write another there, mode 0600) -- then for the code it
  mailed: the mail is printed below and saved in $d/outbox/.
  (-o UserKnownHostsFile=$d/known_hosts keeps your own known_hosts clean.)
  Other things to try:
    ssh -i $d/id_ed25519 -p $GATEWAY_PORT rr+demo-host@127.0.0.1 uname -a
    ssh -t -i $d/id_ed25519 -p $GATEWAY_PORT rr@127.0.0.1          (host menu)
    ssh -t -i $d/id_ed25519 -p $GATEWAY_PORT rr@127.0.0.1 -s rr-admin   (console: sessions, kill ID, help)
    sftp -i $d/id_ed25519 -P $GATEWAY_PORT rr@127.0.0.1            (ls recordings, get …)
    scp -i $d/id_ed25519 -P $GATEWAY_PORT rr@127.0.0.1:recordings/ID.gz .
      then: gzip -dc ID.gz | openssl enc -d -aes-256-ctr -pbkdf2 -k $passphrase
    curl -s 127.0.0.1:$HTTP_PORT/metrics | grep '^rr_'                (metrics; /healthz)
  A security event: post a Falco alert for demo-host (the mail below has the
  command that responds to it: ssh -t … event:ID; the console lists events):
    curl -s --cacert $d/https.crt -H "Authorization: Bearer \$(cat $d/tokens/falco)" \\
      --data-binary '{"time":"$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)","rule":"Terminal shell in container","priority":"Critical","output":"A shell was spawned in a container (user=root command=bash)","output_fields":{"user.name":"root","proc.cmdline":"bash"},"source":"syscall","tags":["container","shell"],"hostname":"demo-host"}' \\
      https://127.0.0.1:$WEB_PORT/v1/events/falco
  The web console: https://127.0.0.1:$WEB_PORT/  (self-signed: $d/https.crt)
    log in as demo, password  $password  (in $d/password; DEMO_PASSWORD=… sets another)
    then Start session on demo-host: the same passphrase and mailed code as above.
  The gateway's host key: $fp

  Ctrl-C stops both.

MSG
wait
