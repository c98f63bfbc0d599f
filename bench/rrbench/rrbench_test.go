package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/gateway"
)

// TestMain lets the test binary play the roles the driver starts.
func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		if err := runRole(role, os.Args[1:]); err != nil {
			os.Stderr.WriteString("rrbench " + role + ": " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestQuick runs every figure at tiny sizes: the program works end to
// end and writes both results files.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and PTY shells")
	}
	out := t.TempDir()
	gobench := filepath.Join(out, "gobench.txt")
	os.WriteFile(gobench, []byte(`BenchmarkAESCTR-2   	  100	  1000 ns/op	 2000.00 MB/s	 0 B/op	 0 allocs/op
BenchmarkRecorderLog-2   	  100	  1000 ns/op	 500.00 MB/s	 0 B/op	 3 allocs/op
BenchmarkRecorderLog-2   	  100	  1000 ns/op	 700.00 MB/s	 0 B/op	 3 allocs/op
BenchmarkRecorderLog-2   	  100	  1000 ns/op	 600.00 MB/s	 0 B/op	 3 allocs/op
`), 0o644)
	cfg := config{bulk: 2 << 20, memRuns: 2, sessions: 4, agents: 4, keystrokes: 20, setups: 3, workers: 2,
		gobench: gobench, out: out, shell: "/bin/sh"}
	if err := run(cfg); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Figures      []figure `json:"figures"`
		GoBenchmarks []figure `json:"go_benchmarks"`
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Figures) < 12 {
		t.Errorf("%d figures, want at least 12", len(res.Figures))
	}
	// At these sizes (4 sessions, 4 agents) a memory delta is within a
	// page or two of noise and may come out 0: memory figures need only
	// be there.
	rss := 0
	for _, f := range res.Figures {
		if strings.Contains(f.Name, "RSS") {
			rss++
			continue
		}
		if !f.Skipped && f.Value == 0 && !strings.Contains(f.Name, "heap") {
			t.Errorf("figure %q is 0", f.Name)
		}
	}
	if rss < 3 {
		t.Errorf("%d RSS figures, want the sessions', the tunnels' and the web sessions'", rss)
	}
	if len(res.GoBenchmarks) != 1 || res.GoBenchmarks[0].Value != 600 || res.GoBenchmarks[0].Ratio != 0.3 {
		t.Errorf("go benchmarks: %+v, want RecorderLog's median 600 MB/s, ratio 0.3", res.GoBenchmarks)
	}
	floors := 0
	for _, f := range res.Figures {
		if strings.HasPrefix(f.Baseline, "bare x/crypto/ssh server") {
			floors++
			// Two rounds: the figure and its floor each have a spread.
			if f.Spread == "" || f.BaselineSpread == "" || !strings.Contains(f.Note, "2 rounds") {
				t.Errorf("memory figure %q: spread %q, floor's %q, note %q; want both spreads over 2 rounds", f.Name, f.Spread, f.BaselineSpread, f.Note)
			}
		}
	}
	watch := 0
	for _, f := range res.Figures {
		if strings.Contains(f.Name, "watched by one watcher") || strings.Contains(f.Name, "watcher behind the person") {
			watch++
		}
	}
	if watch != 2 {
		t.Errorf("%d watch figures, want 2 (watched bulk, the watcher's lag)", watch)
	}
	if floors != 2 {
		t.Errorf("%d memory figures against the bare x/crypto/ssh floor, want 2", floors)
	}
	md, _ := os.ReadFile(filepath.Join(out, "results.md"))
	if !strings.Contains(string(md), "| figure | value | baseline | ratio | target | met? |") {
		t.Errorf("results.md:\n%s", md)
	}
}

// TestProcFigures: what a role and the machine report about themselves is
// read from /proc, not left at zero.
func TestProcFigures(t *testing.T) {
	st := readStats(false)
	if st.RSSKiB <= 0 || st.ReadCalls <= 0 {
		t.Errorf("stats %+v: RSS and read calls should be positive", st)
	}
	m := thisMachine()
	if m.CPU == "" || m.MemKiB <= 0 {
		t.Errorf("machine %+v: CPU model and memory should be known", m)
	}
}

