package main

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
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/auth/mail"
	"github.com/rr-gateway/rr/events"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// eventsToken is the bench intake's bearer token for both sources.
const eventsToken = "bench-events-token-0123456789"

// eventsRole serves the event intake over TLS on one core (GOMAXPROCS 1)
// over a real SQLite store: host h0, person p0 in team t0 subscribed to
// critical events. Mail goes over SMTP to smtpPort (0: a mailer that
// takes everything at once). Each mail's latency, from the intake
// accepting its event to the mail server taking it, is written to
// DIR/mail-latency.json when the role ends.
func eventsRole(ctx context.Context, ctl *control, log *slog.Logger, dir string, smtpPort int) error {
	runtime.GOMAXPROCS(1)
	st, err := sqlite.Open(filepath.Join(dir, "rr.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CreateHost(ctx, "h0", nil); err != nil {
		return err
	}
	if err := st.CreatePerson(ctx, store.Person{Name: "p0", Email: "p0@bench.test", Role: auth.RoleAdvanced}); err != nil {
		return err
	}
	if err := st.UpsertTeam(ctx, store.Team{Name: "t0", RapidResponse: true, Members: []string{"p0"}, Hosts: []string{"h0"}}); err != nil {
		return err
	}
	var mailer auth.Mailer = nopMailer{}
	if smtpPort > 0 {
		if mailer, err = mail.NewSMTPMailer(mail.SMTPConfig{Host: "127.0.0.1", Port: smtpPort, TLS: "none", From: "rr@bench.test"}); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	var latencies []time.Duration
	received := map[string]time.Time{}
	n, err := events.NewNotifier(events.NotifierConfig{Directory: st, Mailer: mailer, Address: "gw.bench.test", Logger: log,
		DigestAfter: 1 << 20, Queue: 1 << 16,
		Sent: func(_ auth.Message, ids []string) {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				latencies = append(latencies, now.Sub(received[id]))
			}
		}})
	if err != nil {
		return err
	}
	in, err := events.NewIntake(events.IntakeConfig{Store: st, Notifier: recordingQueue{n, func(e store.Event) {
		mu.Lock()
		received[e.ID] = e.Received
		mu.Unlock()
	}}, Logger: log})
	if err != nil {
		return err
	}
	h, err := events.NewHandler(events.HandlerConfig{Intake: in, Rate: 1e9, Burst: 1 << 30, Logger: log,
		Tokens: map[string][]byte{events.SourceFalco: []byte(eventsToken), events.SourceAlertmanager: []byte(eventsToken)}})
	if err != nil {
		return err
	}
	cert, err := selfSignedTLS()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}))
	nctx, stopMail := context.WithCancel(ctx)
	mailDone := make(chan struct{})
	go func() { defer close(mailDone); n.Run(nctx) }()
	ctl.send("ready", map[string]string{"addr": ln.Addr().String()})
	ctl.serve(nil)
	srv.Close()
	stopMail()
	<-mailDone
	mu.Lock()
	defer mu.Unlock()
	b, _ := json.Marshal(latencies)
	return os.WriteFile(filepath.Join(dir, "mail-latency.json"), b, 0o600)
}

// recordingQueue notes when each event was accepted, then queues it.
type recordingQueue struct {
	n    *events.Notifier
	note func(store.Event)
}

func (q recordingQueue) Enqueue(e store.Event) bool { q.note(e); return q.n.Enqueue(e) }

type nopMailer struct{}

func (nopMailer) Send(context.Context, auth.Message) error { return nil }

