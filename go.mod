module github.com/rr-gateway/rr

go 1.26.8

require (
	github.com/creack/pty v1.1.24
	github.com/mattn/go-sqlite3 v1.14.53
	go.uber.org/goleak v1.3.0
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/crypto v0.59.0
	golang.org/x/sys v0.50.0
)
