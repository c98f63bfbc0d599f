package gateway

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
)

// failingListener fails its first accepts with EMFILE (out of file
// descriptors), then reports itself closed.
type failingListener struct {
	net.Listener
	fails, calls int
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.calls++
	if l.calls <= l.fails {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return nil, net.ErrClosed
}

// TestServeOutlivesAcceptErrors: running out of file descriptors is
// waited out, not taken as the end of the gateway.
func TestServeOutlivesAcceptErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := &Server{log: slog.New(slog.DiscardHandler), listeners: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{}}
	l := &failingListener{Listener: ln, fails: 3}
	if err := s.serve(l, "people", DefaultPeopleLimits, nil, nil); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("serve: %v, want ErrServerClosed", err)
	}
	if l.calls != 4 {
		t.Errorf("%d accepts, want 4 (three failed and were retried)", l.calls)
	}
}
