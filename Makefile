# rr: the two commands a newcomer runs are `make demo` and `make test`.
GO           ?= go
GATEWAY_PORT ?= 2222
AGENT_PORT   ?= 2223
WEB_PORT     ?= 8443
GATEWAY2_PORT ?= 2232
AGENT2_PORT   ?= 2233
export CGO_ENABLED = 1

.PHONY: all build web demo demo-ha test unit e2e interop lint bench load load-faults clean

all: build

build: web
	$(GO) build -o bin/ ./cmd/rr-gateway ./cmd/rr-agent ./cmd/rr

# The web console's front end: npm ci (the locked versions) and esbuild
# into gateway/web/dist/app, which rr-gateway embeds. Without it, go build
# still works and the console serves a page saying to run make build.
web:
	scripts/web.sh

# Build, then run a gateway and an agent for "demo-host" on this machine
# until Ctrl-C. State (keys, database, configs) lives in demo/.
demo: build
	GATEWAY_PORT=$(GATEWAY_PORT) AGENT_PORT=$(AGENT_PORT) WEB_PORT=$(WEB_PORT) scripts/demo.sh

# The same with two gateways on one throwaway PostgreSQL and one S3 bucket
# (versitygw), the agent tunnelled to both (docs/ha.md). State: demo/ha/.
demo-ha: build
	$(GO) build -o bin/ ./internal/pgtest/pgserve
	DEMO_HA=1 GATEWAY_PORT=$(GATEWAY_PORT) AGENT_PORT=$(AGENT_PORT) WEB_PORT=$(WEB_PORT) \
		GATEWAY2_PORT=$(GATEWAY2_PORT) AGENT2_PORT=$(AGENT2_PORT) scripts/demo.sh

# The whole suite: lint, unit tests under -race, end-to-end tests with the
# real OpenSSH client, then the interop suite with every SSH client from
# Debian (all installed when missing). .ci/run calls this.
test:
	scripts/test.sh

unit:
	scripts/test.sh unit

e2e:
	scripts/test.sh e2e

# The interop suite alone (part of make test): OpenSSH, PuTTY, Dropbear,
# paramiko, asyncssh, rclone, lftp, curl and sshfs; prints the matrix.
interop:
	scripts/test.sh interop

# gofmt, go vet, staticcheck (installed once), the direction of imports.
lint:
	scripts/test.sh lint

# Benchmarks as ratios against baselines measured in the same run
# (bench/results.md, bench/results.json).
bench:
	scripts/bench.sh

# Load and soak (not part of make test): 500 concurrent sessions, the same
# with 50 under -race, the fault run, then two gateways on PostgreSQL (and
# PostgreSQL restarted under load); every recording checked byte for byte
# (bench/load-results.md, bench/load-results.json).
load:
	scripts/load.sh

load-faults:
	scripts/load.sh faults

clean:
	rm -rf bin
