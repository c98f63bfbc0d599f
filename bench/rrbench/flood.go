package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// heldConns is how many silent connections the "held per MiB" figure
// opens: well past the default caps, so the gateway it measures runs with
// them lifted (-nocaps), and few enough to open within the handshake
// timeout (10 s).
const heldConns = 5000

// junkFlood: what a connection that never logs in costs the gateway, and
// how long a real person's login takes while cfg.junk such connections
// are held by junk processes from two addresses.
func (r *results) junkFlood(cfg config, dir string) error {
	if cfg.junk <= 0 {
		return nil
	}
	if err := r.heldPerMiB(filepath.Join(dir, "held")); err != nil {
		return err
	}
	return r.loginUnderFlood(cfg, filepath.Join(dir, "flood"))
}

// heldPerMiB: silent connections held per MiB of the gateway's RSS.
func (r *results) heldPerMiB(dir string) error {
	gw, err := startChild("gateway", filepath.Join(dir, "gateway"), "-people", "1", "-hosts", "0", "-cheap", "-nocaps")
	if err != nil {
		return err
	}
	defer gw.stop()
	before, err := gw.stats(true)
	if err != nil {
		return err
	}
	logf("memory: %d silent connections held by the gateway (caps lifted)", heldConns)
	start := time.Now()
	j, err := startChild("junk", filepath.Join(dir, "junk"), "-addr", gw.ready["people"], "-from", "127.0.0.1", "-n", strconv.Itoa(heldConns))
	if err != nil {
		return err
	}
	defer j.stop()
	if j.ready["open"] != strconv.Itoa(heldConns) {
		return fmt.Errorf("junk: %v of %d connections open", j.ready, heldConns)
	}
	time.Sleep(time.Second) // every connection accepted, its version sent
	after, err := gw.stats(true)
	if err != nil {
		return err
	}
	if since := time.Since(start); since > 9*time.Second {
		return fmt.Errorf("the held connections took %v to open: past the handshake timeout", since)
	}
	logf("  RSS %d → %d KiB, heap in use %d → %d KiB, goroutines %d → %d", before.RSSKiB, after.RSSKiB,
		before.HeapInuse>>10, after.HeapInuse>>10, before.Goroutines, after.Goroutines)
	kib := float64(after.RSSKiB-before.RSSKiB) / heldConns
	r.add(figure{Name: "connections held per MiB (silent, not logged in)", Value: 1024 / kib, Unit: "/MiB",
		Note: fmt.Sprintf("%d silent TCP connections to the people's port (caps lifted), VmRSS after GC + FreeOSMemory before and after: %.1f KiB each "+
			"(%.1f KiB heap, %.1f goroutines); at the default cap of 1000 connections not logged in the people's port holds at most %.0f MiB",
			heldConns, kib, float64(int64(after.HeapInuse)-int64(before.HeapInuse))/1024/heldConns,
			float64(after.Goroutines-before.Goroutines)/heldConns, kib*1000/1024)})
	return nil
}

