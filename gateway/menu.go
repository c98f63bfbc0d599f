package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/rr-gateway/rr/auth"
)

// hostEntry is one line of the host menu.
type hostEntry struct {
	Name   string
	Online bool
}

// reachableHosts lists the hosts in the store this person's team reaches.
func (c *personConn) reachableHosts(ctx context.Context) ([]hostEntry, error) {
	hosts, err := c.srv.cfg.Store.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	var out []hostEntry
	for _, h := range hosts {
		if auth.MayReach(c.login.Team, authHost(h)) {
			out = append(out, hostEntry{Name: h.Name, Online: c.srv.Online(h.Name)})
		}
	}
	return out, nil
}

func writeHostList(w io.Writer, hosts []hostEntry) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for i, h := range hosts {
		state := "offline"
		if h.Online {
			state = "online"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\n", i+1, h.Name, state)
	}
	tw.Flush()
}

// pickHost shows the hosts this person may reach. Without a terminal it
// prints the list and ends the session (exit 0); with one it asks which to
// open. Requests that arrive meanwhile (window changes) update its setup.
func (c *preStart) pickHost(ctx context.Context) (string, bool) {
	hosts, err := c.reachableHosts(ctx)
	if err != nil {
		c.log.Error("cannot list hosts", "err", err)
		c.end(1, "rr: internal error; cannot list hosts")
		return "", false
	}
	if len(hosts) == 0 {
		c.end(1, "rr: there are no hosts you may reach")
		return "", false
	}
	if c.st.pty == nil {
		io.WriteString(c.ch, "Hosts you may reach:\n")
		writeHostList(c.ch, hosts)
		sendExitStatus(c.ch, 0)
		return "", false
	}

	var host string
	ctx, cancel := context.WithTimeoutCause(ctx, c.srv.cfg.PromptGraceTime, errors.New("menu timed out"))
	defer cancel()
	if !c.converse(ctx, func() { host = menuLoop(c.ch, hosts, c.srv.Online) }) {
		return "", false
	}
	if host == "" {
		sendExitStatus(c.ch, 0)
		return "", false
	}
	return host, true
}

// converse runs talk, which reads and writes the person's terminal, while
// answering the channel's requests (window changes update its setup; a backlog
// of unread requests would stall the whole connection). It reports false
// if the person left or ctx ended first.
func (c *preStart) converse(ctx context.Context, talk func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		talk()
	}()
	for {
		select {
		case <-done:
			return true
		case req, ok := <-c.reqs:
			if !ok {
				c.ch.Close()
				<-done
				return false
			}
			if c.st.handle(c.personConn, req) && req.WantReply {
				req.Reply(false, nil) // a second shell/exec
			}
		case <-ctx.Done():
			c.ch.Close()
			<-done
			return false
		}
	}
}

// menuLoop asks on the person's terminal until they name an online host
// by number or name, or leave (empty line, Ctrl-C, Ctrl-D): then it
// returns "". The terminal is raw: this side echoes.
func menuLoop(rw io.ReadWriter, hosts []hostEntry, online func(string) bool) string {
	var b strings.Builder
	b.WriteString("Hosts you may reach:\n")
	writeHostList(&b, hosts)
	io.WriteString(rw, strings.ReplaceAll(b.String(), "\n", "\r\n"))
	for {
		io.WriteString(rw, "Host (number or name, empty to leave): ")
		line, ok := readLine(rw, 64, true)
		io.WriteString(rw, "\r\n")
		line = strings.TrimSpace(line)
		if !ok || line == "" {
			return ""
		}
		name := ""
		if n, err := strconv.Atoi(line); err == nil && n >= 1 && n <= len(hosts) {
			name = hosts[n-1].Name
		} else {
			for _, h := range hosts {
				if h.Name == line {
					name = h.Name
				}
			}
		}
		switch {
		case name == "":
			fmt.Fprintf(rw, "rr: %q is not in the list\r\n", line)
		case !online(name):
			fmt.Fprintf(rw, "rr: %s is offline\r\n", name)
		default:
			return name
		}
	}
}

// readLine reads one line from a raw terminal a byte at a time, so that
// nothing typed after Enter is consumed (it goes to the host's shell). It
// keeps printable bytes (ASCII and UTF-8), echoes them if echo is set,
// handles backspace (a whole character) and Ctrl-U (the whole line) as a
// terminal does, drops escape sequences and other control bytes, and keeps
// at most max bytes. A line feed before anything else is the end of a
// CR LF the line before ended in, not an empty line. ok is false on
// Ctrl-C, Ctrl-D or a read error.
func readLine(rw io.ReadWriter, max int, echo bool) (line string, ok bool) {
	var buf []byte
	var one [1]byte
	const (
		plain  = iota
		escape // after ESC
		csi    // after ESC [: parameters until a final byte in 0x40–0x7e
		ss3    // after ESC O: one more byte
	)
	state, first := plain, true
	erase := func(n int) { // the last n characters
		for ; n > 0 && len(buf) > 0; n-- {
			_, size := utf8.DecodeLastRune(buf)
			buf = buf[:len(buf)-size]
			if echo {
				io.WriteString(rw, "\b \b")
			}
		}
	}
	for {
		if _, err := io.ReadFull(rw, one[:]); err != nil {
			return "", false
		}
		c := one[0]
		wasFirst := first
		first = false
		switch {
		case state == escape:
			switch c {
			case '[':
				state = csi
			case 'O':
				state = ss3
			default:
				state = plain
			}
		case state == csi:
			if c >= 0x40 && c <= 0x7e {
				state = plain
			}
		case state == ss3:
			state = plain
		case c == 0x1b:
			state = escape
		case c == '\n' && wasFirst:
			// the rest of the previous line's CR LF
		case c == '\r' || c == '\n':
			return string(buf), true
		case c == 0x03 || c == 0x04:
			return "", false
		case c == 0x7f || c == 0x08:
			erase(1)
		case c == 0x15: // Ctrl-U
			erase(len(buf))
		case c >= 0x20 && c != 0x7f && len(buf) < max:
			buf = append(buf, c)
			if echo {
				rw.Write(one[:])
			}
		}
	}
}
