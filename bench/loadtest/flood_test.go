package loadtest

import (
	"testing"
	"time"
)

// TestFloodFault is the fault run's junk flood alone, on a smaller world
// (RR_LOAD=1 go test ./bench/loadtest -run TestFloodFault); make load
// runs it inside TestFaults.
func TestFloodFault(t *testing.T) {
	need(t)
	RaiseFDLimit()
	w := startFaultWorld(t, 8, 2)
	next := 0
	during, fresh := &group{name: "flood-during"}, &group{name: "flood-fresh"}
	w.launch(during, &next, 4, w.hosts, 0, 1)
	if !w.waitLive(4, time.Minute) {
		t.Fatalf("only %d of 4 sessions started\n%s", w.liveNow(), tail(w.gatewayLog(), 40))
	}
	f := w.floodFault(t, during, fresh, &next, 1)
	t.Logf("%s: %s → %s", f.Name, f.Action, f.Observed)
	if !f.OK {
		t.Errorf("fault failed; gateway log tail:\n%s", tail(w.gatewayLog(), 40))
	}
}
