package gateway

import "os"

// DefaultName is a gateway's name when its configuration gives none: the
// machine's host name, else "rr-gateway".
func DefaultName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "rr-gateway"
	}
	return h
}
