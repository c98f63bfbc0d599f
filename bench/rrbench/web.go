package main

// The web console's figures (-only web): keystroke echo through the web
// console's WebSocket against the SSH path through the same gateway, and
// the gateway's memory per web session held open.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/coder/websocket"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/web"
	"github.com/rr-gateway/rr/store"
)

// webSessions is how many web sessions the memory figure holds open.
const webSessions = 100

func webPassword(i int) string { return "web-password-" + personName(i) }

// webPeople gives every person a (cheap) password, for the web console.
func webPeople(ctx context.Context, st interface {
	UpsertPerson(context.Context, store.Person) error
}, people int) error {
	for i := range people {
		h, err := argon2id.CreateHash(webPassword(i), cheapParams)
		if err != nil {
			return err
		}
		if err := st.UpsertPerson(ctx, store.Person{Name: personName(i), Role: "advanced", Email: personEmail(i), PasswordHash: h}); err != nil {
			return err
		}
	}
	return nil
}

// serveWeb serves the web console over TLS (a self-signed pair) on a
// loopback port and returns its address.
func serveWeb(srv *gateway.Server, a *auth.Service, log *slog.Logger) (string, func(), error) {
	h, err := web.New(web.Config{Gateway: srv, Auth: a, Logger: log, LoginsPerPerson: 2})
	if err != nil {
		return "", nil, err
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rrbench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}))
	return ln.Addr().String(), func() { hs.Close(); h.Close() }, nil
}

// webShell is one web console terminal, as a browser drives it: a
// shell whose input is the WebSocket (so roundTrip and quiet are the SSH
// shell's).
type webShell struct {
	*shell
	c *websocket.Conn
}

// wsKeys sends what is written to it as typed keys.
type wsKeys struct{ c *websocket.Conn }

func (k wsKeys) Write(p []byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.c.Write(ctx, websocket.MessageBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (k wsKeys) Close() error { return nil }

// webClient is an HTTPS client that trusts the bench gateway's pair.
var webClient = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 4}}

// openWebShell logs person in, answers the host's passphrase and the
// mailed code, and opens the terminal.
func openWebShell(addr string, person int) (*webShell, error) {
	base := "https://" + addr
	var cookie, csrf string
	call := func(path string, body any) (map[string]any, error) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(b))
		req.Header.Set("Cookie", cookie)
		req.Header.Set("X-CSRF-Token", csrf)
		resp, err := webClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		for _, c := range resp.Cookies() {
			if c.Value != "" {
				cookie = c.Name + "=" + c.Value
			}
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("%s: %d %v", path, resp.StatusCode, m)
		}
		return m, nil
	}
	m, err := call("/api/login", map[string]string{"username": personName(person), "password": webPassword(person)})
	if err != nil {
		return nil, err
	}
	csrf, _ = m["csrf"].(string)
	email := personEmail(person)
	for drained := false; !drained; { // codes of an earlier, failed start
		select {
		case <-mailFor(email):
		default:
			drained = true
		}
	}
	if m, err = call("/api/start", map[string]string{"host": sessionHost}); err != nil {
		return nil, err
	}
	if m, err = call("/api/start/answer", map[string]string{"conv": fmt.Sprint(m["conv"]), "answer": passphrase}); err != nil {
		return nil, err
	}
	var code string
	select {
	case code = <-mailFor(email):
	case <-time.After(30 * time.Second):
		return nil, errors.New("no code mailed")
	}
	if m, err = call("/api/start/answer", map[string]string{"conv": fmt.Sprint(m["conv"]), "answer": code}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://"+addr+"/api/terminal?cols=120&rows=40&ticket="+fmt.Sprint(m["ticket"]),
		&websocket.DialOptions{HTTPClient: webClient, CompressionMode: websocket.CompressionDisabled,
			HTTPHeader: http.Header{"Cookie": {cookie}, "Origin": {base}}})
	if err != nil {
		return nil, err
	}
	sh := &webShell{shell: &shell{in: wsKeys{c}, out: make(chan []byte, 64)}, c: c}
	go func() {
		defer close(sh.out)
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if typ == websocket.MessageBinary {
				sh.out <- b
			}
		}
	}()
	select {
	case b, ok := <-sh.out:
		if !ok || len(b) == 0 {
			return nil, errors.New("web shell ended before its first byte")
		}
	case <-time.After(60 * time.Second):
		return nil, errors.New("no web shell output in 60 s")
	}
	return sh, nil
}

