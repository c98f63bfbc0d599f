package main

// The reference servers the gateway is measured against: one hop to the
// agent's session code, a bare x/crypto/ssh server, a naive bridge, and a
// plain TCP relay.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/agent"
	"github.com/rr-gateway/rr/wire"
)

// onehopRole is the baseline: the agent's own session code serving a
// person's Go SSH client directly, one hop, no gateway.
func onehopRole(ctx context.Context, ctl *control, log *slog.Logger, shell string) error {
	a, err := agent.New(agent.Config{Gateways: []string{"127.0.0.1:9"}, GatewayHostKey: "SHA256:unused",
		Host: sessionHost, Signer: agentKey(sessionHost), Shell: shell, KillGrace: 200 * time.Millisecond, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := onehopServer(ctx, a)
	go srv.Serve(ln)
	defer srv.Close()
	ctl.send("ready", map[string]string{"addr": ln.Addr().String()})
	ctl.serve(nil)
	return nil
}

// onehopServer is the one-hop endpoint on gliderlabs/ssh: each "session"
// channel goes to the agent as the gateway would hand it over, and the
// agent's session code answers its requests. Only the benchmark's people
// get in, each with their own key (onehopLogin).
func onehopServer(ctx context.Context, a *agent.Agent) *gliderssh.Server {
	var n atomic.Int64
	return &gliderssh.Server{
		HostSigners:      []gliderssh.Signer{signer(onehopKeyName)},
		PublicKeyHandler: func(c gliderssh.Context, key gliderssh.PublicKey) bool { return onehopLogin(c.User(), key) },
		ChannelHandlers: map[string]gliderssh.ChannelHandler{
			"session": func(_ *gliderssh.Server, _ *ssh.ServerConn, nch ssh.NewChannel, _ gliderssh.Context) {
				id := fmt.Sprintf("onehop%010d", n.Add(1))
				a.ServeChannel(ctx, sessionChannel{nch, ssh.Marshal(&wire.SessionOpen{SessionID: id, Person: "p0", Team: "bench_RR"})})
			},
		},
	}
}

// onehopLogin says whether key is the benchmark key of the person user
// names ("p3"); the naive bridge logs in upstream as "bridge" with p0's.
func onehopLogin(user string, key ssh.PublicKey) bool {
	if user == "bridge" {
		user = personName(0)
	}
	i, err := strconv.Atoi(strings.TrimPrefix(user, "p"))
	if err != nil || i < 0 || personName(i) != user {
		return false
	}
	return gliderssh.KeysEqual(key, personKey(i).PublicKey())
}

// sessionChannel makes a person's "session" channel look like the
// gateway's wire.ChannelSession: same requests, plus the open data.
type sessionChannel struct {
	ssh.NewChannel
	extra []byte
}

func (c sessionChannel) ChannelType() string { return wire.ChannelSession }
func (c sessionChannel) ExtraData() []byte   { return c.extra }

// serveSSH accepts connections on ln until it is closed and runs handle on
// each one whose handshake succeeds; the connection closes when handle
// returns.
func serveSSH(ln net.Listener, cfg *ssh.ServerConfig, handle func(*ssh.ServerConn, <-chan ssh.NewChannel, <-chan *ssh.Request)) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
			if err != nil {
				nc.Close()
				return
			}
			defer sc.Close()
			handle(sc, chans, reqs)
		}()
	}
}

// anyKeyServer is the bare and bridge roles' SSH server, on x/crypto/ssh
// alone (what they measure): the one-hop host key, any client key
// (loopback benchmark only), a listener on 127.0.0.1.
func anyKeyServer() (*ssh.ServerConfig, net.Listener, error) {
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, nil
	}}
	cfg.AddHostKey(signer(onehopKeyName))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	return cfg, ln, err
}

// bareRole is the memory figures' floor: an SSH server on
// golang.org/x/crypto/ssh that does nothing but hold its connections. Per
// connection it runs the library's own goroutines (reader, key exchange,
// multiplexer) and one of its own, which answers global requests, accepts
// one session channel, says yes to its pty-req and shell, and writes a
// prompt. That is the least any server built on the library holds for an
// idle person (or, without the channel, for an idle agent's tunnel).
func bareRole(ctx context.Context, ctl *control) error {
	cfg, ln, err := anyKeyServer()
	if err != nil {
		return err
	}
	defer ln.Close()
	go serveSSH(ln, cfg, bareConn)
	ctl.send("ready", map[string]string{"addr": ln.Addr().String()})
	ctl.serve(nil)
	return nil
}

