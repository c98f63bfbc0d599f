package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/rr-gateway/rr/wire"
)

// copyBufSize is the size of each copy buffer: an SSH packet's worth.
const copyBufSize = 32 << 10

// session is one wire.ChannelSession channel and the process it runs.
//
// Lifecycle: serveSession accepts the channel and runs the request loop
// (run) in its own goroutine. pty-req and env are remembered; shell or
// exec starts the process (start), its copy goroutines and its waiter. The
// loop ends when the process has exited and its output is drained (finish
// sends exit-status or exit-signal, EOF, close), when the gateway closes
// the channel, or when ctx ends (the tunnel dropped or Run is stopping).
// Then stop closes the channel, ends the process's session (SIGHUP, SIGKILL
// after KillGrace) and unblocks the copies; serveSession returns once every
// goroutine of the session (wg) has.
//
// Fields are written by the loop's goroutine only, before the goroutines
// that read them start, except status (written before ended is closed).
type session struct {
	a    *Agent
	ch   ssh.Channel
	open wire.SessionOpen
	log  *slog.Logger
	wg   sync.WaitGroup // every goroutine of the session

	pty     *wire.PTYRequest // set by pty-req before the start
	env     []string         // accepted env requests, NAME=value
	started bool

	cmd     *exec.Cmd
	sid     int           // the process's id, its session and process group id; 0 if none
	ptmx    *os.File      // pty master (non-blocking, so Close interrupts reads), with a pty
	outputs []*os.File    // read ends of stdout and stderr, without a pty
	input   *os.File      // write end of stdin, without a pty
	status  exitStatus    // how the process ended
	ended   chan struct{} // closed once the process has ended (a zombie still, see reap)
	exited  chan struct{} // closed once it has ended and its output is drained
	done    chan struct{} // closed by stop once nothing will signal the session again
}

// exitStatus is how a session's process ended.
type exitStatus struct {
	code   int         // exit status, if not signal
	signal unix.Signal // the signal that ended it, or 0
	core   bool
}

func (a *Agent) serveSession(ctx context.Context, log *slog.Logger, nch ssh.NewChannel) {
	var open wire.SessionOpen
	if err := ssh.Unmarshal(nch.ExtraData(), &open); err != nil || open.SessionID == "" {
		log.Warn("malformed session channel refused", "err", err)
		nch.Reject(ssh.ConnectionFailed, "malformed "+wire.ChannelSession+" open data")
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		log.Warn("session channel accept failed", "session", open.SessionID, "err", err)
		return
	}
	s := &session{a: a, ch: ch, open: open,
		log: log.With("session", open.SessionID, "person", open.Person, "team", open.Team)}
	s.log.Info("session opened")
	// Deferred in reverse: recover, then end everything, then wait.
	defer s.wg.Wait()
	defer s.stop(reqs)
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in session", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	s.run(ctx, reqs)
}

// run handles the channel's requests until the session is over.
func (s *session) run(ctx context.Context, reqs <-chan *ssh.Request) {
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				s.log.Info("session channel closed by the gateway")
				return
			}
			if done := s.handle(req); done {
				return
			}
		case <-s.exited: // nil, so never, until started
			s.finish()
			return
		case <-ctx.Done():
			s.log.Info("session ended: tunnel lost or agent stopping")
			return
		}
	}
}

// finish reports how the process ended, then EOF and close (wire's order).
func (s *session) finish() {
	if st := s.status; st.signal != 0 {
		name := strings.TrimPrefix(unix.SignalName(st.signal), "SIG")
		if name == "" {
			name = fmt.Sprint(int(st.signal))
		}
		s.log.Info("session ended", "signal", name)
		s.ch.SendRequest(wire.ReqExitSignal, false, ssh.Marshal(&wire.ExitSignal{Signal: name, CoreDumped: st.core}))
	} else {
		s.log.Info("session ended", "exit", st.code)
		s.ch.SendRequest(wire.ReqExitStatus, false, ssh.Marshal(&wire.ExitStatus{Status: uint32(st.code)}))
	}
	s.ch.CloseWrite()
	s.ch.Close()
}

