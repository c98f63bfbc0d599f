package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/wire"
)

// bridge carries data and requests between the person's channel and the
// host's until the session ends, then hands finish how it ended — before
// the person's channel closes, so that when their ssh exits the recording
// and the session row are final.
//
// Goroutines: the pumps (person→host, host stdout→person, host
// stderr→person, the last two in one on a PTY session; the last output
// pump to finish closes outDone);
// requests both ways are handled by one goroutine, the only one that
// touches the fields below wg: run's, or the person's connection's when
// it adopted the session (connDuty), which then calls begin, the request
// handlers, deliver and stop itself. The host side ending (its channel closed)
// ends the session once its output is delivered; the person leaving
// closes the host side; a cancelled context closes both and tells the
// person its cause.
type bridge struct {
	ss         *session
	client     ssh.Channel
	clientReqs <-chan *ssh.Request // nil once the person has closed the channel
	agent      ssh.Channel
	agentReqs  <-chan *ssh.Request // nil once the host side has closed
	rec        SessionRecorder

	outDone chan struct{} // closed once both output pumps have delivered everything
	outLeft atomic.Int32
	wg      sync.WaitGroup

	end           SessionEnd
	exited        bool            // the host's exit went on to the person
	droppedLogged bool            // a dropped agent request was logged
	giveUp        *time.Timer     // after a cancel or the person leaving: how long the host side may take to close
	ctx           context.Context // the session's; one that is never done once it was
	stopLimits    func()
}

func newBridge(ss *session, clientReqs <-chan *ssh.Request, agent ssh.Channel, agentReqs <-chan *ssh.Request,
	rec SessionRecorder) *bridge {
	return &bridge{ss: ss, client: ss.client, clientReqs: clientReqs, agent: agent, agentReqs: agentReqs, rec: rec,
		outDone: make(chan struct{})}
}

// run bridges the two channels until the host side has closed and its
// output is delivered (or given up on), then calls finish.
func (b *bridge) run(ctx context.Context, finish func(SessionEnd)) {
	b.begin(ctx)
	defer b.stop()
	for b.open() {
		select {
		case <-b.giveUpC():
			b.gaveUp()
		case req, ok := <-b.agentReqs:
			b.agentRequest(req, ok)
		case req, ok := <-b.clientReqs:
			b.clientRequest(req, ok)
		case <-b.done():
			b.cancel()
		}
	}
	finish(b.deliver())
}

// begin starts the session's limits and pumps.
func (b *bridge) begin(ctx context.Context) {
	b.ctx = ctx
	b.stopLimits = b.ss.limits(b.ss.srv.cfg.IdleTimeout, b.ss.srv.cfg.MaxSessionLength)
	b.startPumps()
}

// open says whether requests still come: false once the host side has
// closed (or was given up on); deliver comes next.
func (b *bridge) open() bool { return b.agentReqs != nil }

// stop closes both channels and waits for the pumps, on every way out.
func (b *bridge) stop() {
	if b.giveUp != nil {
		b.giveUp.Stop()
	}
	b.agent.Close()
	b.client.Close()
	b.wg.Wait()
	b.stopLimits()
}

// The channels a bridge waits on; none on a nil bridge, so that a
// connection without a session selects on them too (connDuty).

func (b *bridge) agentRequests() <-chan *ssh.Request {
	if b == nil {
		return nil
	}
	return b.agentReqs
}

func (b *bridge) clientRequests() <-chan *ssh.Request {
	if b == nil {
		return nil
	}
	return b.clientReqs
}

func (b *bridge) done() <-chan struct{} {
	if b == nil {
		return nil
	}
	return b.ctx.Done()
}

// giveUpC is the channel of the host side's deadline, nil until one is set.
func (b *bridge) giveUpC() <-chan time.Time {
	if b == nil || b.giveUp == nil {
		return nil
	}
	return b.giveUp.C
}

// gaveUp stops waiting for a host side that did not close in time.
func (b *bridge) gaveUp() {
	b.ss.log.Warn("host side did not close in time")
	b.agentReqs = nil
}

