package web

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/wire"
)

// wsPair is a wsChannel on a real WebSocket over loopback, and the
// browser's end of it.
func wsPair(t *testing.T) (*wsChannel, *websocket.Conn, chan string) {
	t.Helper()
	got := make(chan *wsChannel, 1)
	bad := make(chan string, 4)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		ch := newWSChannel(r.Context(), conn, func(reason string) { bad <- reason })
		got <- ch
		ch.readLoop()
		ch.Close()
		<-done
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow(); close(done); srv.Close() })
	return <-got, c, bad
}

func TestWSChannelCarriesBytesAndResizes(t *testing.T) {
	ch, c, _ := wsPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Write(ctx, websocket.MessageBinary, []byte("ls\r"))
	buf := make([]byte, 16)
	n, err := ch.Read(buf)
	if err != nil || string(buf[:n]) != "ls\r" {
		t.Fatalf("read %q %v", buf[:n], err)
	}
	c.Write(ctx, websocket.MessageText, []byte(`{"type":"resize","cols":120,"rows":40}`))
	req := <-ch.reqs
	var wc wire.WindowChange
	if req.Type != wire.ReqWindowChange || ssh.Unmarshal(req.Payload, &wc) != nil || wc.Columns != 120 || wc.Rows != 40 {
		t.Fatalf("request %s %+v", req.Type, wc)
	}
	ch.Write([]byte("out"))
	typ, b, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageBinary || string(b) != "out" {
		t.Fatalf("output %v %q %v", typ, b, err)
	}
	ch.SendRequest(wire.ReqExitStatus, false, ssh.Marshal(&wire.ExitStatus{Status: 3}))
	typ, b, err = c.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(b) != `{"type":"exit","status":3}` {
		t.Fatalf("exit %v %q %v", typ, b, err)
	}
}

// TestWSChannelBoundsInput: a message over maxFrame closes the WebSocket
// with 1009, and nothing of it reaches the session.
func TestWSChannelBoundsInput(t *testing.T) {
	ch, c, _ := wsPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go c.Write(ctx, websocket.MessageBinary, bytes.Repeat([]byte("x"), maxFrame+1))
	if n, err := io.Copy(io.Discard, ch); n != 0 {
		t.Fatalf("the session read %d bytes (%v) of an oversized message", n, err)
	}
	_, _, err := c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("close %v, want 1009", err)
	}
}

func TestWSChannelRefusesMalformedControl(t *testing.T) {
	ch, c, bad := wsPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Write(ctx, websocket.MessageText, []byte(`{"type":"resize","cols":0}`))
	if reason := <-bad; reason != "malformed control message" {
		t.Fatal(reason)
	}
	io.Copy(io.Discard, ch)
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Fatalf("close %v, want 1003", err)
	}
}