func bareConn(_ *ssh.ServerConn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) {
	var ch ssh.Channel
	var creqs <-chan *ssh.Request
	for reqs != nil || chans != nil {
		select {
		case req, ok := <-reqs:
			if !ok {
				return
			}
			if req.WantReply {
				req.Reply(false, nil)
			}
		case nch, ok := <-chans:
			if !ok {
				return
			}
			if ch != nil || nch.ChannelType() != "session" {
				nch.Reject(ssh.Prohibited, "one session")
				continue
			}
			var err error
			if ch, creqs, err = nch.Accept(); err != nil {
				return
			}
		case req, ok := <-creqs:
			if !ok {
				ch.Close()
				ch, creqs = nil, nil
				continue
			}
			ok = req.Type == "pty-req" || req.Type == "shell"
			if req.WantReply {
				req.Reply(ok, nil)
			}
			if req.Type == "shell" {
				ch.Write([]byte("$ "))
			}
		}
	}
}

// bridgeRole is the reference design the prototype measured: a
// naive two-hop bridge. It is an SSH server on x/crypto/ssh that, for each
// person, dials the one-hop endpoint (upstream) as an SSH client and
// relays every session channel to it: requests both ways, data with
// io.Copy. No login factors, no recording, no limits — what any relay
// that ends SSH on both hops costs at the least, measured in the same run.
func bridgeRole(ctx context.Context, ctl *control, upstream string) error {
	cfg, ln, err := anyKeyServer()
	if err != nil {
		return err
	}
	defer ln.Close()
	up := &ssh.ClientConfig{User: "bridge", Auth: []ssh.AuthMethod{ssh.PublicKeys(personKey(0))},
		HostKeyCallback: ssh.FixedHostKey(signer(onehopKeyName).PublicKey())}
	go serveSSH(ln, cfg, func(_ *ssh.ServerConn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) {
		bridgeConn(chans, reqs, upstream, up)
	})
	ctl.send("ready", map[string]string{"addr": ln.Addr().String()})
	ctl.serve(nil)
	return nil
}

func bridgeConn(chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request, upstream string, upCfg *ssh.ClientConfig) {
	go ssh.DiscardRequests(reqs)
	up, err := ssh.Dial("tcp", upstream, upCfg)
	if err != nil {
		return
	}
	defer up.Close()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.Prohibited, "sessions only")
			continue
		}
		uch, ureqs, err := up.OpenChannel("session", nil)
		if err != nil {
			nch.Reject(ssh.ConnectionFailed, err.Error())
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			uch.Close()
			continue
		}
		go bridgeChannel(ch, creqs, uch, ureqs)
	}
}

// bridgeChannel relays one session channel until the upstream side ends.
func bridgeChannel(ch ssh.Channel, creqs <-chan *ssh.Request, uch ssh.Channel, ureqs <-chan *ssh.Request) {
	relay := func(to ssh.Channel, reqs <-chan *ssh.Request) {
		for r := range reqs {
			ok, err := to.SendRequest(r.Type, r.WantReply, r.Payload)
			if r.WantReply {
				r.Reply(ok && err == nil, nil)
			}
		}
	}
	go relay(uch, creqs)
	go func() {
		io.Copy(uch, ch)
		uch.CloseWrite()
	}()
	var out sync.WaitGroup
	out.Go(func() { io.Copy(ch, uch) })
	out.Go(func() { io.Copy(ch.Stderr(), uch.Stderr()) })
	relay(ch, ureqs) // exit-status and the like, until upstream closes
	out.Wait()
	ch.Close()
	uch.Close()
}

// tcpRelayRole is the floor of any Go program in the middle: a plain TCP
// relay (io.Copy both ways, no SSH, no work of its own) in front of
// upstream. A keystroke through it to OpenSSH's sshd pays only what a Go
// process costs to wake, read and write, twice per echo.
func tcpRelayRole(ctl *control, upstream string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go tcpRelay(c.(*net.TCPConn), upstream)
		}
	}()
	ctl.send("ready", map[string]string{"addr": ln.Addr().String()})
	ctl.serve(nil)
	return nil
}

// tcpRelay relays c to a new connection to upstream until both sides have
// ended, passing each side's end of input on to the other. Its bytes go
// through a buffer in the process, as a relay that decrypts must take
// them, not through splice(2), which io.Copy between two TCP connections
// would use.
func tcpRelay(c *net.TCPConn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	uc := u.(*net.TCPConn)
	var up sync.WaitGroup
	up.Go(func() {
		io.Copy(struct{ io.Writer }{uc}, struct{ io.Reader }{c})
		uc.CloseWrite()
	})
	io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{uc})
	c.CloseWrite()
	up.Wait()
}
