package gateway

import (
	"os"
	"sync"
)

// DefaultName is a gateway's name when its configuration gives none: the
// machine's host name, else "rr-gateway".
func DefaultName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "rr-gateway"
	}
	return h
}

// done returns a channel closed once wg's count reaches zero, for waits
// that also watch a timer or a context.
func done(wg *sync.WaitGroup) <-chan struct{} {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	return c
}
