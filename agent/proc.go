package agent

import (
	"os"
	"unsafe"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// signalSession sends sig (0: only check) to every process of the session
// sid: its process group, and every process whose session is sid (an
// interactive shell's jobs have groups of their own). It says whether
// anything was there to receive it. A process that left the session
// (setsid, a daemon) is beyond reach: only a cgroup could follow it.
func signalSession(sid int, sig unix.Signal) bool {
	if sid <= 0 {
		return false
	}
	// The group at once; not counted: its leader, kept a zombie until the
	// session is over (session.reap), answers too.
	unix.Kill(-sid, sig)
	alive := false
	for _, pid := range sessionMembers(sid) {
		if unix.Kill(pid, sig) == nil {
			alive = true
		}
	}
	return alive
}

// sessionMembers lists the live (not zombie) processes whose session id
// is sid, from /proc. The agent itself is never among them.
func sessionMembers(sid int) []int {
	procs, err := procfs.AllProcs()
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, p := range procs {
		if p.PID == self {
			continue
		}
		st, err := p.Stat()
		if err != nil {
			continue // gone meanwhile
		}
		if st.Session == sid && st.State != "Z" {
			pids = append(pids, p.PID)
		}
	}
	return pids
}

// siginfoChild is the start of Linux's siginfo_t for SIGCHLD, as waitid
// fills it on 64-bit platforms: signo, errno, code, padding, then the
// union's pid, uid and status.
type siginfoChild struct {
	Signo, Errno, Code, _ int32
	Pid                   int32
	UID                   uint32
	Status                int32
}

// si_code values of SIGCHLD (asm-generic/siginfo.h).
const (
	cldKilled = 2
	cldDumped = 3
)

// childStatus reads how a child ended from what waitid filled in.
func childStatus(si *unix.Siginfo) exitStatus {
	c := (*siginfoChild)(unsafe.Pointer(si))
	switch c.Code {
	case cldKilled:
		return exitStatus{signal: unix.Signal(c.Status)}
	case cldDumped:
		return exitStatus{signal: unix.Signal(c.Status), core: true}
	}
	return exitStatus{code: int(c.Status)}
}