func (sh *webShell) close() { sh.c.Close(websocket.StatusNormalClosure, "") }

// webFigures: keystrokes through the web console and through SSH on one
// gateway (taking turns), then the gateway's memory per web session.
func (r *results) webFigures(cfg config, dir string) error {
	gw, ag, err := startStack(dir, webSessions+1, true, recordSpool, cfg.shell, "-web")
	if err != nil {
		return err
	}
	defer gw.stop()
	defer ag.stop()
	addr := gw.ready["web"]
	viaGW := target{name: "gateway", addr: gw.ready["people"], hostKey: signer(gatewayKeyName).PublicKey(), gateway: true, proc: gw}
	n := cfg.keystrokes
	if n <= 0 {
		n = 2000
	}
	logf("web: %d keystroke round trips each, web console and SSH through one gateway, taking turns", n)
	c, err := viaGW.dial(webSessions)
	if err != nil {
		return err
	}
	sshSh, err := openShell(c, viaGW.command)
	if err != nil {
		c.Close()
		return err
	}
	defer sshSh.close()
	webSh, err := openWebShell(addr, webSessions)
	if err != nil {
		return err
	}
	defer webSh.close()
	sshSh.quiet(300 * time.Millisecond)
	webSh.quiet(300 * time.Millisecond)
	trips := []func([]byte, int) (time.Duration, error){webSh.roundTrip, sshSh.roundTrip}
	d := make([][]time.Duration, 2)
	for done := -20; done < n; done += keystrokeRound {
		for k, trip := range trips {
			for i := range keystrokeRound {
				p, want := []byte("x"), 1
				if i%2 == 1 {
					p, want = []byte{0x7f}, 3
				}
				rt, err := trip(p, want)
				if err != nil {
					return fmt.Errorf("web keystroke %d: %w", done+i, err)
				}
				if done >= 0 && done+i < n {
					d[k] = append(d[k], rt)
				}
			}
		}
	}
	// The turns alternate, so the k-th part of each path's samples spans
	// the same stretch of time: each part is a run.
	webK, sshK := runPercentiles(d[0], keystrokeRuns), runPercentiles(d[1], keystrokeRuns)
	p50 := func(runs []percentiles) spread {
		return spreadOf(runs, func(p percentiles) float64 { return us(p.p50) })
	}
	p99 := func(runs []percentiles) spread {
		return spreadOf(runs, func(p percentiles) float64 { return us(p.p99) })
	}
	r.add(figure{Name: "keystroke echo p50, web console", Value: p50(webK).median, Spread: p50(webK).String(), Unit: "µs",
		Baseline: "SSH through the same gateway", BaselineValue: p50(sshK).median, BaselineSpread: p50(sshK).String(), Lower: true,
		Note: fmt.Sprintf("%d runs of %d keystrokes, the two taking turns", len(webK), len(d[0])/len(webK))})
	r.add(figure{Name: "keystroke echo p99, web console", Value: p99(webK).median, Spread: p99(webK).String(), Unit: "µs",
		Baseline: "SSH through the same gateway", BaselineValue: p99(sshK).median, BaselineSpread: p99(sshK).String(), Target: "<= 1.5", Lower: true})

	logf("web: %d web sessions held open", webSessions)
	var before procStats
	if err := gw.do(&before, "gcstats"); err != nil {
		return err
	}
	var shells []*webShell
	defer func() {
		for _, sh := range shells {
			sh.close()
		}
	}()
	for i := range webSessions {
		sh, err := openWebShell(addr, i)
		if err != nil {
			return fmt.Errorf("web session %d: %w", i, err)
		}
		shells = append(shells, sh)
	}
	for _, sh := range shells {
		sh.quiet(100 * time.Millisecond)
	}
	var after procStats
	if err := gw.do(&after, "gcstats"); err != nil {
		return err
	}
	if err := gw.do(nil, "profile "+filepath.Join(cfg.out, "web-sessions.heap.pprof")); err != nil {
		logf("web: heap profile: %v", err)
	}
	perRSS := float64(after.RSSKiB-before.RSSKiB) / webSessions
	perHeap := float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse) / 1024 / webSessions
	r.add(figure{Name: fmt.Sprintf("gateway RSS per web session (%d held)", webSessions), Value: perRSS, Unit: "KiB", Lower: true,
		Note: fmt.Sprintf("heap+stacks %.1f KiB per session; %d goroutines for %d sessions", perHeap,
			after.Goroutines-before.Goroutines, webSessions)})
	return nil
}
