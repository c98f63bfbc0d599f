package gateway

import "context"

// liveSession is a session from the moment its host side has started: its
// bridge, its recorder and how it ended so far. serve runs it on a
// goroutine of its own, whose stack holds the bridge's frames and little
// more, so that an idle session's stack settles at 4 KiB.
type liveSession struct {
	ss       *session
	bridge   *bridge
	rec      SessionRecorder
	end      SessionEnd // how it ended if nothing says otherwise
	finished bool
}

// serve bridges the session until it ends, makes its row and recording
// final, then calls closeChannel (runSession's end of the channel).
func (l *liveSession) serve(ctx context.Context, person string, closeChannel func()) {
	defer closeChannel()
	defer l.ss.srv.recoverPanic("session", "session", l.ss.id, "person", person)
	l.run(ctx)
}

// run bridges the session until it ends; the web console's sessions call
// it on their own goroutine.
func (l *liveSession) run(ctx context.Context) {
	defer l.close()
	l.bridge.run(ctx, l.finish)
}

// finish makes the session's row and recording final and tells its
// watchers, once; the bridge calls it before the person's channel closes.
func (l *liveSession) finish(e SessionEnd) {
	l.finished = true
	ss := l.ss
	ss.watch.end(watchEnd(e))
	ss.srv.finishSession(ss, l.rec, e)
	ss.killedBy = e.KilledBy
	close(ss.finished)
}

// close takes the session off the server's list and, if nothing finished
// it (its start failed, or a panic), finishes it with l.end.
func (l *liveSession) close() {
	s := l.ss.srv
	s.mu.Lock()
	delete(s.sessions, l.ss.id)
	s.mu.Unlock()
	if !l.finished {
		l.finish(l.end)
	}
}
