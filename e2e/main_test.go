package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/internal/pgtest"

	"time"

	"go.uber.org/goleak"
)

// The test binary doubles as OpenSSH's SSH_ASKPASS program: run with
// RR_ASKPASS_MODE=1 it answers the one prompt in its argument (see
// askpass) instead of running tests.
func TestMain(m *testing.M) {
	if os.Getenv("RR_ASKPASS_MODE") == "1" {
		os.Exit(askpass(os.Args[1:]))
	}
	// One throwaway PostgreSQL for the tests of several gateways; no test
	// may leave a goroutine running.
	pgtest.Main(m, func() error { return goleak.Find() })
}

// askpass answers a keyboard-interactive prompt from the environment:
// RR_USERNAME, RR_PASSWORD, RR_TEAM, RR_PASSPHRASE, and for the code
// RR_CODE or else the newest mail to RR_MAIL_TO in the mailpit at
// RR_MAILPIT (after RR_CODE_DELAY). Every prompt is appended to
// RR_ASKPASS_LOG.
func askpass(args []string) int {
	if len(args) != 1 {
		return 2
	}
	prompt := args[0]
	if log := os.Getenv("RR_ASKPASS_LOG"); log != "" {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintln(f, prompt)
			f.Close()
		}
	}
	answer := ""
	switch {
	case strings.Contains(prompt, "Username:"):
		answer = os.Getenv("RR_USERNAME")
	case strings.Contains(prompt, "Password:"):
		answer = os.Getenv("RR_PASSWORD")
	case strings.Contains(prompt, "Team:"):
		answer = os.Getenv("RR_TEAM")
	case strings.Contains(prompt, "Passphrase for"):
		answer = os.Getenv("RR_PASSPHRASE")
	case strings.Contains(prompt, "Code sent to"), strings.Contains(prompt, "Authenticator code"):
		if d, err := time.ParseDuration(os.Getenv("RR_CODE_DELAY")); err == nil {
			time.Sleep(d)
		}
		answer = os.Getenv("RR_CODE")
		if answer == "" {
			code, err := newestCode(os.Getenv("RR_MAILPIT"), os.Getenv("RR_MAIL_TO"), 0)
			if err != nil {
				fmt.Fprintln(os.Stderr, "askpass:", err)
				return 1
			}
			answer = code
		}
	default:
		fmt.Fprintf(os.Stderr, "askpass: unexpected prompt %q\n", prompt)
		return 1
	}
	fmt.Println(answer)
	return 0
}

// mailpit is a mailpit server run for the tests.
type mailpit struct {
	SMTPPort int
	API      string // http://127.0.0.1:PORT
	cmd      *exec.Cmd
}

// freePort is gatewaytest.FreeAddr's port.
func freePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(gatewaytest.FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// startMailpit starts mailpit on 127.0.0.1 with extra flags and stops it
// when the test ends.
func startMailpit(t testing.TB, extra ...string) *mailpit {
	t.Helper()
	m := &mailpit{SMTPPort: freePort(t)}
	httpPort := freePort(t)
	m.API = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	args := append([]string{"-l", fmt.Sprintf("127.0.0.1:%d", httpPort), "-s", fmt.Sprintf("127.0.0.1:%d", m.SMTPPort),
		"--disable-version-check", "-d", filepath.Join(t.TempDir(), "mailpit.db")}, extra...)
	m.cmd = exec.Command(gatewaytest.Tool(t, "mailpit", "run `make test`, which installs it (go install github.com/axllent/mailpit@v1.27.11)"), args...)
	logf, _ := os.Create(filepath.Join(t.TempDir(), "mailpit.log"))
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.cmd.Process.Kill(); m.cmd.Wait(); logf.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(m.API + "/api/v1/info")
		if err == nil {
			resp.Body.Close()
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", m.SMTPPort)); err == nil {
				c.Close()
				return m
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("mailpit did not start: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond) // a child process gives no readiness event
	}
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// newestCode returns the code in the newest mail to addr, waiting up to
// 15 s for one newer than `after` mails.
func newestCode(api, addr string, after int) (string, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		msgs, err := mails(api, addr)
		if err == nil && len(msgs) > after {
			return sixDigits.FindString(msgs[0].Snippet), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no mail to %s (%v)", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type mailSummary struct {
	Subject string
	Snippet string // the start of the text body, where the code is
	To      []struct{ Address string }
}

// mails lists the mails to addr, newest first.
func mails(api, addr string) ([]mailSummary, error) {
	resp, err := http.Get(api + "/api/v1/messages?limit=200")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct{ Messages []mailSummary }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	var out []mailSummary
	for _, m := range body.Messages {
		for _, to := range m.To {
			if strings.EqualFold(to.Address, addr) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their
// paths.
func selfSigned(t testing.TB) (cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(priv)
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, key
}

// askpassEnv is the environment that makes ssh ask this test binary.
func askpassEnv(t testing.TB, vars map[string]string) []string {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "SSH_ASKPASS="+self, "SSH_ASKPASS_REQUIRE=force", "RR_ASKPASS_MODE=1", "DISPLAY=:0")
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

var _ = errors.New
var _ = strconv.Itoa
var _ = context.Background
