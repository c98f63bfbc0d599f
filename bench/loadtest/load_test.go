package loadtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rr-gateway/rr/internal/pgtest"
)

func need(t *testing.T) {
	if os.Getenv("RR_LOAD") != "1" {
		t.Skip("a load run: set RR_LOAD=1 (make load)")
	}
}

// save writes the report where RR_LOAD_RESULTS says (PREFIX.md and
// PREFIX.json) and logs its table.
func save(t *testing.T, rep *Report) {
	if prefix := os.Getenv("RR_LOAD_RESULTS"); prefix != "" {
		if err := writeResults(prefix, rep); err != nil {
			t.Error(err)
		}
	}
	t.Log("\n" + markdown(results{Runs: map[string]*Report{rep.Name: rep}}))
	if !rep.Passed {
		t.Errorf("%s: %d errors, %d lost bytes, %d mismatched and %d missing recordings", rep.Name, rep.Errors, rep.LostBytes, rep.Mismatches, rep.Missing)
	}
}

// TestLoad is the main run: RR_LOAD_SESSIONS (500; 50 under -race)
// concurrent sessions through an in-process gateway.
func TestLoad(t *testing.T) {
	need(t)
	def := Config{Sessions: 500, Seconds: 10, Hosts: 4, PTYShare: 0.5, Rate: 32 << 10, Ramp: 5}
	name := "load"
	if raceEnabled {
		def.Sessions, def.Seconds, name = 50, 5, "load-race"
	}
	cfg, err := FromEnv(def)
	if err != nil {
		t.Fatal(err)
	}
	save(t, RunLoad(t, name, cfg))
}

// TestHarness runs five sessions for three seconds (every `make test`):
// the harness works and finds every byte.
func TestHarness(t *testing.T) {
	rep := RunLoad(t, "harness", Config{Sessions: 5, Seconds: 1.5, Hosts: 2, PTYShare: 0.4, Rate: 16 << 10, Seed: 42})
	if !rep.Passed || rep.Started != 5 || rep.Identical != 5 || rep.BytesSent == 0 || rep.Commands == 0 {
		t.Fatalf("harness run:\n%s", markdown(results{Runs: map[string]*Report{"harness": rep}}))
	}
	p := filepath.Join(t.TempDir(), "r")
	if err := writeResults(p, rep); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p + ".md"); !strings.Contains(string(b), "| harness |") {
		t.Fatalf("results table:\n%s", b)
	}
}

// TestMatcher: the comparison finds a changed, a missing and an extra byte.
func TestMatcher(t *testing.T) {
	data := make([]byte, 100000)
	genStream(7).Read(data)
	ref := Ref{Seed: 7, Len: int64(len(data))}
	feed := func(b []byte) Compare {
		m := NewMatcher(ref)
		for len(b) > 0 { // in uneven chunks, as events come
			k := min(len(b), 1+len(b)%7777)
			m.Write(b[:k])
			b = b[k:]
		}
		return compareOf(m, ref)
	}
	if c := feed(data); !c.Identical() || c.Lost() != 0 {
		t.Fatalf("identical: %+v", c)
	}
	bad := bytes.Clone(data)
	bad[54321] ^= 1
	if c := feed(bad); c.Prefix() || c.Common != 54321 || c.Lost() != 100000-54321 {
		t.Fatalf("one byte changed: %+v", c)
	}
	if c := feed(data[:60000]); c.Identical() || !c.Prefix() || c.Lost() != 40000 {
		t.Fatalf("cut: %+v", c)
	}
	if c := feed(append(bytes.Clone(data), 'x')); c.Identical() || c.Extra() != 1 || c.Lost() != 0 {
		t.Fatalf("one more byte: %+v", c)
	}
	if c := compareOf(NewMatcher(Ref{Bytes: []byte("ab"), Len: 2}), Ref{Bytes: []byte("ab"), Len: 2}); c.Identical() || c.Lost() != 2 {
		t.Fatalf("nothing recorded: %+v", c)
	}
}

// TestFaults is the fault run against the real rr-gateway and rr-agent
// processes, mailpit and versitygw.
func TestFaults(t *testing.T) {
	need(t)
	cfg, err := FromEnv(Config{})
	if err != nil {
		t.Fatal(err)
	}
	save(t, RunFaults(t, cfg.Seed))
}

// TestFromEnvRefusesBadValues: a load run never quietly runs with other
// settings than the environment asked for.
func TestFromEnvRefusesBadValues(t *testing.T) {
	t.Setenv("RR_LOAD_SESSIONS", "lots")
	t.Setenv("RR_LOAD_PTY_SHARE", "1.5")
	_, err := FromEnv(Config{Sessions: 5})
	if err == nil || !strings.Contains(err.Error(), "RR_LOAD_SESSIONS") || !strings.Contains(err.Error(), "RR_LOAD_PTY_SHARE") {
		t.Fatalf("FromEnv = %v; want both bad variables named", err)
	}
	t.Setenv("RR_LOAD_SESSIONS", "7")
	t.Setenv("RR_LOAD_PTY_SHARE", "")
	c, err := FromEnv(Config{Sessions: 5})
	if err != nil || c.Sessions != 7 {
		t.Fatalf("FromEnv = %+v, %v; want 7 sessions", c, err)
	}
}

// TestLoadHA is the two-gateway run: RR_LOAD_SESSIONS (200) sessions over
// two gateways on one PostgreSQL; then the same with PostgreSQL restarted
// half-way (RR_LOAD_HA_RESTART=0 skips that part).
func TestLoadHA(t *testing.T) {
	need(t)
	cfg, err := FromEnv(Config{Sessions: 200, Seconds: 10, Hosts: 4, PTYShare: 0.5, Rate: 32 << 10, Ramp: 5})
	if err != nil {
		t.Fatal(err)
	}
	srv := pgtest.Shared(t)
	t.Run("spread", func(t *testing.T) { save(t, RunHA(t, "load-ha", cfg, srv, false)) })
	if os.Getenv("RR_LOAD_HA_RESTART") != "0" {
		t.Run("restart", func(t *testing.T) { save(t, RunHA(t, "load-ha-pg-restart", cfg, srv, true)) })
	}
}