// stop closes the channel, ends whatever runs in the session, and
// unblocks the copies. The gateway's close (which ends the channel's
// reads and requests) may come later; a goroutine waits for it.
func (s *session) stop(reqs <-chan *ssh.Request) {
	s.ch.Close()
	s.wg.Go(func() { ssh.DiscardRequests(reqs) })
	if s.sid == 0 {
		return
	}
	s.terminate()
	close(s.done) // the process may be reaped now (reap)
	// Whatever escaped the session and still holds an output must not keep
	// the session's goroutines.
	if s.ptmx != nil {
		s.ptmx.Close()
	}
	for _, f := range s.outputs {
		f.Close()
	}
	if s.input != nil {
		s.input.Close() // a copy blocked writing to a stdin nobody reads
	}
}

// unkillableWait is how long terminate waits, after SIGKILL, for the
// session's process to end; a variable for the tests.
var unkillableWait = 10 * time.Second

// terminate sends SIGHUP (and SIGCONT, for stopped jobs) to every process
// of the session, then SIGKILL to what is left after KillGrace, and
// returns once the process itself has ended — or, if even SIGKILL does not
// end it (uninterruptible sleep on a hung disk or NFS mount), after
// unkillableWait: the session is left to it, so that it cannot hold the
// tunnel and every other session.
func (s *session) terminate() {
	if signalSession(s.sid, unix.SIGHUP) {
		signalSession(s.sid, unix.SIGCONT)
		grace := time.NewTimer(s.a.cfg.KillGrace)
		defer grace.Stop()
		tick := time.NewTicker(50 * time.Millisecond) // nothing tells us when a non-child dies
		defer tick.Stop()
	wait:
		for {
			select {
			case <-grace.C:
				// Again while any is left: one forked between the scan
				// of /proc and the kill escapes a single pass.
				for pass := 0; pass < 20 && signalSession(s.sid, unix.SIGKILL); pass++ {
					if pass == 0 {
						s.log.Info("session's processes killed after the grace period")
					}
					time.Sleep(10 * time.Millisecond)
				}
				break wait
			case <-tick.C:
				if !signalSession(s.sid, 0) {
					break wait
				}
			}
		}
	}
	select {
	case <-s.ended:
		return
	default:
	}
	signalSession(s.sid, unix.SIGKILL) // a process that ignored SIGHUP and left nothing behind
	t := time.NewTimer(unkillableWait)
	defer t.Stop()
	select {
	case <-s.ended:
	case <-t.C:
		s.log.Error("the session's process survives SIGKILL (uninterruptible sleep?); the session ends without it", "pid", s.sid)
	}
}

// handle answers one request, and says whether the session is over.
func (s *session) handle(req *ssh.Request) (done bool) {
	ok := false
	switch req.Type {
	case wire.ReqPTY:
		var p wire.PTYRequest
		if !s.started && s.pty == nil && wire.Unmarshal(req.Type, req.Payload, &p) == nil {
			s.pty, ok = &p, true
		}
	case wire.ReqEnv:
		var e wire.Env
		if !s.started && wire.Unmarshal(req.Type, req.Payload, &e) == nil && wire.AcceptEnv(e.Name) {
			s.env, ok = append(s.env, e.Name+"="+e.Value), true
		} else {
			s.log.Debug("env refused", "name", e.Name)
		}
	case wire.ReqWindowChange:
		var w wire.WindowChange
		if wire.Unmarshal(req.Type, req.Payload, &w) == nil && s.pty != nil {
			s.pty.Columns, s.pty.Rows, s.pty.Width, s.pty.Height = w.Columns, w.Rows, w.Width, w.Height
			if s.ptmx != nil {
				ptmxControl(s.ptmx, func(fd int) { setWinsize(fd, s.pty) })
			}
		}
		ok = true
	case wire.ReqSignal:
		var sig wire.Signal
		if s.sid != 0 && wire.Unmarshal(req.Type, req.Payload, &sig) == nil {
			ok = s.signal(sig.Name)
		}
	case wire.ReqShell, wire.ReqExec:
		if s.started {
			break // one process per channel
		}
		command := ""
		if req.Type == wire.ReqExec {
			var c wire.Command
			if wire.Unmarshal(req.Type, req.Payload, &c) != nil {
				break
			}
			command = c.Command
		}
		s.started = true
		if req.WantReply {
			req.Reply(true, nil)
		}
		if err := s.start(command); err != nil {
			s.cannotStart(err)
			return true
		}
		return false
	}
	// x11-req, auth-agent-req@openssh.com, subsystem and anything unknown
	// are refused.
	if req.WantReply {
		req.Reply(ok, nil)
	}
	return false
}

