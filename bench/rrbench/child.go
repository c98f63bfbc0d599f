package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// child is a role running as a process of its own.
type child struct {
	role    string
	cmd     *exec.Cmd
	in      io.WriteCloser
	ready   map[string]string
	replies chan string
	mu      sync.Mutex // one command at a time
}

// mailbox holds the codes the gateway mailed, by address.
var mailbox = struct {
	sync.Mutex
	m map[string]chan string
}{m: map[string]chan string{}}

func mailFor(addr string) chan string {
	mailbox.Lock()
	defer mailbox.Unlock()
	ch := mailbox.m[addr]
	if ch == nil {
		ch = make(chan string, 16)
		mailbox.m[addr] = ch
	}
	return ch
}

// gatewayProcs, when above 0, is the GOMAXPROCS of the gateway processes
// alone (-gateway-procs).
var gatewayProcs int

func startChild(role, dir string, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, append([]string{"-dir", dir}, args...)...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	if role == "gateway" && gatewayProcs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(gatewayProcs))
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{role: role, cmd: cmd, in: in, replies: make(chan string, 1)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			kind, rest, _ := strings.Cut(sc.Text(), " ")
			switch kind {
			case "ready":
				ready <- rest
			case "mail":
				to, code, _ := strings.Cut(rest, " ")
				mailFor(to) <- code
			case "reply":
				c.replies <- rest
			}
		}
		close(ready)
		close(c.replies)
	}()
	select {
	case r, ok := <-ready:
		if !ok {
			cmd.Wait()
			return nil, fmt.Errorf("%s: exited before it was ready (%v)", role, cmd.ProcessState)
		}
		if err := json.Unmarshal([]byte(r), &c.ready); err != nil {
			return nil, err
		}
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		return nil, fmt.Errorf("%s: not ready after 5 minutes", role)
	}
	return c, nil
}

// do sends one command and decodes its reply into v (may be nil).
func (c *child) do(v any, command string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.in, command+"\n"); err != nil {
		return fmt.Errorf("%s: %s: %w", c.role, command, err)
	}
	r, ok := <-c.replies
	if !ok {
		return fmt.Errorf("%s: exited during %s", c.role, command)
	}
	var e struct{ Error string }
	if json.Unmarshal([]byte(r), &e) == nil && e.Error != "" {
		return fmt.Errorf("%s: %s: %s", c.role, command, e.Error)
	}
	if v != nil {
		return json.Unmarshal([]byte(r), v)
	}
	return nil
}

func (c *child) stats(gc bool) (procStats, error) {
	var s procStats
	cmd := "stats"
	if gc {
		cmd = "gcstats"
	}
	err := c.do(&s, cmd)
	return s, err
}

// stop closes the child's stdin (it ends its role) and waits for it,
// killing it after a while.
func (c *child) stop() {
	c.in.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}
