package loadtest

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// personAddr is the loopback address person i connects from (all of
// 127.0.0.0/8 is loopback on Linux): the people of a load run come from
// many addresses, as real responders do, so that the gateway's
// per-address cap on logins in progress (before_login.people.per_address)
// sees what it would in production, not 500 logins from one address.
func personAddr(i int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(127, 10, byte(i/250), byte(i%250+1))}
}

// dialPerson dials the gateway from person i's address.
func dialPerson(i int, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{LocalAddr: personAddr(i), Timeout: timeout}
	return d.Dial("tcp", addr)
}

// The junk flood's bounds: silent TCP connections to the people's port
// from one address, and to the agents' port from another, held while
// sessions run and new people log in; the gateway's descriptors are
// limited to floodNoFile meanwhile, far below the junk.
const (
	floodPeopleJunk = 5000
	floodAgentJunk  = 1000
	floodNoFile     = 1024
)

// floodFault floods the gateway with junk connections while the sessions
// of during run and the people of fresh log in and run short sessions;
// during must be live already, and is stopped at the end.
func (w *faultWorld) floodFault(t testing.TB, during, fresh *group, next *int, seed uint64) Fault {
	f := Fault{Name: "junk flood",
		Action: fmt.Sprintf("hold %d silent connections to the people's port from 127.0.0.1 and %d to the agents' port from 127.0.0.3, "+
			"with rr-gateway limited to %d descriptors, while %d sessions run and %d people log in",
			floodPeopleJunk, floodAgentJunk, floodNoFile, during.started, 4),
		Expected: "the gateway refuses the junk past per_address and never runs out of descriptors; every session carries on, every new login succeeds in under a second; no agent drops"}
	from := len(w.gatewayLog())
	pid := w.gw.cmd.Process.Pid
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		f.Observed = "prlimit: " + err.Error()
		return f
	}
	low := unix.Rlimit{Cur: min(floodNoFile, old.Cur), Max: old.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &low, nil); err != nil {
		f.Observed = "prlimit: " + err.Error()
		return f
	}
	defer unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil)

	var junk []net.Conn
	defer func() {
		for _, c := range junk {
			c.Close()
		}
	}()
	refusedEarly := 0
	for i := range floodPeopleJunk + floodAgentJunk {
		addr, src := w.people, "127.0.0.1"
		if i >= floodPeopleJunk {
			addr, src = w.agents, "127.0.0.3"
		}
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", addr)
		if errors.Is(err, syscall.ECONNRESET) {
			refusedEarly++ // refused before the dial returned
			continue
		}
		if err != nil {
			f.Observed = fmt.Sprintf("junk connection %d: %v", i, err)
			return f
		}
		junk = append(junk, c)
	}
	w.launch(fresh, next, 4, w.hosts, 3*time.Second, seed)
	freshDone := waitGroup(fresh, time.Minute)
	close(during.stop)
	duringDone := waitGroup(during, time.Minute)

	fresh.mu.Lock()
	var logins []int64
	okFresh := 0
	for _, r := range fresh.results {
		logins = append(logins, r.LoginMS)
		if r.Err == "" && r.Saw == "exit 0" {
			okFresh++
		}
	}
	fresh.mu.Unlock()
	slices.Sort(logins)
	during.mu.Lock()
	okDuring := count(during.results, func(r *SessionResult) bool { return r.Err == "" && r.Saw == "exit 0" })
	during.mu.Unlock()
	log := w.gatewayLog()[from:]
	emfile := strings.Count(log, "too many open files")
	dropped := strings.Count(log, `msg="agent disconnected"`)
	slowest := int64(-1)
	if len(logins) > 0 {
		slowest = logins[len(logins)-1]
	}
	f.Observed = fmt.Sprintf("%d junk connections held open by the client (%d reset before the dial returned); %d of %d running sessions and %d of 4 new ones ended exit 0 "+
		"(within a minute: %v, %v); new logins took %v ms; %d EMFILE lines; %d agents dropped",
		len(junk), refusedEarly, okDuring, during.started, okFresh, duringDone, freshDone, logins, emfile, dropped)
	f.OK = freshDone && duringDone && okFresh == 4 && okDuring == during.started && slowest >= 0 && slowest < 1000 && emfile == 0 && dropped == 0
	return f
}
