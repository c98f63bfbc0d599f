#!/usr/bin/env bash
# make demo: a gateway and an agent for "demo-host" on 127.0.0.1, state in
# demo/ (kept between runs), in the foreground until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
GATEWAY_PORT=${GATEWAY_PORT:-2222}
AGENT_PORT=${AGENT_PORT:-2223}
d=demo
mkdir -p "$d"
chmod 700 "$d"

# Keys: the person's, the agent's, the gateway's. Kept if present.
bin/rr-gateway keygen "$d/id_ed25519" >/dev/null
bin/rr-gateway keygen "$d/agent_ed25519" >/dev/null

# Configs are written on every run so that ports can change.
cat >"$d/gateway.yaml" <<YAML
# Written by scripts/demo.sh; see configs/gateway.yaml for every field.
listen: 127.0.0.1:$GATEWAY_PORT
agent_listen: 127.0.0.1:$AGENT_PORT
host_key: $d/ssh_host_ed25519_key
database: $d/rr.db
name: demo-gateway
log: {format: text, level: info}
shutdown_grace: 3s
people:
  - name: demo
    key_files: [$d/id_ed25519.pub]
    hosts: ["*"]
hosts:
  - name: demo-host
    agent_key_file: $d/agent_ed25519.pub
YAML
fp=$(bin/rr-gateway fingerprint -config "$d/gateway.yaml")
cat >"$d/agent.yaml" <<YAML
# Written by scripts/demo.sh; see configs/agent.yaml for every field.
gateways: [127.0.0.1:$AGENT_PORT]
gateway_host_key: "$fp"
host: demo-host
key: $d/agent_ed25519
backoff_max: 5s
log: {format: text, level: info}
YAML

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  echo "demo: stopped"
}
trap stop INT TERM EXIT

bin/rr-gateway -config "$d/gateway.yaml" > >(sed -u 's/^/gateway | /') 2>&1 &
pids+=($!)
bin/rr-agent -config "$d/agent.yaml" > >(sed -u 's/^/agent   | /') 2>&1 &
pids+=($!)

cat <<MSG

  rr demo: gateway on 127.0.0.1:$GATEWAY_PORT (people) and 127.0.0.1:$AGENT_PORT (agents),
  agent for demo-host connected to it. In another terminal, from $(pwd):

    ssh -t -i $d/id_ed25519 -p $GATEWAY_PORT rr@127.0.0.1 demo-host

  (-o UserKnownHostsFile=$d/known_hosts keeps your own known_hosts clean.)
  Other things to try:
    ssh -i $d/id_ed25519 -p $GATEWAY_PORT rr@127.0.0.1 demo-host -- uname -a
    ssh -t -i $d/id_ed25519 -p $GATEWAY_PORT rr@127.0.0.1          (host menu)
  The gateway's host key: $fp

  Ctrl-C stops both.

MSG
wait
