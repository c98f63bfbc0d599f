package agent

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/rr-gateway/rr/wire"
	"golang.org/x/sys/unix"
)

// Once a pty session's process has exited, its output is read to the
// end. If processes it left behind still hold the terminal, the master is
// closed once the output stays idle for ptyIdle, or after ptyDrainMax of
// output; with none left, every buffered byte is read (the master then
// returns EIO), and only ptyOrphanIdle without a byte closes it (a
// process outside the session holding the terminal). Time spent waiting
// for the gateway to take the output never counts.
const (
	ptyIdle       = 100 * time.Millisecond
	ptyDrainMax   = 2 * time.Second
	ptyOrphanIdle = 2 * time.Second
)

func (s *session) startPTY(attrs *syscall.SysProcAttr) error {
	attrs.Setctty = true // the pty (its stdin, Ctty 0) as controlling terminal
	ptmx, tty, err := pty.Open()
	if err != nil {
		return err
	}
	err = s.prepareTTY(ptmx, tty)
	if err == nil {
		s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = tty, tty, tty
		s.cmd.SysProcAttr = attrs
		err = s.cmd.Start()
	}
	tty.Close() // the child's end
	if err != nil {
		ptmx.Close()
		return err
	}
	s.sid = s.cmd.Process.Pid
	s.ended, s.exited, s.done = make(chan struct{}), make(chan struct{}), make(chan struct{})
	go s.reap() // not in wg: a process that never ends must not hold the session
	if ptmx, err = pollable(ptmx); err != nil {
		// The process runs: stop ends it and reaps it.
		return err
	}
	s.ptmx = ptmx
	s.log.Info("session started", "pty", true, "pid", s.sid)

	var moved atomic.Uint64 // bytes read from the master and written to the channel
	var writing atomic.Bool
	outDone := make(chan struct{})
	s.wg.Go(func() {
		buf := make([]byte, copyBufSize)
		io.CopyBuffer(ptmx, s.ch, buf) // the person's EOF means nothing to a pty
	})
	s.wg.Go(func() {
		defer close(outDone)
		buf := make([]byte, copyBufSize)
		for {
			n, err := ptmx.Read(buf) // EIO once the last slave descriptor is closed
			if n > 0 {
				moved.Add(uint64(n))
				writing.Store(true)
				_, werr := s.ch.Write(buf[:n])
				writing.Store(false)
				moved.Add(1)
				if werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	s.wg.Go(func() {
		select {
		case <-s.ended:
		case <-s.done: // given up on (terminate): stop has closed the master
			<-outDone
			close(s.exited)
			return
		}
		tick := time.NewTicker(ptyIdle)
		defer tick.Stop()
		last, budget, idle := moved.Load(), ptyDrainMax, time.Duration(0)
	drain:
		for {
			select {
			case <-outDone:
				break drain
			case <-tick.C:
			}
			if writing.Load() {
				continue // the gateway is taking its time: not ours to count
			}
			left := signalSession(s.sid, 0)
			if now := moved.Load(); now != last {
				last, idle = now, 0
				if budget -= ptyIdle; left && budget <= 0 {
					break drain
				}
				continue
			}
			idle += ptyIdle
			if left && idle >= ptyIdle || idle >= ptyOrphanIdle {
				break drain
			}
		}
		ptmx.Close() // interrupts the read if it still waits
		<-outDone
		close(s.exited)
	})
	return nil
}

// prepareTTY sizes the terminal, sets the modes the client asked for
// and, for a session run as another account, gives it its terminal as
// sshd does (owner, group tty, mode 0620), so that what reopens it
// ($(tty), screen, pinentry) can.
func (s *session) prepareTTY(ptmx, tty *os.File) error {
	if err := setWinsize(int(ptmx.Fd()), s.pty); err != nil {
		return err
	}
	if err := applyModes(int(tty.Fd()), []byte(s.pty.Modes)); err != nil {
		return fmt.Errorf("terminal modes: %w", err)
	}
	acct := s.a.acct
	if !acct.switchUser {
		return nil
	}
	if err := tty.Chown(int(acct.uid), int(acct.ttyGID)); err != nil {
		return fmt.Errorf("give the terminal to %s: %w", acct.name, err)
	}
	return tty.Chmod(0o620)
}

// setWinsize gives the terminal of master fd the size in p; a size too
// big for the terminal's 16 bits is clamped (65536 must not become 0).
func setWinsize(fd int, p *wire.PTYRequest) error {
	clamp := func(v uint32) uint16 { return uint16(min(v, 0xffff)) }
	return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: clamp(p.Rows), Col: clamp(p.Columns),
		Xpixel: clamp(p.Width), Ypixel: clamp(p.Height)})
}

// pollable replaces f (creack/pty's master, left in blocking mode by its
// ioctls) with a non-blocking duplicate that Go's poller manages, so that
// Close interrupts a pending Read. f is closed.
func pollable(f *os.File) (*os.File, error) {
	// Close-on-exec from the start: another session forking meanwhile
	// must not inherit this master.
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("dup pty: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pty non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), nil
}

// ptmxControl runs f on the master's descriptor without putting it back
// in blocking mode (as File.Fd would, and as pty.Setsize does through it),
// safely against a concurrent Close.
func ptmxControl(ptmx *os.File, f func(fd int)) {
	if sc, err := ptmx.SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) { f(int(fd)) })
	}
}
