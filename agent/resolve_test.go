package agent_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/agent"
)

// resolver is a DNS name whose answer the test changes, telling each
// lookup on looked.
type resolver struct {
	mu     sync.Mutex
	ips    []string
	err    error
	looked chan struct{}
}

func (r *resolver) set(err error, ips ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ips, r.err = ips, err
}

func (r *resolver) LookupHost(_ context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case r.looked <- struct{}{}:
	default:
	}
	if host != "gw.example.com" {
		return nil, errors.New("no such host")
	}
	return append([]string(nil), r.ips...), r.err
}

// waitGateway waits for gateway's next event in state s; any event of
// another gateway in state not is a failure.
func waitGateway(t *testing.T, states <-chan stateEvent, gateway string, s agent.State, other string, not agent.State) {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case e := <-states:
			if e.gateway == other && e.state == not {
				t.Fatalf("%s went %v (%v) meanwhile", other, not, e.err)
			}
			if e.gateway == gateway && e.state == s {
				return
			}
		case <-timeout:
			t.Fatalf("%s never %v", gateway, s)
		}
	}
}

// TestGatewayNameReresolved: every address a gateway's name resolves to
// gets a tunnel; an address that appears gains one, one that vanishes
// loses its own while the other's never drops, and a name that stops
// resolving keeps the tunnels it has.
func TestGatewayNameReresolved(t *testing.T) {
	hk, key := newSigner(t), newSigner(t)
	gw1 := startGW(t, "127.0.0.1:0", hk, key, nil)
	gw2 := startGW(t, "127.0.0.1:0", hk, key, nil)
	// What the name's addresses reach: the two gateways on loopback.
	route := map[string]string{"192.0.2.1:2223": gw1.addr, "192.0.2.2:2223": gw2.addr}
	res := &resolver{looked: make(chan struct{}, 1)}
	res.set(nil, "192.0.2.1")
	states, _ := runAgent(t, []string{"gw.example.com:2223"}, ssh.FingerprintSHA256(hk.PublicKey()), key, func(c *agent.Config) {
		c.LookupHost = res.LookupHost
		c.ResolveInterval = 20 * time.Millisecond
		c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			to, ok := route[addr]
			if !ok {
				return nil, errors.New("unroutable " + addr)
			}
			return (&net.Dialer{}).DialContext(ctx, network, to)
		}
	})
	waitGateway(t, states, "192.0.2.1:2223", agent.StateConnected, "", 0)
	gw1.conn()

	res.set(nil, "192.0.2.2", "192.0.2.1")
	waitGateway(t, states, "192.0.2.2:2223", agent.StateConnected, "192.0.2.1:2223", agent.StateDisconnected)
	gw2.conn()

	res.set(nil, "192.0.2.2")
	waitGateway(t, states, "192.0.2.1:2223", agent.StateDisconnected, "192.0.2.2:2223", agent.StateDisconnected)

	// DNS trouble: the tunnel stays through several lookups.
	res.set(errors.New("SERVFAIL"))
	for range 3 {
		<-res.looked
	}
	for {
		select {
		case e := <-states:
			t.Fatalf("while the name did not resolve: %s went %v", e.gateway, e.state)
		default:
			return
		}
	}
}

// TestGatewayHostKeysRotation: with two pinned keys, a gateway presenting
// either is accepted.
func TestGatewayHostKeysRotation(t *testing.T) {
	oldKey, newKey, key := newSigner(t), newSigner(t), newSigner(t)
	gw := startGW(t, "127.0.0.1:0", newKey, key, nil)
	states, _ := runAgent(t, []string{gw.addr}, ssh.FingerprintSHA256(oldKey.PublicKey()), key, func(c *agent.Config) {
		c.GatewayHostKeys = []string{ssh.FingerprintSHA256(newKey.PublicKey())}
	})
	waitState(t, states, agent.StateConnected)
}
