package gateway

import "os"

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "rr-gateway"
	}
	return h
}
