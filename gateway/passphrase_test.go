package gateway_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/store"
)

// TestOnePassphraseOneSession: the passphrase given at login (rr+HOST@)
// opens one session, however many start at the same instant on the
// connection: of 10 exec channels started together exactly one runs, and
// the others, without a terminal to ask on, are told the passphrase must
// be asked anew.
func TestOnePassphraseOneSession(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	c := e.dial(t, "rr+web-01", e.alice.Signer)
	const n = 10 // the most one connection may run at once
	sessions := make([]*ssh.Session, n)
	for i := range sessions {
		sessions[i] = newSession(t, c) // channels open, nothing started yet
	}
	type result struct {
		out, errOut string
		status      int
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out, errb bytes.Buffer
			s.Stdout, s.Stderr = &out, &errb
			<-start
			err := s.Run("echo ran")
			results[i] = result{out.String(), errb.String(), exitStatus(err)}
		}()
	}
	close(start)
	wg.Wait()
	ran, askAnew := 0, 0
	for _, r := range results {
		switch {
		case r.out == "ran\n" && r.status == 0:
			ran++
		case r.out == "" && r.status == 1 && strings.Contains(r.errOut, "the passphrase for web-01 given at login was used by this connection's first session"):
			askAnew++
		default:
			t.Errorf("a session ended neither way: %+v", r)
		}
	}
	if ran != 1 || askAnew != n-1 {
		t.Fatalf("%d of %d sessions started at once ran on one passphrase (%d told to ask anew), want exactly 1", ran, n, askAnew)
	}
	rows, err := e.gw.Store.Sessions(context.Background(), store.SessionFilter{})
	if err != nil || len(rows) != 1 {
		t.Fatalf("session rows: %d (%v), want 1", len(rows), err)
	}
}
