package loadtest

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/procfs"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
)

// burstGuesses and burstSources shape the fault run's flood of password
// guesses: 100 at once, from eight loopback addresses. Each one that is
// checked costs the gateway an argon2id check of 64 MiB.
const burstGuesses, burstSources = 100, 8 // 13 an address: under the per-address cap before login (20)

// burstSlack is what the gateway's peak RSS may exceed its hash memory
// budget by during the burst: the 64 MiB of headroom rr-gateway gives its
// soft memory limit above the budget (the live sessions' memory is in
// it), and 64 MiB for what the Go runtime does not count (the binary,
// SQLite, threads) and a collection running late.
const burstSlack = 128 << 20

// passwordBurst floods the gateway with wrong passwords while sessions
// run, and starts four new sessions (key, passphrase, code) in the middle
// of it: every guess must be refused, the gateway's peak RSS must stay
// under its hash memory budget plus burstSlack, the sessions running must
// carry on and the new ones must log in and run (their results are
// checked with everyone's at the end).
func (w *faultWorld) passwordBurst(g *group, next *int, hosts []string, seed uint64) Fault {
	liveBefore := w.liveNow()
	var wg sync.WaitGroup
	var refused atomic.Int32
	var firstErr atomic.Value
	start := make(chan struct{})
	for i := range burstGuesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := guessPassword(w.people, fmt.Sprintf("127.0.0.%d", 1+i%burstSources), w.persons[0].Name, i); err != nil {
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			refused.Add(1)
		}()
	}
	began := time.Now()
	close(start)
	w.launch(g, next, 4, hosts, 3*time.Second, seed)
	wg.Wait()
	took := time.Since(began)
	ended := waitGroup(g, time.Minute)
	ran := count(g.results, func(r *SessionResult) bool { return r.Saw == "exit 0" })
	liveAfter := w.liveNow()
	hwm, err := vmHWM(w.gw.cmd.Process.Pid)
	if err != nil {
		firstErr.CompareAndSwap(nil, err.Error())
	}
	budget := int64(auth.DefaultHashMemoryBudget)
	busy := strings.Count(w.gatewayLog(), "hash memory budget busy")
	observed := fmt.Sprintf("%d of %d refused in %v (%d for want of budget, never hashed); gateway peak RSS %d MiB (budget %d MiB + %d); "+
		"%d of 4 new sessions ran; live sessions %d before, %d after",
		refused.Load(), burstGuesses, took.Round(100*time.Millisecond), busy, hwm>>20, budget>>20, burstSlack>>20, ran, liveBefore, liveAfter)
	if e, _ := firstErr.Load().(string); e != "" {
		observed += "; first error: " + e
	}
	return Fault{Name: "password burst",
		Action: fmt.Sprintf("%d wrong passwords at once from %d addresses (argon2id, 64 MiB a check), 4 new sessions logging in meanwhile",
			burstGuesses, burstSources),
		Expected: "every guess refused; the gateway's peak RSS under its hash memory budget (512 MiB) + 128 MiB; the sessions running carry on and the new ones log in and run",
		Observed: observed,
		OK: refused.Load() == burstGuesses && err == nil && hwm <= budget+burstSlack && ended && ran == 4 &&
			liveAfter == liveBefore}
}

// guessPassword logs in from the local address from as known (every
// other guess; key-only, so checked against the dummy) or as someone
// unknown, with a wrong password, and wants to be refused.
func guessPassword(addr, from, known string, i int) error {
	name := fmt.Sprintf("guess-%d", i)
	if i%2 == 0 {
		name = known
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 30 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(2 * time.Minute))
	answer := ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
		ans := make([]string, len(qs))
		for j, q := range qs {
			ans[j] = "wrong password " + strconv.Itoa(i)
			if strings.HasPrefix(q, "Username") {
				ans[j] = name
			}
		}
		return ans, nil
	})
	c, _, _, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{User: auth.ServiceLogin,
		Auth: []ssh.AuthMethod{ssh.RetryableAuthMethod(answer, 1)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err == nil {
		c.Close()
		return fmt.Errorf("guess %d (%s from %s) logged in", i, name, from)
	}
	if !strings.Contains(err.Error(), "unable to authenticate") {
		return fmt.Errorf("guess %d from %s: %v, want refused", i, from, err)
	}
	return nil
}

// vmHWM is process pid's peak resident set size in bytes.
func vmHWM(pid int) (int64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0, err
	}
	return int64(st.VmHWM), nil
}
