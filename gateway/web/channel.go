package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/wire"
)

// The terminal's WebSocket protocol. Browser → gateway: binary messages
// are the keys typed (at most maxFrame bytes each); text messages are
// control, {"type":"resize","cols":C,"rows":R}. Gateway → browser: binary
// messages are the terminal's output; a text message {"type":"exit",
// "status":N} carries the exit status before the close.
const maxFrame = 16 << 10

// writeTimeout bounds one message to the browser: a browser that stops
// reading is dropped rather than holding the session's pumps.
const writeTimeout = 30 * time.Second

// control is a text message either way.
type control struct {
	Type   string `json:"type"`
	Cols   uint32 `json:"cols,omitempty"`
	Rows   uint32 `json:"rows,omitempty"`
	Status *int   `json:"status,omitempty"`
}

// wsChannel makes a WebSocket an ssh.Channel for the gateway's session
// path: Read gives what the browser typed, Write and Stderr send output,
// SendRequest carries the exit status; window changes arrive on reqs.
//
// Input crosses an io.Pipe: the browser's next message is read only once
// the session has taken the last one, so nothing queues here and the
// WebSocket's own flow control holds the browser back.
type wsChannel struct {
	conn *websocket.Conn
	ctx  context.Context // the WebSocket's; cancelled when it closes
	in   *io.PipeReader
	inW  *io.PipeWriter
	reqs chan *ssh.Request
	once sync.Once
	bad  func(reason string) // logs a malformed message
}

func newWSChannel(ctx context.Context, conn *websocket.Conn, bad func(string)) *wsChannel {
	conn.SetReadLimit(maxFrame)
	r, w := io.Pipe()
	return &wsChannel{conn: conn, ctx: ctx, in: r, inW: w, reqs: make(chan *ssh.Request, 4), bad: bad}
}

// readLoop reads the browser's messages until the WebSocket closes; it
// closes reqs and the input when it returns.
func (c *wsChannel) readLoop() {
	defer close(c.reqs)
	// Room for more than a message may hold: reading past maxFrame trips
	// the read limit (coder/websocket lets one byte more through, then
	// closes with 1009, message too big).
	buf := make([]byte, maxFrame+2)
	for {
		typ, r, err := c.conn.Reader(c.ctx)
		if err != nil {
			c.inW.CloseWithError(io.EOF)
			return
		}
		n, err := io.ReadFull(r, buf)
		if (err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF)) || n > maxFrame {
			c.bad("message over the size limit")
			c.inW.CloseWithError(io.EOF) // first: the close below waits for the browser's answer
			c.conn.Close(websocket.StatusMessageTooBig, "message too big")
			return
		}
		switch typ {
		case websocket.MessageBinary:
			if n == 0 {
				continue
			}
			if _, err := c.inW.Write(buf[:n]); err != nil {
				return // the session stopped reading: it has ended
			}
		case websocket.MessageText:
			var m control
			if err := json.Unmarshal(buf[:n], &m); err != nil || m.Type != "resize" ||
				m.Cols == 0 || m.Rows == 0 || m.Cols > 1000 || m.Rows > 1000 {
				c.bad("malformed control message")
				c.inW.CloseWithError(io.EOF)
				c.conn.Close(websocket.StatusUnsupportedData, "malformed control message")
				return
			}
			req := &ssh.Request{Type: wire.ReqWindowChange,
				Payload: ssh.Marshal(&wire.WindowChange{Columns: m.Cols, Rows: m.Rows})}
			select {
			case c.reqs <- req:
			default: // resizes pile up only while the session is busy: the newest wins next time
			}
		}
	}
}

func (c *wsChannel) Read(p []byte) (int, error) { return c.in.Read(p) }

func (c *wsChannel) Write(p []byte) (int, error) {
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close ends the WebSocket (normally: the browser shows what it was told).
func (c *wsChannel) Close() error {
	c.once.Do(func() {
		c.conn.Close(websocket.StatusNormalClosure, "session ended")
		c.in.Close()
	})
	return nil
}

func (c *wsChannel) CloseWrite() error { return nil }

// SendRequest passes the exit status on; other requests mean nothing to
// a browser.
func (c *wsChannel) SendRequest(name string, _ bool, payload []byte) (bool, error) {
	if name != wire.ReqExitStatus {
		return false, nil
	}
	var st wire.ExitStatus
	if err := ssh.Unmarshal(payload, &st); err != nil {
		return false, err
	}
	s := int(st.Status)
	b, _ := json.Marshal(control{Type: "exit", Status: &s})
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	defer cancel()
	return true, c.conn.Write(ctx, websocket.MessageText, b)
}

// Stderr is the same stream: a terminal shows both.
func (c *wsChannel) Stderr() io.ReadWriter { return stderr{c} }

type stderr struct{ c *wsChannel }

func (s stderr) Read([]byte) (int, error)    { return 0, io.EOF }
func (s stderr) Write(p []byte) (int, error) { return s.c.Write(p) }
