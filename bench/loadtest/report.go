package loadtest

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// Fault is one fault injected during the fault run and what followed.
type Fault struct {
	Name     string `json:"name"`
	Action   string `json:"action"`
	Expected string `json:"expected"`
	Observed string `json:"observed"`
	OK       bool   `json:"ok"`
}

// Report is one run's results.
type Report struct {
	Name      string  `json:"name"`
	When      string  `json:"when"`
	GoVersion string  `json:"go"`
	CPUs      int     `json:"cpus"`
	Race      bool    `json:"race"`
	Config    *Config `json:"config,omitempty"`

	Sessions  int `json:"sessions"`  // planned
	Started   int `json:"started"`   // logged in and got a shell or command
	Peak      int `json:"peak_held"` // sessions held at once, at most
	Identical int `json:"identical"` // recordings identical to what the client saw
	Errors    int `json:"errors"`    // sessions with anything unexpected
	// LostBytes: bytes the clients sent or received that the recordings do
	// not hold (or hold differently). The target is zero.
	LostBytes int64 `json:"lost_bytes"`
	// UnrecordedTail: bytes in flight when a fault cut a session (after its
	// recording's last flush, or unread when the agent died): expected in
	// the fault run, where the recording must hold an exact prefix.
	UnrecordedTail int64   `json:"unrecorded_tail_bytes,omitempty"`
	Mismatches     int     `json:"mismatches"` // recordings that contradict their client
	Missing        int     `json:"missing"`    // sessions without a readable recording
	BytesSent      int64   `json:"bytes_sent"`
	BytesReceived  int64   `json:"bytes_received"`
	RecordedIn     int64   `json:"recorded_in"`
	RecordedOut    int64   `json:"recorded_out"`
	Commands       int     `json:"commands_typed"`
	LoginP50MS     int64   `json:"login_p50_ms"`
	LoginP99MS     int64   `json:"login_p99_ms"`
	LoadSeconds    float64 `json:"load_seconds"`
	VerifySeconds  float64 `json:"verify_seconds"`
	TotalSeconds   float64 `json:"total_seconds"`
	// MBps is client bytes both ways per second of load.
	MBps     float64          `json:"mb_per_s"`
	Warnings int              `json:"gateway_warnings"`
	Notes    []string         `json:"notes,omitempty"` // first errors and warnings
	Faults   []Fault          `json:"faults,omitempty"`
	Rows     []*SessionResult `json:"sessions_detail,omitempty"`
	Passed   bool             `json:"passed"`
}

func newReport(name string) *Report {
	return &Report{Name: name, When: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(),
		CPUs: runtime.NumCPU(), Race: raceEnabled}
}

// tally fills the totals from the sessions' results; ok says whether a
// session's outcome is as expected (nil: "exit 0" and identical).
func (r *Report) tally(results []*SessionResult, ok func(*SessionResult) bool) {
	if ok == nil {
		ok = func(s *SessionResult) bool {
			return s.Err == "" && s.Saw == "exit 0" && s.Check.Status == "identical"
		}
	}
	r.Sessions = len(results)
	var logins []int64
	for _, s := range results {
		if s.Kind != "" && !strings.HasPrefix(s.Saw, "login refused") && !strings.HasPrefix(s.Saw, "no session") {
			r.Started++
		}
		logins = append(logins, s.LoginMS)
		r.BytesSent += s.Sent
		r.BytesReceived += s.Received
		r.RecordedIn += s.Check.In.Recorded
		r.RecordedOut += s.Check.Out.Recorded
		r.Commands += s.Commands
		switch s.Check.Status {
		case "identical":
			r.Identical++
		case "MISMATCH":
			r.Mismatches++
		case "missing", "":
			if s.ID != "" {
				r.Missing++
			}
		}
		switch s.Check.Status {
		case "prefix", "complete-prefix":
			r.UnrecordedTail += s.Check.Lost()
			r.LostBytes += s.Check.In.Extra() + s.Check.Out.Extra() // recorded but never seen: wrong, not late
		case "missing", "":
			if s.ID != "" { // a row but no readable recording: all it moved is unrecorded
				r.LostBytes += s.Sent + s.Received
			}
		default:
			r.LostBytes += s.Check.Lost() + s.Check.In.Extra() + s.Check.Out.Extra()
		}
		if s.ID == "" && s.Check.Status == "" {
			// No row, no recording: everything it moved is unrecorded.
			r.LostBytes += s.Sent + s.Received
		}
		if !ok(s) {
			r.Errors++
			if len(r.Notes) < 20 {
				r.Notes = append(r.Notes, fmt.Sprintf("session %d (%s %s on %s): saw %q, error %q, row %s/%s, recording %s %s",
					s.Index, s.Kind, s.Person, s.Host, s.Saw, s.Err, s.State, s.EndReason, s.Check.Status, s.Check.Err))
			}
		}
	}
	slices.Sort(logins)
	if len(logins) > 0 {
		r.LoginP50MS = logins[len(logins)/2]
		r.LoginP99MS = logins[min(len(logins)-1, len(logins)*99/100)]
	}
	if r.LoadSeconds > 0 {
		r.MBps = float64(r.BytesSent+r.BytesReceived) / 1e6 / r.LoadSeconds
	}
}

