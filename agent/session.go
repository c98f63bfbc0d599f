package agent

import (
	"context"
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

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/rr-gateway/rr/wire"
)

// copyBufSize is the size of each copy buffer: an SSH packet's worth.
const copyBufSize = 32 << 10

// session is one wire.ChannelSession channel and the process it runs.
type session struct {
	a    *Agent
	ch   ssh.Channel
	open wire.SessionOpen
	log  *slog.Logger

	pty     *wire.PTYRequest // set by pty-req before the start
	env     []string         // accepted env requests, NAME=value
	started bool

	cmd    *exec.Cmd
	ptmx   *os.File      // pty master (non-blocking, so Close interrupts reads), with a pty
	exited chan struct{} // closed when the process is reaped and its output drained
	state  *os.ProcessState
}

func (a *Agent) serveSession(ctx context.Context, nch ssh.NewChannel) {
	var open wire.SessionOpen
	if err := ssh.Unmarshal(nch.ExtraData(), &open); err != nil {
		nch.Reject(ssh.ConnectionFailed, "malformed session open")
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	s := &session{a: a, ch: ch, open: open, exited: make(chan struct{}),
		log: a.log.With("session", open.SessionID, "person", open.Person)}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in session", "panic", r, "stack", string(debug.Stack()))
			s.killGroup()
			ch.Close()
		}
	}()
	s.run(ctx, reqs)
}

// run handles the channel's requests until the session is over.
func (s *session) run(ctx context.Context, reqs <-chan *ssh.Request) {
	var ioWG sync.WaitGroup // copies between the channel and the process
	defer ioWG.Wait()
	exited := s.exited
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				// The channel is closed: the person left, the gateway ended
				// the session, or the tunnel dropped.
				s.end()
				return
			}
			s.handle(req, &ioWG)
		case <-exited:
			exited = nil
			s.sendExit()
			s.ch.CloseWrite()
			s.ch.Close()
			s.killGroup() // whatever it left behind in its group
			// Go on reading requests until the gateway's close arrives.
		case <-ctx.Done():
			s.end()
			return
		}
	}
}

// end kills the process group, if any, and closes the channel.
func (s *session) end() {
	s.ch.Close()
	if s.cmd == nil {
		return
	}
	s.killGroup()
	select {
	case <-s.exited:
	case <-time.After(s.a.cfg.KillGrace):
		s.cmd.Process.Signal(syscall.SIGKILL)
		unix.Kill(-s.cmd.Process.Pid, unix.SIGKILL)
		<-s.exited
	}
}

// killGroup sends SIGHUP to the session's process group and SIGKILL after
// KillGrace to whatever is left of it.
func (s *session) killGroup() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	if unix.Kill(-pgid, 0) != nil {
		return // nothing left
	}
	unix.Kill(-pgid, unix.SIGHUP)
	unix.Kill(-pgid, unix.SIGCONT)
	time.AfterFunc(s.a.cfg.KillGrace, func() { unix.Kill(-pgid, unix.SIGKILL) })
}

func (s *session) handle(req *ssh.Request, ioWG *sync.WaitGroup) {
	ok := false
	switch req.Type {
	case wire.ReqPTY:
		var p wire.PTYRequest
		if !s.started && wire.Unmarshal(req.Type, req.Payload, &p) == nil {
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
			s.pty.Columns, s.pty.Rows = w.Columns, w.Rows
			if s.ptmx != nil {
				ptmxControl(s.ptmx, func(fd int) {
					unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(w.Rows), Col: uint16(w.Columns),
						Xpixel: uint16(w.Width), Ypixel: uint16(w.Height)})
				})
			}
		}
	case wire.ReqSignal:
		var sig wire.Signal
		if wire.Unmarshal(req.Type, req.Payload, &sig) == nil && s.cmd != nil {
			ok = s.signal(sig.Name)
		}
	case wire.ReqShell, wire.ReqExec:
		if s.started {
			break
		}
		command := ""
		if req.Type == wire.ReqExec {
			var c wire.Command
			if wire.Unmarshal(req.Type, req.Payload, &c) != nil {
				break
			}
			command = c.Command
		}
		s.started, ok = true, true
		if req.WantReply {
			req.Reply(true, nil)
		}
		if err := s.start(command, ioWG); err != nil {
			s.log.Error("cannot start", "err", err)
			io.WriteString(s.ch.Stderr(), "rr-agent: cannot start the shell: "+err.Error()+"\r\n")
			s.ch.SendRequest(wire.ReqExitStatus, false, ssh.Marshal(&wire.ExitStatus{Status: 127}))
			s.ch.CloseWrite()
			s.ch.Close()
		}
		return
	}
	if req.WantReply {
		req.Reply(ok, nil)
	}
}

// signal delivers a named signal ("INT") to the session's foreground
// process group: the terminal's, with a pty, else the session's own.
func (s *session) signal(name string) bool {
	sig := unix.SignalNum("SIG" + name)
	if sig == 0 {
		return false
	}
	pgid := s.cmd.Process.Pid
	if s.ptmx != nil {
		ptmxControl(s.ptmx, func(fd int) {
			if fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err == nil && fg > 0 {
				pgid = fg
			}
		})
	}
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
		"SHELL=" + acct.shell, "PATH=" + path, "RR_SESSION_ID=" + s.open.SessionID,
	}
	if s.pty != nil && s.pty.Term != "" {
		env = append(env, "TERM="+s.pty.Term)
	}
	return append(env, s.env...)
}