// TestRunPercentiles: samples split into runs in the order they came, the
// last run taking what does not divide.
func TestRunPercentiles(t *testing.T) {
	var d []time.Duration
	for i := range 10 {
		d = append(d, time.Duration(i+1))
	}
	got := runPercentiles(d, 3)
	want := []percentiles{{2, 3}, {5, 6}, {9, 10}} // 1-3, 4-6, 7-10
	if !slices.Equal(got, want) {
		t.Errorf("runPercentiles: %v, want %v", got, want)
	}
	if got := runPercentiles(d[:2], 5); len(got) != 2 {
		t.Errorf("2 samples in 5 runs: %v, want 2 runs of one", got)
	}
}

// TestGatewayProcs: -gateway-procs sets GOMAXPROCS in the gateway's
// process and nowhere else.
func TestGatewayProcs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	defer func(n int) { gatewayProcs = n }(gatewayProcs)
	gatewayProcs = 1
	dir := t.TempDir()
	procs := func(role string, args ...string) int {
		c, err := startChild(role, filepath.Join(dir, role), args...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.stop()
		st, err := c.stats(false)
		if err != nil {
			t.Fatal(err)
		}
		return st.Procs
	}
	if n := procs("gateway", "-people", "0", "-hosts", "0", "-cheap"); n != 1 {
		t.Errorf("gateway at GOMAXPROCS %d, want 1", n)
	}
	if n, want := procs("bare"), runtime.GOMAXPROCS(0); n != want {
		t.Errorf("bare server at GOMAXPROCS %d, want the default %d", n, want)
	}
}