// results is the JSON file: the latest report of each run name.
type results struct {
	Runs map[string]*Report `json:"runs"`
}

// writeResults merges r into PREFIX.json (replacing an earlier run of the
// same name) and rewrites PREFIX.md from it.
func writeResults(prefix string, r *Report) error {
	var all results
	if b, err := os.ReadFile(prefix + ".json"); err == nil {
		json.Unmarshal(b, &all)
	}
	if all.Runs == nil {
		all.Runs = map[string]*Report{}
	}
	all.Runs[r.Name] = r
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(prefix+".json", append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(prefix+".md", []byte(markdown(all)), 0o644)
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func markdown(all results) string {
	var names []string
	for n := range all.Runs {
		names = append(names, n)
	}
	order := map[string]int{"load": 0, "load-race": 1, "faults": 2}
	sort.Slice(names, func(i, j int) bool {
		oi, iok := order[names[i]]
		oj, jok := order[names[j]]
		if iok && jok {
			return oi < oj
		}
		if iok != jok {
			return iok
		}
		return names[i] < names[j]
	})
	var b strings.Builder
	b.WriteString("# rr load and fault runs\n\n")
	b.WriteString("Written by `make load` (scripts/load.sh, bench/loadtest); the JSON beside this file holds the same runs with every field.\n\n")
	b.WriteString("| run | when | race | sessions | started | peak held | sent | received | recorded in/out | identical | errors | lost bytes | mismatches | missing | login p50/p99 | load | verify | MB/s | passed |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, n := range names {
		r := all.Runs[n]
		fmt.Fprintf(&b, "| %s | %s | %v | %d | %d | %d | %s | %s | %s / %s | %d | %d | %d | %d | %d | %d/%d ms | %.1f s | %.1f s | %.1f | %v |\n",
			r.Name, r.When, r.Race, r.Sessions, r.Started, r.Peak, mb(r.BytesSent), mb(r.BytesReceived),
			mb(r.RecordedIn), mb(r.RecordedOut), r.Identical, r.Errors, r.LostBytes, r.Mismatches, r.Missing,
			r.LoginP50MS, r.LoginP99MS, r.LoadSeconds, r.VerifySeconds, r.MBps, r.Passed)
	}
	for _, n := range names {
		r := all.Runs[n]
		fmt.Fprintf(&b, "\n## %s\n\n%s, %d CPUs, race %v", r.Name, r.GoVersion, r.CPUs, r.Race)
		if c := r.Config; c != nil {
			fmt.Fprintf(&b, "; %d sessions over %d hosts, each %g–%g s, %.0f%% PTY, cat sessions push %d B/s, logins spread over %g s",
				c.Sessions, c.Hosts, c.Seconds, 2*c.Seconds, 100*c.PTYShare, c.Rate, c.Ramp)
		}
		fmt.Fprintf(&b, "; %d commands typed; %d gateway warnings; total %.1f s.\n", r.Commands, r.Warnings, r.TotalSeconds)
		if r.UnrecordedTail > 0 {
			fmt.Fprintf(&b, "\nBytes in flight when a fault cut a session (not in its recording, which holds an exact prefix): %d.\n", r.UnrecordedTail)
		}
		if len(r.Faults) > 0 {
			b.WriteString("\n| fault | action | expected | observed | ok |\n|---|---|---|---|---|\n")
			for _, f := range r.Faults {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %v |\n", f.Name, cell(f.Action), cell(f.Expected), cell(f.Observed), f.OK)
			}
		}
		if len(r.Rows) > 0 {
			b.WriteString("\n| # | group | host | kind | client saw | row | recording | in: recorded/client | out: recorded/client | where |\n|---:|---|---|---|---|---|---|---:|---:|---|\n")
			for _, s := range r.Rows {
				where := s.Recording
				if i := strings.LastIndex(where, "/"); i >= 0 && !strings.HasPrefix(where, "s3://") {
					where = "spool:" + where[i+1:]
				}
				fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %d/%d | %d/%d | %s |\n", s.Index, s.Group, s.Host, s.Kind,
					cell(s.Saw+noticeOf(s)), cell(strings.Trim(s.State+" / "+s.EndReason, " /")), cell(s.Check.Status+errOf(s.Check.Err)),
					s.Check.In.Recorded, s.Check.In.Client, s.Check.Out.Recorded, s.Check.Out.Client, cell(where))
			}
		}
		if len(r.Notes) > 0 {
			b.WriteString("\nNotes:\n\n")
			for _, n := range r.Notes {
				fmt.Fprintf(&b, "- %s\n", n)
			}
		}
	}
	return b.String()
}

func noticeOf(s *SessionResult) string {
	if s.Notice == "" {
		return ""
	}
	return " — “" + s.Notice + "”"
}

func errOf(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\r", "")
	return strings.ReplaceAll(s, "\n", " ")
}