// cancel ends the host side after the session's context is done: the
// person's channel closes once the session is finalized (or at once if
// the host side hangs).
func (b *bridge) cancel() {
	b.cancelled(b.ctx)
	b.agent.Close()
	b.hostSideMayTake()
	b.ctx = context.Background()
}

// startPumps starts the pumps, each teeing into the recorder: input,
// output and, without a terminal, stderr. A terminal merges stderr into
// its output, so on a PTY session the host sends stderr only as a last
// word (the agent's "cannot start shell"): one goroutine delivers it
// after the output, and an idle PTY session holds one goroutine less.
func (b *bridge) startPumps() {
	ss := b.ss
	outs := 2
	if ss.pty {
		outs = 1
	}
	b.outLeft.Store(int32(outs))
	b.wg.Add(1 + outs)
	go func() {
		defer b.wg.Done()
		if err := pump(b.agent, b.client, b.rec.Input, &ss.bytesIn, &ss.active); err != nil {
			b.pumpErr(err)
			return
		}
		b.agent.CloseWrite() // the person's EOF reaches the host
	}()
	go func() {
		defer b.wg.Done()
		defer b.outPumpDone()
		err := pump(b.client, b.agent, b.output, &ss.bytesOut, &ss.active)
		if err == nil && ss.pty {
			err = b.stderr()
		}
		b.pumpErr(err)
	}()
	if !ss.pty {
		go func() {
			defer b.wg.Done()
			defer b.outPumpDone()
			b.pumpErr(b.stderr())
		}()
	}
}

// stderr pumps the host's stderr to the person's.
func (b *bridge) stderr() error {
	return pump(b.client.Stderr(), b.agent.Stderr(), b.output, &b.ss.bytesOut, &b.ss.active)
}

// output records a chunk of the host's output, then offers it to the
// session's watchers (and the ring they start from): what they see has
// been recorded.
func (b *bridge) output(p []byte) error {
	if err := b.rec.Output(p); err != nil {
		return err
	}
	b.ss.watch.offer(p)
	return nil
}

func (b *bridge) outPumpDone() {
	if b.outLeft.Add(-1) == 0 {
		close(b.outDone)
	}
}

// pumpErr ends the session when the recorder failed.
func (b *bridge) pumpErr(err error) {
	select {
	case <-b.ss.finished:
		return // bytes after the end: the closed recording refused them, as it should
	default:
	}
	if errors.Is(err, errRecorder) {
		b.ss.log.Error("recording failed", "err", err)
		b.ss.cancel(errRecording)
	}
}

// hostSideMayTake gives the host side, once closed from here, a few
// seconds to close its end.
func (b *bridge) hostSideMayTake() {
	if b.giveUp == nil {
		b.giveUp = time.NewTimer(5 * time.Second)
	}
}

// cancelled takes the cancel's cause as the end reason (unless the host
// had ended it first) and tells the person why.
func (b *bridge) cancelled(ctx context.Context) {
	cause := context.Cause(ctx)
	if b.end.Reason == "" { // the host's exit, if it came first, stays the reason
		b.end = endOf(cause)
	}
	if msg := noticeOf(cause); msg != "" {
		b.ss.notify(msg)
	}
}

// agentRequest handles a request from the host side (ok false: the host
// side has closed). One well-formed exit goes on to the person; the rest
// is dropped (strings from an agent are bounded and escaped).
func (b *bridge) agentRequest(req *ssh.Request, ok bool) {
	if !ok {
		b.agentReqs = nil
		return
	}
	if !b.exited && exitRequest(req, &b.end) {
		b.exited = true
		forward(b.client, req)
	} else {
		b.ss.dropAgentRequest(req, &b.droppedLogged)
	}
}

// clientGone ends the host side too: the person closed the channel.
func (b *bridge) clientGone() {
	b.clientReqs = nil
	if !b.exited && b.end.Reason == "" {
		b.end.Reason = errClientGone.Error()
	}
	b.agent.Close()
	b.hostSideMayTake()
}

