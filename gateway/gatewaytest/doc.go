// Package gatewaytest starts real gateways and agents in-process on 127.0.0.1
// ports the OS picks, for tests, the way net/http/httptest starts servers:
// everything it starts is stopped by t.Cleanup. It also writes the key and
// known_hosts files the real OpenSSH client needs. Test code only.
package gatewaytest
