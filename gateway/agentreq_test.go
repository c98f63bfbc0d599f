package gateway_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/wire"
)

// fakeAgent connects to gw as host's agent and serves each session
// channel the gateway opens with serve (after answering its setup
// requests yes), until the test ends.
func fakeAgent(t *testing.T, gw *gatewaytest.Gateway, host string, key gatewaytest.Key, serve func(ch ssh.Channel)) {
	t.Helper()
	c, err := ssh.Dial("tcp", gw.AgentAddr, &ssh.ClientConfig{User: host, Auth: []ssh.AuthMethod{ssh.PublicKeys(key.Signer)},
		HostKeyCallback: ssh.FixedHostKey(gw.HostKey.PublicKey()), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	chans := c.HandleChannelOpen(wire.ChannelSession)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for nch := range chans {
			ch, reqs, err := nch.Accept()
			if err != nil {
				continue
			}
			for req := range reqs {
				req.Reply(true, nil)
				if req.Type == wire.ReqExec || req.Type == wire.ReqShell {
					break
				}
			}
			go ssh.DiscardRequests(reqs)
			serve(ch)
			ch.Close()
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	gw.WaitOnline(host)
}

// TestAgentRequestsChecked: of what an agent sends on a session, only one
// well-formed exit reaches the person, its strings bounded and escaped;
// unknown, malformed and second exits are dropped, and the store keeps
// the bounded name.
func TestAgentRequestsChecked(t *testing.T) {
	gw := gatewaytest.StartGateway(t, gatewaytest.Config{})
	alice := gatewaytest.NewKey(t, "alice")
	gw.AddPerson("alice", "advanced", "alice@example.com", "", alice)
	agentKey := gw.AddHost("evil-01")
	gw.SetPassphrase("evil-01", "pp-evil-01")
	gw.AddTeam("ops_RR", true, []string{"alice"}, "evil-01")
	long := strings.Repeat("\u202eevil\x1b[2J\u200b", 2000) // 30 000 bytes
	fakeAgent(t, gw, "evil-01", agentKey, func(ch ssh.Channel) {
		send := func(typ string, wantReply bool, payload []byte) {
			if _, err := ch.SendRequest(typ, wantReply, payload); err != nil {
				t.Errorf("agent: %s: %v", typ, err)
			}
		}
		send("x-evil@example.com", true, []byte(long))
		send(wire.ReqExitStatus, false, append(ssh.Marshal(&wire.ExitStatus{Status: 7}), 0xff))                 // trailing byte
		send(wire.ReqExitSignal, false, []byte{0, 0, 0, 9, 'T'})                                                // cut short
		send(wire.ReqExitSignal, false, ssh.Marshal(&wire.ExitSignal{Signal: "TERM\x1b[2J"}))                   // not a name
		send(wire.ReqExitSignal, false, ssh.Marshal(&wire.ExitSignal{Signal: strings.Repeat("A", 300)}))        // too long
		send(wire.ReqExitSignal, false, ssh.Marshal(&wire.ExitSignal{Signal: "KILL", Error: long, Lang: long})) // the one
		send(wire.ReqExitStatus, false, ssh.Marshal(&wire.ExitStatus{Status: 0}))                               // a second exit
	})

	c, err := ssh.Dial("tcp", gw.PeopleAddr, &ssh.ClientConfig{User: "rr+evil-01",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(alice.Signer), gatewaytest.Answers(t, gw.Outbox, map[string]string{"Passphrase for evil-01": "pp-evil-01"})},
		HostKeyCallback: ssh.FixedHostKey(gw.HostKey.PublicKey()), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if ok, err := ch.SendRequest(wire.ReqExec, true, ssh.Marshal(&wire.Command{Command: "anything"})); !ok || err != nil {
		t.Fatalf("exec: %v %v", ok, err)
	}
	var got []*ssh.Request
	for req := range reqs { // until the gateway closes the channel
		got = append(got, req)
	}
	if len(got) != 1 || got[0].Type != wire.ReqExitSignal {
		var types []string
		for _, r := range got {
			types = append(types, r.Type)
		}
		t.Fatalf("the person got %q; want one exit-signal", types)
	}
	var sig wire.ExitSignal
	if err := ssh.Unmarshal(got[0].Payload, &sig); err != nil {
		t.Fatal(err)
	}
	if sig.Signal != "KILL" || sig.Lang != "" || len(sig.Error) > 256 || strings.ContainsAny(sig.Error, "\u202e\x1b\u200b") ||
		!strings.HasPrefix(sig.Error, `\u202eevil\x1b[2J\u200b`) {
		t.Fatalf("exit-signal %q, message (%d bytes) %q, lang %q", sig.Signal, len(sig.Error), sig.Error, sig.Lang)
	}

	// The row is final before the person's channel closes.
	rows, err := gw.Store.Sessions(context.Background(), store.SessionFilter{})
	if err != nil || len(rows) != 1 || rows[0].EndReason != "signal KILL" {
		t.Fatalf("session rows %+v, %v; want one ended by signal KILL", rows, err)
	}
}

// TestTerminalPromptEscaped: what the gateway asks on a session's
// terminal (here the masked address the code went to, an admin's typo or
// worse) shows bidi and zero-width characters escaped.
func TestTerminalPromptEscaped(t *testing.T) {
	gw := gatewaytest.StartGateway(t, gatewaytest.Config{})
	alice := gatewaytest.NewKey(t, "alice")
	gw.AddPerson("alice", "advanced", "alice@ex\u202eample\u200b.com", "", alice)
	web01 := gw.AddHost("web-01")
	gw.SetPassphrase("web-01", "pp-web-01")
	gw.AddTeam("ops_RR", true, []string{"alice"}, "web-01")
	gatewaytest.StartAgent(t, gw, "web-01", web01, nil)
	gw.WaitOnline("web-01")
	e := &env{gw: gw, alice: alice}
	s, stdin, out := ptyShell(t, e.dial(t, "rr", alice.Signer), "xterm", 30, 100)
	waitFor(t, out, "Host (number or name")
	io.WriteString(stdin, "1\r")
	waitFor(t, out, "Passphrase for web-01: ")
	io.WriteString(stdin, "pp-web-01\r")
	waitFor(t, out, `Code sent to a***@ex\u202eample\u200b.com: `)
	if strings.ContainsAny(out.String(), "\u202e\u200b") {
		t.Fatalf("the prompt reached the terminal raw:\n%q", out.String())
	}
	s.Close()
}
