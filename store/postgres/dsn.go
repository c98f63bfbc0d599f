package postgres

import (
	"fmt"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// InsecureDSN returns a warning when dsn reaches a server on another
// machine without requiring TLS (sslmode other than require, verify-ca or
// verify-full: the password and every row may cross the network in
// clear), else "". A DSN that does not parse is Open's to refuse.
func InsecureDSN(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil || local(cfg.Host) {
		return ""
	}
	clear := cfg.TLSConfig == nil // sslmode=disable
	for _, f := range cfg.Fallbacks {
		clear = clear || f.TLSConfig == nil // allow, prefer: TLS if offered
	}
	if !clear {
		return ""
	}
	return fmt.Sprintf("store: the PostgreSQL server %s is not on this machine and the DSN does not require TLS "+
		"(sslmode=require, verify-ca or verify-full): its password and data may cross the network in clear",
		net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)))
}

// local reports whether host is this machine: a Unix socket's folder, a
// loopback address or localhost.
func local(host string) bool {
	if host == "" || host[0] == '/' || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