// clientRequest handles a request from the person on a started session
// (ok false: the person closed the channel).
func (b *bridge) clientRequest(req *ssh.Request, ok bool) {
	if !ok {
		b.clientGone()
		return
	}
	switch req.Type {
	case wire.ReqWindowChange:
		var w wire.WindowChange
		if wire.Unmarshal(req.Type, req.Payload, &w) == nil {
			if err := b.rec.Resize(w.Columns, w.Rows); err != nil {
				b.pumpErr(fmt.Errorf("%w: %v", errRecorder, err))
			}
			b.ss.watch.resize(w.Columns, w.Rows)
		}
		forward(b.agent, req)
	case wire.ReqSignal, wire.ReqEOW:
		forward(b.agent, req)
	case wire.ReqX11, wire.ReqAuthAgent:
		// Refused like the rest of forwarding.
		if req.WantReply {
			req.Reply(false, nil)
		}
	default:
		// A second shell/exec/pty-req on a started session.
		if req.WantReply {
			req.Reply(false, nil)
		}
	}
}

// deliver waits, once the host side has closed, for what it wrote to
// reach the person, then says how the session ended. After a cancel it
// does not wait long. A person who has stopped reading keeps the output
// pumps waiting: a cancel (kill, a timeout, a shutdown) still ends the
// session then.
func (b *bridge) deliver() SessionEnd {
	ctx := b.ctx
	delivered := false
	cut := b.giveUp != nil
	if !cut {
		select {
		case <-b.outDone:
			delivered = true
		case <-ctx.Done():
			b.cancelled(ctx)
			cut = true
		}
	}
	if cut {
		select {
		case <-b.outDone:
			delivered = true
		case <-time.After(time.Second):
		}
	}
	if !b.exited && b.end.Reason == "" {
		b.end.Reason = "agent lost"
		b.ss.notify(errAgentLost.Notice())
	}
	// EOF only when nothing writes to the person any more (x/crypto/ssh's
	// CloseWrite must not race a Write); the close that follows finish
	// ends the channel either way.
	if b.ss.noticesSent(time.Second) && delivered {
		b.client.CloseWrite()
	}
	return b.end
}

// forward sends req on to ch without asking for an answer, and answers it
// itself when it wants one (yes, unless ch is gone): the bridge's loop
// must never wait on a peer, or it would stop seeing kills and timeouts.
// The requests it forwards (window-change, signal, exit-status…) change
// nothing if refused.
func forward(ch ssh.Channel, req *ssh.Request) {
	_, err := ch.SendRequest(req.Type, false, req.Payload)
	if req.WantReply {
		req.Reply(err == nil, nil)
	}
}

// pump copies src to dst, showing every chunk to tee first: what reaches
// the other side has been recorded. It returns nil at src's EOF.
//
// A quiet session's pumps wait on small buffers (smallPump); a read that
// fills one means bytes are flowing, and the pump takes a big buffer from
// bigPumps until reads come back small again — so an idle session holds
// 512 bytes of pump buffers.
func pump(dst io.Writer, src io.Reader, tee func([]byte) error, n, active *atomic.Int64) error {
	small := make([]byte, smallPump)
	buf := small
	var big *[bigPump]byte
	defer func() {
		if big != nil {
			bigPumps.Put(big)
		}
	}()
	for {
		nr, err := src.Read(buf)
		if nr > 0 {
			active.Store(time.Now().UnixNano())
			if terr := tee(buf[:nr]); terr != nil {
				return fmt.Errorf("%w: %v", errRecorder, terr)
			}
			nw, werr := dst.Write(buf[:nr])
			n.Add(int64(nw))
			if werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case big == nil && nr == len(small):
			big = bigPumps.Get().(*[bigPump]byte)
			buf = big[:]
		case big != nil && nr < smallPump:
			bigPumps.Put(big)
			big, buf = nil, small
		}
	}
}

const (
	smallPump = 256
	bigPump   = 128 << 10 // several SSH packets: one read takes what has arrived, so fewer window adjustments and recorder events
)

var bigPumps = sync.Pool{New: func() any { return new([bigPump]byte) }}
