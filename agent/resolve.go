package agent

import (
	"context"
	"net"
	"slices"
	"time"
)

// Run holds a tunnel to every address the gateways resolve to until ctx
// is done, resolving them again every ResolveInterval: an address that
// appears gains a tunnel, one that vanishes loses its own (its sessions
// end). Then it closes the connections, ends every session (its process
// group and session get SIGHUP, then SIGKILL after KillGrace), waits for
// every goroutine it started, and returns nil: stopping is not a failure.
// Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	running := map[string]*runningTunnel{}
	defer func() {
		for _, r := range running {
			r.stop()
		}
	}()
	tick := time.NewTicker(a.cfg.ResolveInterval)
	defer tick.Stop()
	for {
		want := a.resolve(ctx, running)
		for addr, from := range want {
			if running[addr] == nil {
				running[addr] = a.startTunnel(ctx, addr, from)
			}
		}
		for addr, r := range running {
			if _, ok := want[addr]; !ok {
				r.log("gateway address no longer resolves; its tunnel is closed")
				r.stop()
				delete(running, addr)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// runningTunnel is one address's tunnel and how to stop it.
type runningTunnel struct {
	from   string // the configured gateway it was resolved from
	t      *tunnel
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *runningTunnel) stop() {
	r.cancel()
	<-r.done
}

func (r *runningTunnel) log(msg string) { r.t.log.Info(msg, "from", r.from) }

func (a *Agent) startTunnel(ctx context.Context, addr, from string) *runningTunnel {
	ctx, cancel := context.WithCancel(ctx)
	log := a.log.With("gateway", addr)
	if addr != from {
		log = log.With("resolved_from", from)
	}
	r := &runningTunnel{from: from, cancel: cancel, done: make(chan struct{}),
		t: &tunnel{a: a, addr: addr, log: log, b: backoff{min: a.cfg.BackoffMin, max: a.cfg.BackoffMax}}}
	go func() {
		defer close(r.done)
		r.t.run(ctx)
	}()
	return r
}

// resolve returns the addresses to hold a tunnel to, each with the
// configured gateway it comes from. A gateway given by IP address is
// itself; a name is every address it resolves to. A name that fails to
// resolve keeps the tunnels it had (DNS trouble is no reason to drop a
// working tunnel), or, having none, is dialled by name (the dial
// resolves it and backs off as for any failure).
func (a *Agent) resolve(ctx context.Context, running map[string]*runningTunnel) map[string]string {
	want := map[string]string{}
	for _, gw := range a.cfg.Gateways {
		host, port, _ := net.SplitHostPort(gw) // checked by New
		if net.ParseIP(host) != nil {
			want[gw] = gw
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ips, err := a.cfg.LookupHost(lctx, host)
		cancel()
		if err != nil || len(ips) == 0 {
			if ctx.Err() == nil {
				a.log.Warn("gateway name does not resolve; keeping its tunnels", "gateway", gw, "err", err)
			}
			kept := false
			for addr, r := range running {
				if r.from == gw {
					want[addr], kept = gw, true
				}
			}
			if !kept {
				want[gw] = gw
			}
			continue
		}
		slices.Sort(ips)
		for _, ip := range ips {
			want[net.JoinHostPort(ip, port)] = gw
		}
	}
	return want
}
