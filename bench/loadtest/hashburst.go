package loadtest

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
)

// burstGuesses and burstSources shape the fault run's flood of password
// guesses: 88 at once, from eight loopback addresses (11 each, under the
// per-address cap before login). With the new sessions' logins they stay
// under max_startups' start (100): past it the gateway drops a share of
// every address's new connections at random, as sshd does, people's
// included; the e2e test of the budget holds 100 alone. Each one that is
// checked costs the gateway an argon2id check of 64 MiB.
const burstGuesses, burstSources = 88, 8

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
	var refused, dropped atomic.Int32
	var firstErr atomic.Value
	start := make(chan struct{})
	for i := range burstGuesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			name := fmt.Sprintf("guess-%d", i) // half unknown, half a person's
			if i%2 == 0 {
				name = w.persons[0].Name
			}
			err := gatewaytest.WrongPassword(w.people, fmt.Sprintf("127.0.0.%d", 1+i%burstSources), name, i)
			switch {
			case err != nil && strings.Contains(err.Error(), "connection reset by peer"):
				// Past max_startups' start (100 waiting to log in, with the
				// new sessions' logins), the gateway drops a share of new
				// connections at random before any hash: refused too.
				dropped.Add(1)
				refused.Add(1)
			case err != nil:
				firstErr.CompareAndSwap(nil, err.Error())
			default:
				refused.Add(1)
			}
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
	hwm, err := gatewaytest.PeakRSS(w.gw.cmd.Process.Pid)
	if err != nil {
		firstErr.CompareAndSwap(nil, err.Error())
	}
	budget := int64(auth.DefaultHashMemoryBudget)
	busy := strings.Count(w.gatewayLog(), "hash memory budget busy")
	observed := fmt.Sprintf("%d of %d refused in %v (%d for want of budget and %d dropped by max_startups, never hashed); gateway peak RSS %d MiB (budget %d MiB + %d); "+
		"%d of 4 new sessions ran; live sessions %d before, %d after",
		refused.Load(), burstGuesses, took.Round(100*time.Millisecond), busy, dropped.Load(), hwm>>20, budget>>20, burstSlack>>20, ran, liveBefore, liveAfter)
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
