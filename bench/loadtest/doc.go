// Package loadtest is rr's load and soak harness (issue 6): many
// concurrent Go SSH client sessions through a gateway to several agents,
// each pushing random data (exec cat) or typing commands on a PTY, then
// every session's recording decrypted and compared byte for byte with
// what its client sent and received; and a fault run against the real
// rr-gateway and rr-agent processes, mailpit and versitygw (agent killed,
// gateway SIGKILLed and restarted, SMTP and S3 servers stopped).
//
// The entry points are tests skipped unless RR_LOAD=1 (scripts/load.sh,
// `make load`); TestHarness, always on, runs five sessions for three
// seconds to keep the harness and its comparison honest. Results go to
// RR_LOAD_RESULTS.md and RR_LOAD_RESULTS.json (bench/load-results.*
// from the script), one entry per run name, so a later run can be
// compared with an earlier one.
package loadtest
