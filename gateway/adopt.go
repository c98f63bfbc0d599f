package gateway

import (
	"context"

	"golang.org/x/crypto/ssh"
)

// connDuty serves a person's logged-in connection on one goroutine: new
// channels, global requests, the unused connection's timer and, once it
// has started, the connection's first session (adopt), whose bridge it
// runs in the same select. An idle connection with a session so costs
// one goroutine, not one for the connection and one for the session; its
// frames are this loop's and little more, so that its stack stays at
// 4 KiB. A second session on the connection runs on a goroutine of its
// own (liveSession.serve).
type connDuty struct {
	c      *personConn
	sc     *ssh.ServerConn
	ctx    context.Context
	cancel context.CancelCauseFunc
	chans  <-chan ssh.NewChannel // nil once closed: the connection is gone
	reqs   <-chan *ssh.Request   // nil once closed
	unused *unusedTimer
	a      *adoption
}

// adoption is a started session handed to its connection's goroutine.
type adoption struct {
	live         *liveSession
	ctx          context.Context
	closeChannel func()
}

// handOff runs a session that has started on its connection's goroutine
// if that goroutine is free and waiting, else on a goroutine of its own.
func (c *personConn) handOff(a adoption) {
	select {
	case c.adopt <- a:
	default:
		go a.live.serve(a.ctx, c.person, a.closeChannel)
	}
}

// run serves the connection until it ends, and the session it runs.
func (d *connDuty) run() {
	defer d.end()
	unused := d.unused
	for d.chans != nil || d.a != nil {
		b := d.bridge()
		select {
		case <-unused.c:
			d.c.log.Info("connection closed: no channel open", "for", unused.wait)
			return
		case <-unused.ended:
			unused.sessionEnded(d.c.sessions.Load())
		case req, ok := <-d.reqs:
			d.request(req, ok)
		case nch, ok := <-d.chans:
			d.newChannel(nch, ok)
		case a := <-d.adoptions():
			d.begin(a)
		case <-b.giveUpC():
			b.gaveUp()
		case req, ok := <-b.agentRequests():
			b.agentRequest(req, ok)
		case req, ok := <-b.clientRequests():
			b.clientRequest(req, ok)
		case <-b.done():
			b.cancel()
		}
		if b != nil && !b.open() {
			d.endSession()
		}
	}
}

// bridge is the adopted session's bridge, nil if none runs here.
func (d *connDuty) bridge() *bridge {
	if d.a == nil {
		return nil
	}
	return d.a.live.bridge
}

// adoptions offers the connection's goroutine to a session that has
// started, while it runs none.
func (d *connDuty) adoptions() <-chan adoption {
	if d.a != nil {
		return nil
	}
	return d.c.adopt
}

func (d *connDuty) newChannel(nch ssh.NewChannel, ok bool) {
	if !ok {
		d.chans = nil
		return
	}
	d.c.newChannel(d.ctx, nch, d.unused)
}

func (d *connDuty) request(req *ssh.Request, ok bool) {
	if !ok {
		d.reqs = nil
		return
	}
	d.c.globalRequest(req)
}

func (d *connDuty) begin(a adoption) {
	d.a = &a
	a.live.bridge.begin(a.ctx)
}

// endSession delivers the adopted session's last output, makes its row
// and recording final and closes its channel, as liveSession.serve does
// for a session on a goroutine of its own.
func (d *connDuty) endSession() {
	a := d.a
	d.a = nil
	defer a.closeChannel()
	defer a.live.close()
	defer a.live.bridge.stop()
	a.live.finish(a.live.bridge.deliver())
}

// end closes the connection. After a panic it first ends the adopted
// session, if one was running, as endSession would have.
func (d *connDuty) end() {
	if r := recover(); r != nil {
		d.c.srv.logPanic("connection", r, "person", d.c.person, "remote", d.c.remote)
	}
	if a := d.a; a != nil {
		d.a = nil
		a.live.bridge.stop()
		a.live.close()
		a.closeChannel()
	}
	d.unused.stop()
	d.c.keepalive.Stop()
	d.cancel(errClientGone)
	d.c.auditProbes()
	d.c.auditDownloadSums()
	d.sc.Close()
}
