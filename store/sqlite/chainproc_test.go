package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/storetest"
)

// TestAuditChainChild is not a test on its own: run by the tests below
// as another process (RR_CHAIN_DB set), it appends RR_CHAIN_N events (0:
// until killed) to the database, printing each seq.
func TestAuditChainChild(t *testing.T) {
	path := os.Getenv("RR_CHAIN_DB")
	if path == "" {
		t.Skip("run by TestAuditChainTwoProcesses and TestAuditChainSIGKILL")
	}
	n, _ := strconv.Atoi(os.Getenv("RR_CHAIN_N"))
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; n == 0 || i < n; i++ {
		e, err := s.AppendAudit(context.Background(), store.AuditEvent{Actor: "child", Action: "x", Detail: strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(e.Seq)
	}
}

func child(t *testing.T, path string, n int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestAuditChainChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "RR_CHAIN_DB="+path, "RR_CHAIN_N="+strconv.Itoa(n))
	return cmd
}

// Two processes appending to one database file (WAL) at once keep one
// unbroken chain.
func TestAuditChainTwoProcesses(t *testing.T) {
	s, path := open(t)
	const each = 300
	cmd := child(t, path, each)
	var out []byte
	var cerr error
	var wg sync.WaitGroup
	wg.Go(func() { out, cerr = cmd.CombinedOutput() })
	for i := range each {
		if err := s.Audit(context.Background(), store.AuditEvent{Actor: "parent", Action: "x", Detail: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if cerr != nil {
		t.Fatalf("child: %v\n%s", cerr, out)
	}
	if n, broken := storetest.VerifyChain(t, s); n != 2*each || broken != 0 {
		t.Fatalf("%d events, broken at %d", n, broken)
	}
}

// A process killed with SIGKILL while it appends leaves a chain that is
// whole up to its last committed event, and the next append carries on.
func TestAuditChainSIGKILL(t *testing.T) {
	s, path := open(t)
	cmd := child(t, path, 0)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for i := 0; i < 200 && sc.Scan(); i++ { // it is appending as fast as it can
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if err := s.Audit(context.Background(), store.AuditEvent{Actor: "after", Action: "x"}); err != nil {
		t.Fatal(err)
	}
	n, broken := storetest.VerifyChain(t, s)
	if n < 201 || broken != 0 {
		t.Fatalf("%d events, broken at %d", n, broken)
	}
}
