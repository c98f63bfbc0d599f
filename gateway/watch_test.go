package gateway_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/store"
)

// liveID is the one live session's id.
func liveID(t *testing.T, e *env) string {
	t.Helper()
	live, err := e.gw.Store.Sessions(context.Background(), store.SessionFilter{LiveOnly: true})
	if err != nil || len(live) != 1 {
		t.Fatalf("live sessions: %v, %v", live, err)
	}
	return live[0].ID
}

// watchOnTerminal runs ssh -t rr@gw watch:ID for c and answers the
// passphrase with pp.
func watchOnTerminal(t *testing.T, c *ssh.Client, id, pp string) (*ssh.Session, io.Writer, *syncBuffer) {
	t.Helper()
	s := newSession(t, c)
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	in, _ := s.StdinPipe()
	out := &syncBuffer{}
	s.Stdout, s.Stderr = out, out
	if err := s.Start("watch:" + id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "Passphrase for web-01:")
	io.WriteString(in, pp+"\r")
	return s, in, out
}

// TestWatchFollowsASession: a watcher who gives the host's passphrase sees
// the screen so far, then the session live; the person is told; show
// lists the watcher; a kill tells the watcher how it ended; every watch is
// audited.
func TestWatchFollowsASession(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	_, personIn, personOut := ptyShell(t, e.dial(t, "rr+web-01", e.alice.Signer), "xterm", 24, 80)
	io.WriteString(personIn, "echo before-$((6*7))\r")
	waitFor(t, personOut, "before-42")
	id := liveID(t, e)

	watcher, _, watched := watchOnTerminal(t, e.dialB(t, "rr"), id, "pp-web-01")
	waitFor(t, watched, "rr: watching session "+id+" (alice on web-01)")
	waitFor(t, watched, "before-42") // replayed
	waitFor(t, personOut, "rr: alice is watching this session")
	io.WriteString(personIn, "echo during-$((6*7))\r")
	waitFor(t, watched, "during-42")

	cs := openConsole(t, e.dialB(t, "rr"))
	cs.line("show " + id)
	waitFor(t, cs.out, "watchers:     alice")
	cs.line("kill " + id + " enough")
	waitFor(t, watched, "rr: the session ended: killed by alice: enough")
	if err := watcher.Wait(); err != nil {
		t.Fatalf("watch ended with %v", err)
	}

	evs, err := e.gw.Store.AuditEvents(context.Background(), store.AuditFilter{Action: "session.watch", SessionID: id})
	if err != nil || len(evs) != 1 || evs[0].Outcome != "allowed" || evs[0].Actor != "alice" {
		t.Fatalf("watch audit: %+v, %v", evs, err)
	}
	ends, err := e.gw.Store.AuditEvents(context.Background(), store.AuditFilter{Action: "session.watch.end", SessionID: id})
	if err != nil || len(ends) != 1 || !strings.Contains(ends[0].Detail, "killed by alice") {
		t.Fatalf("watch end audit: %+v, %v", ends, err)
	}
}

// TestWatchRefusals: a session of another team reads like one that does
// not exist; an admin in no team may watch; a wrong passphrase shows
// nothing.
func TestWatchRefusals(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	bob := gatewaytest.NewKey(t, "bob")
	e.gw.AddPerson("bob", "advanced", "bob@example.com", "", bob)
	e.gw.AddTeam("db_RR", true, []string{"bob"}, "db-01")
	_, personIn, personOut := ptyShell(t, e.dial(t, "rr+web-01", e.alice.Signer), "xterm", 24, 80)
	io.WriteString(personIn, "echo secret-$((6*7))\r")
	waitFor(t, personOut, "secret-42")
	id := liveID(t, e)

	bobc := e.dial(t, "rr", bob.Signer)
	theirs, missing := watchRefused(t, bobc, id), watchRefused(t, bobc, "0123456789abcdef")
	if want := fmt.Sprintf("rr: no session %q", id); !strings.Contains(theirs, want) ||
		strings.ReplaceAll(theirs, id, "X") != strings.ReplaceAll(missing, "0123456789abcdef", "X") {
		t.Fatalf("another team's session: %q; a missing one: %q", theirs, missing)
	}
	if strings.Contains(theirs, "secret") || strings.Contains(theirs, "Passphrase") {
		t.Fatalf("bob saw %q", theirs)
	}

	// An admin in no team may watch it (as they may kill it), with the
	// host's passphrase.
	ann := gatewaytest.NewKey(t, "ann")
	e.gw.AddPerson("ann", "admin", "ann@example.com", "", ann)
	_, annIn, annSees := watchOnTerminal(t, e.dial(t, "rr", ann.Signer), id, "pp-web-01")
	waitFor(t, annSees, "secret-42")
	io.WriteString(annIn, "q")
	waitFor(t, annSees, "rr: stopped watching")
	waitFor(t, personOut, "rr: ann stopped watching this session")

	_, _, watched := watchOnTerminal(t, e.dialB(t, "rr"), id, "wrong")
	waitFor(t, watched, "Wrong passphrase; try again.")
	if strings.Contains(watched.String(), "secret-42") {
		t.Fatal("a wrong passphrase showed the session")
	}
}

// watchRefused runs watch:id on a terminal and returns what it printed
// once it ended.
func watchRefused(t *testing.T, c *ssh.Client, id string) string {
	t.Helper()
	s := newSession(t, c)
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	s.Stdout, s.Stderr = out, out
	if err := s.Run("watch:" + id); exitStatus(err) != 1 {
		t.Fatalf("watch:%s: %v (%s)", id, err, out)
	}
	return out.String()
}

// TestWatchAnExecSession: a session without a terminal is watched from a
// console without one: its output as it comes, then how it ended.
func TestWatchAnExecSession(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	s := newSession(t, e.dial(t, "rr+web-01", e.alice.Signer))
	personIn, _ := s.StdinPipe()
	personOut, personErr := &syncBuffer{}, &syncBuffer{}
	s.Stdout, s.Stderr = personOut, personErr
	if err := s.Start("echo started; while read l; do echo out-$l; done"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, personOut, "started")
	id := liveID(t, e)

	cs := openConsole(t, e.dialB(t, "rr"))
	cs.line("watch " + id)
	waitFor(t, cs.err, "Passphrase for web-01:")
	cs.line("pp-web-01")
	waitFor(t, cs.out, "started")
	waitFor(t, personErr, "rr: alice is watching this session")
	io.WriteString(personIn, "x\n")
	waitFor(t, cs.out, "out-x")
	personIn.Close()
	waitFor(t, cs.out, "rr: the session ended: exit 0")
	cs.line("whoami")
	waitFor(t, cs.out, "ops_RR") // the console goes on
	if _, errOut := cs.close(); strings.Contains(errOut, "rr-admin:") {
		t.Fatalf("the console reported an error: %s", errOut)
	}
}
