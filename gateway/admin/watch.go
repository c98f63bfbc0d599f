package admin

import (
	"errors"
	"io"

	"github.com/rr-gateway/rr/auth"
)

// WatchTerminal is the console's terminal, lent to a watch (Config.Watch)
// until it returns.
type WatchTerminal struct {
	// Out is the terminal's output, untranslated: the session's bytes go
	// to it as they are.
	Out io.Writer
	// Keys starts reading what the watcher types, once the questions are
	// asked (call it once); the channel closes when their input ends.
	Keys func() <-chan []byte
	// Ask asks the host's passphrase (not echoed).
	Ask auth.Prompter
	// TTY: the watcher has a terminal in raw mode.
	TTY bool
}

// term is how the console reaches its person beyond a command's output:
// where a change's second factor is asked, and the terminal a watch takes.
type term struct {
	ask   auth.Prompter
	raw   io.Writer   // the output before any "\n" → "\r\n"; nil: no terminal (Exec)
	lines *lineReader // nil: no input (Exec)
	tty   bool
	done  <-chan struct{} // closed when the console ends
}

func (c *Console) watch(x *call) error {
	args, err := x.parse(x.flags(), 1, 1)
	if err != nil {
		return err
	}
	if c.cfg.Watch == nil {
		return errors.New("watching is not available on this gateway")
	}
	if x.term.raw == nil || x.term.lines == nil {
		return errors.New("watch needs the interactive console: ssh -t rr@GATEWAY -s rr-admin")
	}
	lines := x.term.lines
	return c.cfg.Watch(x.ctx, x.who, args[0], WatchTerminal{
		Out:  x.term.raw,
		Keys: func() <-chan []byte { return lines.keys(x.term.done) },
		Ask:  x.term.ask,
		TTY:  x.term.tty,
	})
}

// keys hands what is typed from now on to the channel it returns, for a
// watch, which must react to a key while output flows: one goroutine
// reads the input from then on, until it ends (the channel closes) or
// done, and the console's next lines read from the same channel. It goes
// a byte at a time (people type; a watch is not a bulk input), so that
// what is typed after the key that ends a watch stays for the console.
func (lr *lineReader) keys(done <-chan struct{}) <-chan []byte {
	if lr.pumped != nil {
		return lr.pumped.ch
	}
	p := &pumpedReader{ch: make(chan []byte)}
	src := lr.r
	go func() {
		defer close(p.ch)
		for {
			b, err := src.ReadByte()
			if err != nil {
				return
			}
			select {
			case p.ch <- []byte{b}:
			case <-done:
				return
			}
		}
	}()
	lr.pumped, lr.r = p, p
	return p.ch
}

// pumpedReader is the console's input once a watch has started its
// goroutine: bytes from its channel.
type pumpedReader struct {
	ch   chan []byte
	rest []byte
}

func (p *pumpedReader) ReadByte() (byte, error) {
	for len(p.rest) == 0 {
		b, ok := <-p.ch
		if !ok {
			return 0, io.EOF
		}
		p.rest = b
	}
	b := p.rest[0]
	p.rest = p.rest[1:]
	return b, nil
}
