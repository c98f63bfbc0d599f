package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
	"golang.org/x/crypto/ssh"
)

// chain builds n chained events as the store would.
func chain(n int) []store.AuditEvent {
	var evs []store.AuditEvent
	prev := ""
	for i := 1; i <= n; i++ {
		e := store.AuditEvent{Seq: int64(i), Time: time.Unix(int64(1000+i), 0).UTC(), Actor: "alice",
			Action: "session.open", Target: "web-01", Outcome: "allowed", Detail: fmt.Sprint(i), Prev: prev}
		e.Hash = store.ChainHash(prev, e)
		prev = e.Hash
		evs = append(evs, e)
	}
	return evs
}

// rehash recomputes every link from i on: what someone with write access
// to the store, but not the audit key, can do.
func rehash(evs []store.AuditEvent, i int) {
	for ; i < len(evs); i++ {
		evs[i].Seq = int64(i + 1)
		evs[i].Prev = ""
		if i > 0 {
			evs[i].Prev = evs[i-1].Hash
		}
		evs[i].Hash = store.ChainHash(evs[i].Prev, evs[i])
	}
}

func checkpoint(t *testing.T, s ssh.Signer, e store.AuditEvent) store.Checkpoint {
	t.Helper()
	c, err := SignCheckpoint(s, e.Seq, e.Hash, e.Time.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerifyTrail(t *testing.T) {
	signer, _ := testKey(t)
	other, _ := testKey(t)
	pub := signer.PublicKey()
	base := chain(10)
	cp := checkpoint(t, signer, base[7]) // pins events 1..8

	for _, tc := range []struct {
		name   string
		tamper func(evs []store.AuditEvent, cps []store.Checkpoint) ([]store.AuditEvent, []store.Checkpoint)
		seq    int64  // where it must say it broke; 0: it must verify
		says   string // in the first problem
	}{
		{"untouched", func(e []store.AuditEvent, c []store.Checkpoint) ([]store.AuditEvent, []store.Checkpoint) { return e, c }, 0, ""},
		{"changed row", func(e []store.AuditEvent, c []store.Checkpoint) ([]store.AuditEvent, []store.Checkpoint) {
			e[4].Detail = "nothing happened"
			return e, c
		}, 5, "event changed"},
		{"changed row, chain rehashed", func(e []store.AuditEvent, c []store.Checkpoint) ([]store.AuditEvent, []store.Checkpoint) {
			e[4].Detail = "nothing happened"
			rehash(e, 4)
			return e, c
		}, 8, "not the one checkpointed"},
		{"deleted row", func(e []store.AuditEvent, c []store.Checkpoint) ([]store.AuditEvent, []store.Checkpoint) {
			return append(e[:3:3], e[4:]...), c
		}, 5, "events 4 to 4 are missing"},
		{"deleted row, renumbered and rehashed", func(e []store.AuditEvent, c []store.Checkpoint) ([]store.AuditEvent, []store.Checkpoint) {
			e = append(e[:3:3], e[4:]...)
			rehash(e, 3)
			return e, c
		}, 8, "not the one checkpointed"},
		{"inserted row", func(e []store.AuditEvent, c []store.Checkpoint) ([]store.AuditEvent, []store.Checkpoint) {
			x := e[2]
			x.Detail = "forged"
			return append(e[:3:3], append([]store.AuditEvent{x}, e[3:]...)...), c
		}, 3, "event changed"},
		{"inserted row, rehashed", func(e []store.AuditEvent, c []store.Checkpoint) ([]store.AuditEvent, []store.Checkpoint) {
			x := e[2]
			x.Detail = "forged"
			e = append(e[:3:3], append([]store.AuditEvent{x}, e[3:]...)...)
			rehash(e, 3)
			return e, c
		}, 8, "not the one checkpointed"},
		{"reordered rows", func(e []store.AuditEvent, c []store.Checkpoint) ([]store.AuditEvent, []store.Checkpoint) {
			e[5].Seq, e[6].Seq = e[6].Seq, e[5].Seq
			return e, c
		}, 6, ""},
		{"trail cut after a checkpoint", func(e []store.AuditEvent, c []store.Checkpoint) ([]store.AuditEvent, []store.Checkpoint) {
			return e[:6], c
		}, 8, "rolled back"},
		{"checkpoint signed with another key", func(e []store.AuditEvent, c []store.Checkpoint) ([]store.AuditEvent, []store.Checkpoint) {
			return e, []store.Checkpoint{checkpoint(t, other, e[7])}
		}, 8, "does not verify"},
		{"checkpoint's head changed", func(e []store.AuditEvent, c []store.Checkpoint) ([]store.AuditEvent, []store.Checkpoint) {
			c[0].Head = e[6].Hash
			return e, c
		}, 8, "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := append([]store.AuditEvent(nil), base...)
			evs, cps := tc.tamper(evs, []store.Checkpoint{cp})
			r := VerifyTrail(pub, evs, cps)
			if tc.seq == 0 {
				if !r.OK() || r.Events != 10 || r.Signed != 8 || r.Checkpoints != 1 {
					t.Fatalf("%+v", r)
				}
				return
			}
			if r.OK() {
				t.Fatal("tampering not detected")
			}
			if p := r.Problems[0]; p.Seq != tc.seq || !strings.Contains(p.Msg, tc.says) {
				t.Fatalf("first problem %v; want seq %d saying %q (all: %v)", p, tc.seq, tc.says, r.Problems)
			}
		})
	}
}

func TestExportRoundTrip(t *testing.T) {
	signer, _ := testKey(t)
	evs := chain(5)
	var b bytes.Buffer
	for _, e := range evs {
		fmt.Fprintf(&b, "%s\n", mustJSON(t, ToJSON(e)))
	}
	c := checkpoint(t, signer, evs[4])
	fmt.Fprintf(&b, "{\"checkpoint\":%s}\n", mustJSON(t, CheckpointToJSON(c)))
	got, cps, err := ReadExport(&b)
	if err != nil {
		t.Fatal(err)
	}
	if r := VerifyTrail(signer.PublicKey(), got, cps); !r.OK() || r.Signed != 5 {
		t.Fatalf("%+v", r)
	}
	pc, err := ParseCheckpointFile(CheckpointFile(c))
	if err != nil || pc != c {
		t.Fatalf("published checkpoint reads back %+v, %v", pc, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A checkpoint that comes after its events (an export lists them last)
// is checked against the hash seen for its seq.
func TestVerifierLateCheckpoint(t *testing.T) {
	signer, _ := testKey(t)
	evs := chain(5)
	good := checkpoint(t, signer, evs[2])
	rewritten := append([]store.AuditEvent(nil), evs...)
	rewritten[1].Detail = "forged"
	rehash(rewritten, 1)
	for _, tc := range []struct {
		evs []store.AuditEvent
		ok  bool
	}{{evs, true}, {rewritten, false}} {
		v := NewVerifier(signer.PublicKey(), nil)
		for _, e := range tc.evs {
			if !v.InOrder(e) {
				t.Fatal("in order")
			}
			v.Add(e)
		}
		v.AddCheckpoint(good)
		r := v.Report()
		if r.OK() != tc.ok || r.Signed != 3 {
			t.Fatalf("want ok %v: %+v", tc.ok, r)
		}
		if !tc.ok && (r.Problems[0].Seq != 3 || !strings.Contains(r.Problems[0].Msg, "rewritten")) {
			t.Fatalf("%v", r.Problems)
		}
	}
	v := NewVerifier(signer.PublicKey(), nil)
	v.Add(evs[3])
	if v.InOrder(evs[1]) {
		t.Fatal("an earlier seq is in order")
	}
}