// TestTCPRelay: the plain TCP relay (a process of its own) carries bytes
// both ways and passes each side's end of input on, so that the keystroke
// floor it gives is a relay's.
func TestTCPRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // upstream: reads to the end, answers with the count, closes
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d", n)
	}()
	tr, err := startChild("tcprelay", filepath.Join(t.TempDir(), "tcprelay"), "-upstream", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.stop()
	c, err := net.Dial("tcp", tr.ready["addr"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	const size = 1 << 20
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != fmt.Sprintf("got %d", size) {
		t.Fatalf("through the relay: %q, %v; want %q and the end", got, err, fmt.Sprintf("got %d", size))
	}
}

// TestOnehopRefusesStrangers: the one-hop endpoint (gliderlabs/ssh, which
// lets everyone in unless told otherwise) takes only a benchmark person's
// own key: not "none", not another key, not another person's.
func TestOnehopRefusesStrangers(t *testing.T) {
	a, err := agent.New(agent.Config{Gateways: []string{"127.0.0.1:9"}, GatewayHostKey: "SHA256:unused",
		Host: sessionHost, Signer: agentKey(sessionHost), Shell: "/bin/sh"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := onehopServer(t.Context(), a)
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(ln) }()
	defer func() { srv.Close(); <-served }()

	stranger := signer("stranger")
	for _, tt := range []struct {
		user string
		auth []ssh.AuthMethod
		ok   bool
	}{
		{"p1", nil, false},
		{"p1", []ssh.AuthMethod{ssh.PublicKeys(stranger)}, false},
		{"p1", []ssh.AuthMethod{ssh.PublicKeys(personKey(2))}, false},
		{"p1", []ssh.AuthMethod{ssh.Password("x")}, false},
		{"p1", []ssh.AuthMethod{ssh.PublicKeys(personKey(1))}, true},
		{"bridge", []ssh.AuthMethod{ssh.PublicKeys(personKey(0))}, true},
	} {
		c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: tt.user, Auth: tt.auth,
			HostKeyCallback: ssh.FixedHostKey(signer(onehopKeyName).PublicKey())})
		if err == nil {
			c.Close()
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s with %d methods: login error %v, want success %v", tt.user, len(tt.auth), err, tt.ok)
		}
	}
}

// The evidence's Go benchmarks become figures: the chain's cost per event
// against the set-up target, and verify-audit's time on a million events.
func TestEvidenceFigures(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gobench.txt")
	os.WriteFile(p, []byte(`BenchmarkAuditChained-2   	   13491	     80000 ns/op	    2415 B/op	      63 allocs/op
BenchmarkAuditUnchained-2   	   40352	     45000 ns/op	     664 B/op	      14 allocs/op
BenchmarkVerifyAudit1M-2   	       1	7500000000 ns/op	  43.85 MB/s	      7500 ns/event
`), 0o600)
	var r results
	if err := r.goBenchmarks(p); err != nil {
		t.Fatal(err)
	}
	if len(r.gobench) != 2 || r.gobench[0].Value != 80 || r.gobench[0].BaselineValue != 45 || !*r.gobench[0].Met ||
		r.gobench[1].Value != 7.5 {
		t.Fatalf("%+v", r.gobench)
	}
}

// The bulk target's floor: with sshd, the gateway with recording off, the
// naive bridge and the gateway whose recorder only encrypts and hashes are
// set against the same ssh -J runs as the gateway.
func TestBulkFloorFigures(t *testing.T) {
	run := func(mbps float64) []transfer {
		return []transfer{{bytes: int64(mbps * 1e6), elapsed: time.Second, cpuNs: 1e9}}
	}
	// one hop, gateway, gateway recording off, bridge, gateway recording's floor, direct, ssh -J, ssh -J default cipher
	runs := [][]transfer{run(500), run(250), run(340), run(310), run(300), run(550), run(320), run(290)}
	var r results
	r.bulkFigures(config{bulk: 1 << 20}, "host→person", runs, true, "")
	want := map[string][2]float64{
		"bulk host→person, through gateway, recording off (reference: the relay without the recording)":                  {340, 320},
		"bulk host→person, naive two-hop bridge (reference)":                                                             {310, 320},
		"bulk host→person, through gateway, recording only encrypted and hashed (reference: the floor of any recording)": {300, 320},
	}
	for _, f := range r.figures {
		w, ok := want[f.Name]
		if !ok {
			continue
		}
		delete(want, f.Name)
		if f.Value != w[0] || f.BaselineValue != w[1] || f.Baseline != "ssh -J" {
			t.Errorf("%q: %v against %q %v, want %v against ssh -J %v", f.Name, f.Value, f.Baseline, f.BaselineValue, w[0], w[1])
		}
	}
	if len(want) != 0 {
		t.Errorf("missing figures: %v", want)
	}
	// Without sshd the floor still stands, beside the gateway.
	var noSSH results
	noSSH.bulkFigures(config{bulk: 1 << 20}, "host→person", runs[:5], false, "no sshd")
	if !slices.ContainsFunc(noSSH.figures, func(f figure) bool {
		return strings.Contains(f.Name, "the floor of any recording") && f.Value == 300 && f.BaselineValue == 250
	}) {
		t.Errorf("without sshd, no floor figure against the gateway: %+v", noSSH.figures)
	}
}

// The file's digest alone is a figure beside AES-CTR, with its cost per
// byte.
func TestSHA256Figure(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gobench.txt")
	os.WriteFile(p, []byte(`BenchmarkAESCTR-2   	  100	  1000 ns/op	 8000.00 MB/s	 0 B/op	 0 allocs/op
BenchmarkSHA256-2   	  100	  1000 ns/op	 2000.00 MB/s	 0 B/op	 0 allocs/op
`), 0o600)
	var r results
	if err := r.goBenchmarks(p); err != nil {
		t.Fatal(err)
	}
	if len(r.gobench) != 1 || r.gobench[0].Value != 2000 || r.gobench[0].Ratio != 0.25 ||
		!strings.HasPrefix(r.gobench[0].Note, "0.50 ns/B") {
		t.Fatalf("%+v", r.gobench)
	}
}

// The floor's recorder does the work it stands for: every byte encrypted
// with AES-256-CTR and the ciphertext hashed, across its buffer's bounds.
func TestFloorRecorder(t *testing.T) {
	key, iv := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, aes.BlockSize)
	stream := func() cipher.Stream {
		b, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		return cipher.NewCTR(b, iv)
	}
	f := &floorRecorder{stream: stream(), sum: sha256.New()}
	out, in := bytes.Repeat([]byte("log line\n"), 10000), []byte("ls\r")
	if err := f.Output(out); err != nil {
		t.Fatal(err)
	}
	if err := f.Input(in); err != nil {
		t.Fatal(err)
	}
	plain := append(slices.Clone(out), in...)
	want := make([]byte, len(plain))
	stream().XORKeyStream(want, plain)
	if got, w := f.sum.Sum(nil), sha256.Sum256(want); !bytes.Equal(got, w[:]) {
		t.Errorf("digest %x, want SHA-256 of the ciphertext %x", got, w)
	}
	f.Close(gateway.SessionEnd{})
	if f.Output([]byte("x")) == nil {
		t.Error("Output after Close: nil error")
	}
}