// start runs the shell (command == "") or SHELL -c command.
func (s *session) start(command string, ioWG *sync.WaitGroup) error {
	acct := s.a.acct
	cmd := exec.Command(acct.shell)
	if command == "" {
		cmd.Args = []string{"-" + filepath.Base(acct.shell)} // a login shell
	} else {
		cmd.Args = []string{acct.shell, "-c", command}
	}
	cmd.Env = s.environment()
	cmd.Dir = acct.home
	if fi, err := os.Stat(cmd.Dir); err != nil || !fi.IsDir() {
		cmd.Dir = "/"
	}
	attrs := &syscall.SysProcAttr{}
	if acct.switchUser {
		attrs.Credential = &syscall.Credential{Uid: acct.uid, Gid: acct.gid, Groups: acct.groups}
	}
	s.cmd = cmd
	if s.pty != nil {
		return s.startPTY(attrs, ioWG)
	}
	return s.startPipes(attrs, ioWG)
}

func (s *session) startPTY(attrs *syscall.SysProcAttr, ioWG *sync.WaitGroup) error {
	// A session leader (and so its own process group) with the pty as its
	// controlling terminal (Ctty 0: its stdin, the pty).
	attrs.Setsid, attrs.Setctty = true, true
	ptmx, err := pty.StartWithAttrs(s.cmd, &pty.Winsize{Cols: uint16(s.pty.Columns), Rows: uint16(s.pty.Rows),
		X: uint16(s.pty.Width), Y: uint16(s.pty.Height)}, attrs)
	if err != nil {
		s.cmd = nil
		return err
	}
	if ptmx, err = pollable(ptmx); err != nil {
		s.killGroup()
		s.cmd.Wait()
		s.cmd = nil
		return err
	}
	s.ptmx = ptmx
	s.log.Info("session started", "pty", true, "pid", s.cmd.Process.Pid)
	outDone := make(chan struct{})
	ioWG.Add(3)
	go func() {
		defer ioWG.Done()
		buf := make([]byte, copyBufSize)
		io.CopyBuffer(ptmx, s.ch, buf) // EOF from the person: nothing to do on a pty
	}()
	go func() {
		defer ioWG.Done()
		defer close(outDone)
		buf := make([]byte, copyBufSize)
		io.CopyBuffer(s.ch, ptmx, buf) // ends with EIO once the last slave fd closes
	}()
	go func() {
		defer ioWG.Done()
		s.cmd.Wait()
		s.state = s.cmd.ProcessState
		// Drain what the shell wrote; if something it left behind still
		// holds the terminal, stop waiting for it.
		select {
		case <-outDone:
		case <-time.After(200 * time.Millisecond):
		}
		ptmx.Close() // interrupts the read if something else holds the terminal
		<-outDone
		close(s.exited)
	}()
	return nil
}

// pollable replaces f (creack/pty's master, left in blocking mode by its
// ioctls) with a non-blocking duplicate that Go's poller manages, so that
// Close interrupts a pending Read. f is closed.
func pollable(f *os.File) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("dup pty: %w", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pty non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), nil
}

// ptmxControl runs f on the master's descriptor without putting it back
// in blocking mode (as File.Fd would), safely against a concurrent Close.
func ptmxControl(ptmx *os.File, f func(fd int)) {
	if sc, err := ptmx.SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) { f(int(fd)) })
	}
}

func (s *session) startPipes(attrs *syscall.SysProcAttr, ioWG *sync.WaitGroup) error {
	attrs.Setpgid = true
	s.cmd.SysProcAttr = attrs
	inR, inW, err := os.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return err
	}
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = inR, outW, errW
	err = s.cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		s.cmd = nil
		return err
	}
	s.log.Info("session started", "pty", false, "pid", s.cmd.Process.Pid)
	var outWG sync.WaitGroup
	outWG.Add(2)
	ioWG.Add(4)
	go func() {
		defer ioWG.Done()
		defer inW.Close() // the person's EOF reaches the process
		buf := make([]byte, copyBufSize)
		io.CopyBuffer(inW, s.ch, buf)
	}()
	copyOut := func(dst io.Writer, src *os.File) {
		defer ioWG.Done()
		defer outWG.Done()
		defer src.Close()
		buf := make([]byte, copyBufSize)
		io.CopyBuffer(dst, src, buf)
	}
	go copyOut(s.ch, outR)
	go copyOut(s.ch.Stderr(), errR)
	go func() {
		defer ioWG.Done()
		s.cmd.Wait()
		s.state = s.cmd.ProcessState
		outWG.Wait()
		close(s.exited)
	}()
	return nil
}

// sendExit tells the gateway how the process ended.
func (s *session) sendExit() {
	st := s.state
	if st == nil {
		return
	}
	ws, _ := st.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		name := strings.TrimPrefix(unix.SignalName(ws.Signal()), "SIG")
		if name == "" {
			name = fmt.Sprint(int(ws.Signal()))
		}
		s.log.Info("session ended", "signal", name)
		s.ch.SendRequest(wire.ReqExitSignal, false, ssh.Marshal(&wire.ExitSignal{
			Signal: name, CoreDumped: ws.CoreDump(), Error: "", Lang: ""}))
		return
	}
	s.log.Info("session ended", "exit", st.ExitCode())
	s.ch.SendRequest(wire.ReqExitStatus, false, ssh.Marshal(&wire.ExitStatus{Status: uint32(st.ExitCode())}))
}
