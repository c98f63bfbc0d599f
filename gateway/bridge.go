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
// host's until the session ends, then calls finish with how it ended —
// before the person's channel closes, so that when their ssh exits the
// recording and the session row are final.
//
// Goroutines: three pumps (person→host, host stdout→person, host
// stderr→person; the last output pump to finish closes outDone);
// requests both ways are handled here. The host side ending (its channel
// closed) ends the session once its output is delivered; the person
// leaving closes the host side; a cancelled context closes both and tells
// the person its cause.
func (ss *session) bridge(ctx context.Context, clientReqs <-chan *ssh.Request, agent ssh.Channel, agentReqs <-chan *ssh.Request,
	rec SessionRecorder, finish func(SessionEnd)) {
	client := ss.client
	stopLimits := ss.limits(ss.srv.cfg.IdleTimeout, ss.srv.cfg.MaxSessionLength)
	defer stopLimits()
	var wg sync.WaitGroup
	// outDone is closed once both output pumps have delivered everything.
	outDone := make(chan struct{})
	var outLeft atomic.Int32
	outLeft.Store(2)
	outPumpDone := func() {
		if outLeft.Add(-1) == 0 {
			close(outDone)
		}
	}
	pumpErr := func(err error) {
		select {
		case <-ss.finished:
			return // bytes after the end: the closed recording refused them, as it should
		default:
		}
		if errors.Is(err, errRecorder) {
			ss.log.Error("recording failed", "err", err)
			ss.cancel(errRecording)
		}
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := pump(agent, client, rec.Input, &ss.bytesIn, &ss.active); err != nil {
			pumpErr(err)
			return
		}
		agent.CloseWrite() // the person's EOF reaches the host
	}()
	go func() {
		defer wg.Done()
		defer outPumpDone()
		pumpErr(pump(client, agent, rec.Output, &ss.bytesOut, &ss.active))
	}()
	go func() {
		defer wg.Done()
		defer outPumpDone()
		pumpErr(pump(client.Stderr(), agent.Stderr(), rec.Output, &ss.bytesOut, &ss.active))
	}()
	defer wg.Wait()
	defer client.Close()
	defer agent.Close()

	var end SessionEnd
	exited, droppedLogged := false, false
	var giveUp <-chan time.Time // after a cancel: how long the host side may take to close
	// cancelled takes the cancel's cause as the end reason (unless the
	// host had ended it first) and tells the person why.
	cancelled := func() {
		cause := context.Cause(ctx)
		if end.Reason == "" { // the host's exit, if it came first, stays the reason
			end = endOf(cause)
		}
		if msg := noticeOf(cause); msg != "" {
			ss.notify(msg)
		}
	}
	for agentReqs != nil {
		select {
		case <-giveUp:
			ss.log.Warn("host side did not close in time")
			agentReqs = nil
			continue
		case req, ok := <-agentReqs:
			if !ok {
				agentReqs = nil
				continue
			}
			// One well-formed exit goes on to the person; the rest is
			// dropped (strings from an agent are bounded and escaped).
			if !exited && exitRequest(req, &end) {
				exited = true
				forward(client, req)
			} else {
				ss.dropAgentRequest(req, &droppedLogged)
			}
		case req, ok := <-clientReqs:
			if !ok {
				// The person closed the channel: end the host side too.
				clientReqs = nil
				if !exited && end.Reason == "" {
					end.Reason = errClientGone.Error()
				}
				agent.Close()
				if giveUp == nil {
					t := time.NewTimer(5 * time.Second)
					defer t.Stop()
					giveUp = t.C
				}
				continue
			}
			switch req.Type {
			case wire.ReqWindowChange:
				var w wire.WindowChange
				if wire.Unmarshal(req.Type, req.Payload, &w) == nil {
					if err := rec.Resize(w.Columns, w.Rows); err != nil {
						pumpErr(fmt.Errorf("%w: %v", errRecorder, err))
					}
				}
				forward(agent, req)
			case wire.ReqSignal, wire.ReqEOW:
				forward(agent, req)
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
		case <-ctx.Done():
			cancelled()
			// End the host side; the person's channel closes once the
			// session is finalized (or at once if the host side hangs).
			agent.Close()
			if giveUp == nil {
				t := time.NewTimer(5 * time.Second)
				defer t.Stop()
				giveUp = t.C
			}
			ctx = context.Background()
		}
	}
	// The host side has closed. Deliver what it wrote, then close; after a
	// cancel, not for long. A person who has stopped reading keeps the
	// output pumps waiting: a cancel (kill, a timeout, a shutdown) still
	// ends the session then.
	delivered := false
	cut := giveUp != nil
	if !cut {
		select {
		case <-outDone:
			delivered = true
		case <-ctx.Done():
			cancelled()
			cut = true
		}
	}
	if cut {
		select {
		case <-outDone:
			delivered = true
		case <-time.After(time.Second):
		}
	}
	if !exited && end.Reason == "" {
		end.Reason = "agent lost"
		ss.notify(errAgentLost.Notice())
	}
	// EOF only when nothing writes to the person any more (x/crypto/ssh's
	// CloseWrite must not race a Write); the close that follows finish
	// ends the channel either way.
	if ss.noticesSent(time.Second) && delivered {
		client.CloseWrite()
	}
	finish(end)
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
// 3 KiB of pump buffers.
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
	smallPump = 1 << 10
	bigPump   = 128 << 10 // several SSH packets: one read takes what has arrived, so fewer window adjustments and recorder events
)

var bigPumps = sync.Pool{New: func() any { return new([bigPump]byte) }}
