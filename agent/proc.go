package agent

import (
	"bytes"
	"os"
	"strconv"

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
	alive := unix.Kill(-sid, sig) == nil
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
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	self := os.Getpid()
	var pids []int
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		if s, zombie, ok := statSession(b); ok && s == sid && !zombie {
			pids = append(pids, pid)
		}
	}
	return pids
}

// statSession parses /proc/PID/stat: "pid (comm) state ppid pgrp session
// …", where comm may hold spaces and parentheses (so split after the last
// ')').
func statSession(b []byte) (sid int, zombie, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 4 {
		return 0, false, false
	}
	sid, err := strconv.Atoi(string(f[3]))
	if err != nil {
		return 0, false, false
	}
	return sid, string(f[0]) == "Z", true
}