// cannotStart tells the person the process could not start, and ends the
// channel as a shell would: 126 when it is not executable, else 127.
func (s *session) cannotStart(err error) {
	s.log.Error("cannot start shell", "err", err)
	status := uint32(127)
	if errors.Is(err, os.ErrPermission) {
		status = 126
	}
	io.WriteString(s.ch.Stderr(), "rr-agent: cannot start shell: "+err.Error()+"\r\n")
	s.ch.SendRequest(wire.ReqExitStatus, false, ssh.Marshal(&wire.ExitStatus{Status: status}))
	s.ch.CloseWrite()
	s.ch.Close()
}

// signal delivers a named signal ("INT") to the process group it is meant
// for: with a pty, the terminal's foreground group (where ^C would go, so
// an interactive shell's running job gets it); else the session's own.
func (s *session) signal(name string) bool {
	sig := unix.SignalNum("SIG" + name)
	if sig == 0 {
		s.log.Debug("unknown signal refused", "signal", name)
		return false
	}
	pgid := s.sid
	if s.ptmx != nil {
		ptmxControl(s.ptmx, func(fd int) {
			if fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err == nil && fg > 0 {
				pgid = fg
			}
		})
	}
	s.log.Info("signal", "signal", name, "pgid", pgid)
	return unix.Kill(-pgid, sig) == nil
}

// environment is what a login shell of the account would have.
func (s *session) environment() []string {
	acct := s.a.acct
	path := "/usr/local/bin:/usr/bin:/bin"
	if acct.uid == 0 {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	env := []string{
		"HOME=" + acct.home, "USER=" + acct.name, "LOGNAME=" + acct.name,
		"SHELL=" + acct.shell, "PATH=" + path,
	}
	if s.pty != nil && s.pty.Term != "" {
		env = append(env, "TERM="+s.pty.Term)
	}
	env = append(env, s.env...)
	return append(env, "RR_SESSION_ID="+s.open.SessionID) // last: it wins
}

// start runs the shell as a login shell (command == "") or SHELL -c
// command, in a new session (so a new process group), as the account.
func (s *session) start(command string) error {
	acct := s.a.acct
	cmd := exec.Command(acct.shell)
	if command == "" {
		cmd.Args = []string{"-" + filepath.Base(acct.shell)} // a login shell
	} else {
		cmd.Args = []string{acct.shell, "-c", command}
	}
	cmd.Env = s.environment()
	cmd.Dir = "/"
	if fi, err := os.Stat(acct.home); err == nil && fi.IsDir() {
		cmd.Dir = acct.home
	}
	// Setsid, as sshd does for every session: the process leads a new
	// session and process group, so that everything it starts, even jobs
	// an interactive shell puts in groups of their own, can be found and
	// ended (terminate).
	attrs := &syscall.SysProcAttr{Setsid: true}
	if acct.switchUser {
		attrs.Credential = &syscall.Credential{Uid: acct.uid, Gid: acct.gid, Groups: acct.groups}
	}
	s.cmd = cmd
	if s.pty != nil {
		return s.startPTY(attrs)
	}
	return s.startPipes(attrs)
}

// reap learns how the process ended without reaping it (waitid with
// WNOWAIT): the zombie keeps its pid — the number of the session and of
// its process group — from going to another process while the session
// may still signal them (terminate, a signal request, the pty's drain);
// once stop is done with the session, it reaps it.
func (s *session) reap() {
	var si unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, s.sid, &si, unix.WEXITED|unix.WNOWAIT, nil)
		if err == nil {
			s.status = childStatus(&si)
			break
		}
		if err != unix.EINTR {
			s.log.Error("waiting for the session's process", "err", err)
			s.status = exitStatus{code: 255}
			break
		}
	}
	close(s.ended)
	<-s.done
	s.cmd.Wait()
}

// ServeChannel serves one wire.ChannelSession channel (its extra data a
// wire.SessionOpen) that arrived on any SSH connection, not only a tunnel
// to a gateway, until the session ends or ctx is done; the benchmarks'
// one-hop baseline (bench/) serves people's channels with it directly.
func (a *Agent) ServeChannel(ctx context.Context, nch ssh.NewChannel) {
	a.serveSession(ctx, a.log, nch)
}
