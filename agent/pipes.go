package agent

import (
	"io"
	"os"
	"sync"
	"syscall"
)

// startPipes starts a command without a terminal: stdin, stdout and
// stderr on pipes, each copied to or from the channel.
func (s *session) startPipes(attrs *syscall.SysProcAttr) error {
	s.cmd.SysProcAttr = attrs
	var files []*os.File // all six ends, until handed out
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for range 3 {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll()
			return err
		}
		files = append(files, r, w)
	}
	inR, inW, outR, outW, errR, errW := files[0], files[1], files[2], files[3], files[4], files[5]
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = inR, outW, errW
	err := s.cmd.Start()
	inR.Close() // the child's ends: ours are no longer needed
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return err
	}
	s.sid = s.cmd.Process.Pid
	s.outputs, s.input = []*os.File{outR, errR}, inW
	s.ended, s.exited, s.done = make(chan struct{}), make(chan struct{}), make(chan struct{})
	s.log.Info("session started", "pty", false, "pid", s.sid)
	go s.reap() // not in wg: a process that never ends must not hold the session
	s.wg.Go(func() {
		defer inW.Close() // the person's EOF reaches the process
		buf := make([]byte, copyBufSize)
		io.CopyBuffer(inW, s.ch, buf)
	})
	var outWG sync.WaitGroup
	copyOut := func(dst io.Writer, src *os.File) func() {
		return func() {
			defer outWG.Done()
			defer src.Close()
			buf := make([]byte, copyBufSize)
			io.CopyBuffer(dst, src, buf)
		}
	}
	outWG.Add(2)
	s.wg.Go(copyOut(s.ch, outR))
	s.wg.Go(copyOut(s.ch.Stderr(), errR))
	s.wg.Go(func() {
		select {
		case <-s.ended:
		case <-s.done: // given up on (terminate): stop has closed the outputs
		}
		outWG.Wait() // as sshd: until every writer of stdout and stderr is gone
		close(s.exited)
	})
	return nil
}
