package gateway

import (
	"strings"
	"testing"

	"github.com/rr-gateway/rr/events"
	"github.com/rr-gateway/rr/store"
)

func TestParseLogin(t *testing.T) {
	tests := []struct {
		in       string
		name     string
		host     string
		event    string
		wantFail bool
	}{
		{in: "rr", name: "rr"},
		{in: "rr+event:e-7f3a9c", name: "rr", event: "e-7f3a9c"},
		{in: "alice+event:e-0123456789abcdef", name: "alice", event: "e-0123456789abcdef"},
		{in: "rr+event:", wantFail: true},
		{in: "rr+event:web-01", wantFail: true},
		{in: "rr+event:e-7F3A9C", wantFail: true},
		{in: "rr+event:e-7f3a9c:x", wantFail: true},
		{in: "rr+web-01", name: "rr", host: "web-01"},
		{in: "alice", name: "alice"},
		{in: "alice+db.prod_2", name: "alice", host: "db.prod_2"},
		{in: "", wantFail: true},
		{in: "rr+", wantFail: true},
		{in: "+web", wantFail: true},
		{in: "rr+web+01", wantFail: true},
		{in: "rr+-oProxyCommand", wantFail: true},
		{in: "rr+../etc", wantFail: true},
		{in: "al ice", wantFail: true},
		{in: "rr+" + strings.Repeat("a", 65), wantFail: true},
	}
	for _, tt := range tests {
		got, err := ParseLogin(tt.in)
		if tt.wantFail {
			if err == nil {
				t.Errorf("ParseLogin(%q) = %+v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.Name != tt.name || got.Host != tt.host || got.Event != tt.event {
			t.Errorf("ParseLogin(%q) = %+v, %v; want {%s %s %s}", tt.in, got, err, tt.name, tt.host, tt.event)
		}
	}
}

func TestParseCommand(t *testing.T) {
	tests := []struct {
		loginHost, in    string
		host, event, cmd string
		wantFail         bool
	}{
		{in: "web-01", host: "web-01"},
		{in: "event:e-7f3a9c", event: "e-7f3a9c"},
		{in: "event:e-7f3a9c -- uptime", event: "e-7f3a9c", cmd: "uptime"},
		{in: "event:e-7f3a9c uname -a", event: "e-7f3a9c", cmd: "uname -a"},
		{in: "event:nope", wantFail: true},
		{in: "event:", wantFail: true},
		{in: "  web-01  ", host: "web-01"},
		{in: "web-01 uptime", host: "web-01", cmd: "uptime"},
		{in: "web-01 -- uptime", host: "web-01", cmd: "uptime"},
		{in: "web-01 --", host: "web-01"},
		{in: "web-01\t--\tls -l  'a  b'", host: "web-01", cmd: "ls -l  'a  b'"},
		{in: "web-01 --version", host: "web-01", cmd: "--version"},
		{in: "web-01 echo -- x", host: "web-01", cmd: "echo -- x"},
		{loginHost: "db", in: "web-01 -- uptime", host: "db", cmd: "web-01 -- uptime"},
		{loginHost: "db", in: "", host: "db"},
		{in: "", wantFail: true},
		{in: "   ", wantFail: true},
		{in: "web;01 ls", wantFail: true},
		{in: "-oProxyCommand=x", wantFail: true},
	}
	for _, tt := range tests {
		got, err := ParseCommand(tt.loginHost, tt.in)
		if tt.wantFail {
			if err == nil {
				t.Errorf("ParseCommand(%q, %q) = %+v, want an error", tt.loginHost, tt.in, got)
			}
			continue
		}
		if err != nil || got.Host != tt.host || got.Event != tt.event || got.Command != tt.cmd {
			t.Errorf("ParseCommand(%q, %q) = %+v, %v; want {%s %q}", tt.loginHost, tt.in, got, err, tt.host, tt.cmd)
		}
	}
}

func FuzzParseLogin(f *testing.F) {
	for _, s := range []string{"rr", "rr+web-01", "alice+db", "", "+", "a+b+c", "\x00", "rr+event:e-7f3a9c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLogin(s)
		if err != nil {
			return
		}
		if !store.ValidName(l.Name) || (l.Host != "" && !store.ValidName(l.Host)) || (l.Event != "" && (l.Host != "" || !events.ValidID(l.Event))) {
			t.Fatalf("ParseLogin(%q) accepted invalid parts %+v", s, l)
		}
		rebuilt := l.Name
		if l.Host != "" {
			rebuilt += "+" + l.Host
		}
		if l.Event != "" {
			rebuilt += "+event:" + l.Event
		}
		if rebuilt != s {
			t.Fatalf("ParseLogin(%q) = %+v does not rebuild the input", s, l)
		}
	})
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"web-01", "web-01 -- uptime", " h\tls", "", "--", "a -- -- b"} {
		f.Add("", s)
		f.Add("db", s)
	}
	f.Fuzz(func(t *testing.T, loginHost, s string) {
		if loginHost != "" && !store.ValidName(loginHost) {
			return
		}
		tg, err := ParseCommand(loginHost, s)
		if err != nil {
			return
		}
		if !store.ValidName(tg.Host) {
			t.Fatalf("ParseCommand(%q) gave invalid host %q", s, tg.Host)
		}
		if loginHost != "" && (tg.Host != loginHost || tg.Command != s) {
			t.Fatalf("with a login host the command must pass unchanged: %+v", tg)
		}
		if loginHost == "" && !strings.HasSuffix(s, tg.Command) {
			t.Fatalf("command %q is not a suffix of %q", tg.Command, s)
		}
	})
}