// loginUnderFlood: a real ssh login from 127.0.0.2 (key, team, session,
// the host list), timed alone and then while two junk processes hold
// cfg.junk silent connections from 127.0.0.1 and 127.0.0.3 (a process
// may hold 20 000 descriptors here).
func (r *results) loginUnderFlood(cfg config, dir string) error {
	if _, err := exec.LookPath("ssh"); err != nil {
		r.add(figure{Name: "login time of a real person during a junk flood", Skipped: true, Note: "skipped: no ssh client"})
		return nil
	}
	gw, ag, err := startStack(dir, 1, true, recordSpool, cfg.shell)
	if err != nil {
		return err
	}
	defer gw.stop()
	defer ag.stop()
	login, err := realLogin(dir, gw.ready["people"])
	if err != nil {
		return err
	}
	const logins = 5
	timeLogins := func() ([]time.Duration, error) {
		var ds []time.Duration
		for range logins {
			d, err := login()
			if err != nil {
				return nil, err
			}
			ds = append(ds, d)
		}
		slices.Sort(ds)
		return ds, nil
	}
	logf("login: %d real ssh logins from 127.0.0.2, no flood", logins)
	alone, err := timeLogins()
	if err != nil {
		return err
	}
	before, err := gw.stats(true)
	if err != nil {
		return err
	}
	logf("login: %d junk connections from 127.0.0.1 and 127.0.0.3", cfg.junk)
	var held []string
	for i, from := range []string{"127.0.0.1", "127.0.0.3"} {
		n := cfg.junk / 2
		if i == 0 {
			n = cfg.junk - n
		}
		j, err := startChild("junk", filepath.Join(dir, "junk-"+from), "-addr", gw.ready["people"], "-from", from, "-n", strconv.Itoa(n))
		if err != nil {
			return err
		}
		defer j.stop()
		held = append(held, fmt.Sprintf("%s: %s dialled, %s reset before the dial returned", from, j.ready["open"], j.ready["reset"]))
	}
	during, err := timeLogins()
	if err != nil {
		return err
	}
	after, err := gw.stats(true)
	if err != nil {
		return err
	}
	logf("  alone %v, during the flood %v", alone, during)
	r.add(figure{Name: fmt.Sprintf("login time of a real person while %d junk connections are open", cfg.junk),
		Value: ms(during[len(during)/2]), Unit: "ms", Baseline: "the same login, no flood", BaselineValue: ms(alone[len(alone)/2]),
		Target: "<= 1000 ms", TargetValue: 1000, Lower: true,
		Note: fmt.Sprintf("median of %d runs of the real ssh from 127.0.0.2 (key, team, the host list), slowest %.0f ms (alone %.0f ms); "+
			"junk: silent TCP connections dialled and held by two processes (%s); the gateway keeps per_address (20) of each address "+
			"and resets the rest; its RSS (after GC) %d KiB before the flood, %d KiB during it, %d goroutines",
			logins, ms(during[len(during)-1]), ms(alone[len(alone)-1]), strings.Join(held, "; "), before.RSSKiB, after.RSSKiB, after.Goroutines)})
	return nil
}

// realLogin writes p0's key and the gateway's known_hosts under dir and
// returns what runs `ssh -b 127.0.0.2 rr@127.0.0.1` once (no terminal: the
// gateway lists the hosts) and times it.
func realLogin(dir, addr string) (func() (time.Duration, error), error) {
	key := filepath.Join(dir, "p0_key")
	if err := writeKey(key, "person-"+personName(0)); err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	known := filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(signer(gatewayKeyName).PublicKey()))
	if err := os.WriteFile(known, []byte(line), 0o600); err != nil {
		return nil, err
	}
	args := []string{"-F", "none", "-b", "127.0.0.2", "-p", port, "-i", key, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + known, "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
		"-o", "ConnectTimeout=30", "rr@" + host}
	return func() (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		t0 := time.Now()
		out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput()
		d := time.Since(t0)
		if err != nil || !strings.Contains(string(out), sessionHost) {
			return 0, fmt.Errorf("ssh %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return d, nil
	}, nil
}

// junkRole dials n silent TCP connections to addr from the address from
// and holds them until its stdin closes. A connection the gateway resets
// before the dial returns counts as reset.
func junkRole(ctl *control, addr, from string, n int) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 30 * time.Second}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	reset := 0
	for range n {
		c, err := d.Dial("tcp", addr)
		if errors.Is(err, syscall.ECONNRESET) {
			reset++
			continue
		}
		if err != nil {
			return fmt.Errorf("after %d connections: %w", len(conns), err)
		}
		conns = append(conns, c)
	}
	ctl.send("ready", map[string]string{"open": strconv.Itoa(len(conns) + reset), "reset": strconv.Itoa(reset)})
	ctl.serve(nil)
	return nil
}
