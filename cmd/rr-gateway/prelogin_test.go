package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/internal/config"
)

// TestHTTPPortLimits: the HTTP port holds at most per_address
// connections from one address (the next is closed at once)
// while another address is served, and its header timeout comes from
// before_login.http.handshake_timeout.
func TestHTTPPortLimits(t *testing.T) {
	path := t.TempDir() + "/gateway.yaml"
	os.WriteFile(path, []byte("before_login: {http: {per_address: 3, handshake_timeout: 20s}}\n"), 0o600)
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	m := gateway.NewMetrics()
	web := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	ln, err := c.BeforeLogin.listenHTTP("127.0.0.1:0", web, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); web.Serve(ln) }()
	defer func() { web.Close(); <-done }()
	if web.ReadHeaderTimeout != 20*time.Second {
		t.Errorf("ReadHeaderTimeout %v, want 20s", web.ReadHeaderTimeout)
	}
	addr := ln.Addr().String()
	dial := func(from string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", addr)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	for range 3 {
		if _, err := dial("127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	// The fourth from 127.0.0.1 is closed at once (a reset may even beat
	// the dial).
	if c, err := dial("127.0.0.1"); err == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("fourth connection from one address: read %v, want it closed", err)
		}
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	// Another address is served.
	hc := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok\n" {
		t.Fatalf("got %q", b)
	}
}

// TestBeforeLoginConfig: bad limits are refused with their key; absent
// ones take the defaults; unused_connection_timeout: 0s means never.
func TestBeforeLoginConfig(t *testing.T) {
	var c fileConfig
	if err := config.Decode([]byte("before_login: {people: {max_startups: \"10:30\"}, agents: {per_address: -1}}\n"), &c); err != nil {
		t.Fatal(err)
	}
	err := c.BeforeLogin.check()
	if err == nil || !strings.Contains(err.Error(), "before_login.people") || !strings.Contains(err.Error(), "before_login.agents") {
		t.Fatalf("check: %v", err)
	}
	c = defaultConfig()
	if got := c.unusedConnTimeout(); got != defaultUnusedConnTimeout {
		t.Errorf("unused_connection_timeout absent: %v", got)
	}
	if err := config.Decode([]byte("unused_connection_timeout: 0s\n"), &c); err != nil {
		t.Fatal(err)
	}
	if got := c.unusedConnTimeout(); got != 0 {
		t.Errorf("unused_connection_timeout: 0s gave %v", got)
	}
}