func selfSignedTLS() (tls.Certificate, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

// falcoAlert is a Falco alert on host with its own uuid.
func falcoAlert(i int, host, priority string) []byte {
	return []byte(fmt.Sprintf(`{"uuid":"bench-%d-%d","time":"%s","rule":"Terminal shell in container","priority":"%s",`+
		`"output":"A shell was spawned in a container with an attached terminal (user=root command=bash)","source":"syscall",`+
		`"tags":["container","shell"],"hostname":"%s","output_fields":{"user.name":"root","proc.cmdline":"bash","evt.time":%d}}`,
		os.Getpid(), i, time.Now().UTC().Format(time.RFC3339Nano), priority, host, time.Now().UnixNano()))
}

// eventFigures: events accepted per second by the intake on one core
// (workers posting Falco alerts over HTTPS with keep-alive, none mailed),
// then the latency from accepting an alert to its mail being handed to a
// real mail server (mailpit), one alert at a time.
func (r *results) eventFigures(cfg config, dir string) error {
	if cfg.events == 0 {
		return nil
	}
	smtp, stopMailpit, err := startBenchMailpit(dir)
	if err != nil {
		logf("events: %v; the mail figure uses a mailer that takes everything at once", err)
	}
	defer stopMailpit()
	ev, err := startChild("events", filepath.Join(dir, "events"), "-smtp", strconv.Itoa(smtp))
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			ev.stop()
		}
	}()
	url := "https://" + ev.ready["addr"] + "/v1/events/falco"
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: cfg.workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	post := func(body []byte) error {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+eventsToken)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"accepted":["e-`) {
			return fmt.Errorf("events: %d %s", resp.StatusCode, b)
		}
		return nil
	}
	// Warm up (connections, the store), then measure.
	var seq atomic.Int64
	if err := inParallel(200, cfg.workers, func(int) error { return post(falcoAlert(int(seq.Add(1)), "h0", "Notice")) }); err != nil {
		return err
	}
	before, err := ev.stats(false)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := inParallel(cfg.events, cfg.workers, func(int) error { return post(falcoAlert(int(seq.Add(1)), "h0", "Notice")) }); err != nil {
		return err
	}
	el := time.Since(t0)
	after, err := ev.stats(false)
	if err != nil {
		return err
	}
	rate := float64(cfg.events) / el.Seconds()
	cpu := float64(after.CPUNs-before.CPUNs) / 1e9 / el.Seconds()
	r.add(figure{Name: "security events accepted per second (intake on one core)", Value: rate, Unit: "/s",
		Target: ">= 2000 /s", TargetValue: 2000,
		Note: fmt.Sprintf("%d Falco alerts (each its own uuid, on a known host, below the mail threshold) POSTed over HTTPS with keep-alive "+
			"by %d workers; the intake process at GOMAXPROCS=1 used %.2f cores (parse, dedup, host match, SQLite insert, audit row)",
			cfg.events, cfg.workers, cpu)})
	// Mail latency: critical alerts one at a time, paced so that each
	// mail is sent before the next alert.
	mails := min(200, cfg.events)
	for range mails {
		if err := post(falcoAlert(int(seq.Add(1)), "h0", "Critical")); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond) // a trickle, not a burst: the figure is one mail's path
	}
	ev.stop()
	stopped = true
	var lat []time.Duration
	b, err := os.ReadFile(filepath.Join(dir, "events", "mail-latency.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &lat); err != nil {
		return err
	}
	if len(lat) == 0 {
		return fmt.Errorf("events: no mail was sent")
	}
	p := pct(lat)
	server := "mailpit (SMTP on 127.0.0.1)"
	if smtp == 0 {
		server = "no mail server: a mailer that takes everything at once"
	}
	r.add(figure{Name: "security event to mail handed to the mail server, p99", Value: ms(p.p99), Unit: "ms",
		Note: fmt.Sprintf("%d of %d critical Falco alerts mailed, one every 10 ms; from the intake accepting the POST to the mail "+
			"server taking the mail (%s): p50 %.1f ms", len(lat), mails, server, ms(p.p50))})
	return nil
}

// startBenchMailpit starts mailpit (from PATH or $(go env GOPATH)/bin)
// and returns its SMTP port and what stops it.
func startBenchMailpit(dir string) (int, func(), error) {
	nop := func() {}
	bin, err := exec.LookPath("mailpit")
	if err != nil {
		out, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(out)), "bin", "mailpit")
		if _, err := os.Stat(bin); err != nil {
			return 0, nop, fmt.Errorf("mailpit not found")
		}
	}
	ports := make([]int, 2)
	var lns []net.Listener
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, nop, err
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	for _, ln := range lns {
		ln.Close()
	}
	os.MkdirAll(dir, 0o700)
	cmd := exec.Command(bin, "-l", fmt.Sprintf("127.0.0.1:%d", ports[0]), "-s", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--disable-version-check", "-d", filepath.Join(dir, "mailpit.db"))
	if err := cmd.Start(); err != nil {
		return 0, nop, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[1])); err == nil {
			c.Close()
			return ports[1], stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return 0, nop, fmt.Errorf("mailpit did not listen")
		}
		time.Sleep(50 * time.Millisecond) // a child process gives no readiness event
	}
}
