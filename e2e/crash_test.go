package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rr-gateway/rr/internal/testtool"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// TestGatewayKilledMidSession: a gateway killed with SIGKILL leaves a
// recording whose decryptable prefix holds what was flushed; the next
// start marks the session interrupted and seals the file as it stands.
func TestGatewayKilledMidSession(t *testing.T) {
	// The shell computes the marker: the command line in the recording's
	// header must not be what the check finds.
	killMidSession(t, "echo before-the-$((6*7)); sleep 60", nil)
}

// TestGatewayKilledMidBulk: the same during a bulk transfer, when the
// recording writes its file in O_DIRECT chunks with the tail through the
// page cache at each flush: the prefix still decrypts to exactly what the
// host sent, event by event, with nothing torn or padded inside it.
func TestGatewayKilledMidBulk(t *testing.T) {
	const line = "rr-busy-line-0123456789\n"
	killMidSession(t, "echo before-the-$((6*7)); exec yes "+strings.TrimSuffix(line, "\n"), func(plain []byte) {
		lines := strings.Split(string(plain), "\n")
		var out strings.Builder
		for i, l := range lines[1 : len(lines)-1] { // the header, then whole events; the last line may be cut
			var ev []any
			if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev) != 3 {
				t.Fatalf("event %d of the prefix does not parse: %v: %.200q", i, err, l)
			}
			if ev[1] == "o" {
				out.WriteString(ev[2].(string))
			}
		}
		got, ok := strings.CutPrefix(out.String(), "before-the-42\n")
		if !ok || len(got) < 8<<20 {
			t.Fatalf("the prefix holds %d bytes of output after the marker (want over 8 MiB: a busy recording)", len(got))
		}
		if want := strings.Repeat(line, len(got)/len(line)+1)[:len(got)]; got != want {
			t.Fatalf("the prefix's output is not what the host sent (first difference at %d)", firstDifference(got, want))
		}
	})
}

func firstDifference(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// killMidSession runs command through the gateway, SIGKILLs the gateway
// once the command's first line has arrived and a flush has passed, and
// checks the recording's prefix with the stock tools (and with check, if
// given, on the decrypted prefix), then that a restart marks the session
// interrupted and leaves the file as it was.
func killMidSession(t *testing.T, command string, check func(plain []byte)) {
	testtool.Need(t, "gzip", "openssl")
	g, gw := startProcGateway(t, "recordings: {spool: '{{dir}}/spool', flush_interval: 200ms}\n")
	w := g.w
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	for i := 0; ; i++ { // the agent may still be dialling
		cmd = exec.CommandContext(ctx, "ssh", w.sshArgs("rr+web-01@127.0.0.1", command)...)
		cmd.Env = w.answers(t, nil)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		if line == "before-the-42\n" {
			go io.Copy(io.Discard, r) // a bulk command goes on at full speed
			break
		}
		cmd.Wait()
		if i == 50 {
			t.Fatalf("no session: %q\n%s", line, g.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The real process's HTTP port, mid-session.
	if code, body := g.get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	_, metrics := g.get("/metrics")
	for _, want := range []string{"rr_sessions_live 1", "rr_agents_connected 1", `rr_auth_decisions_total{action="code",outcome="allowed"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	time.Sleep(600 * time.Millisecond) // let a flush pass (flush_interval 200ms)
	gw.Process.Signal(syscall.SIGKILL)
	gw.Wait()
	cmd.Process.Kill()
	cmd.Wait()

	files, _ := filepath.Glob(filepath.Join(g.dir, "spool", "*.gz"))
	if len(files) != 1 {
		t.Fatalf("spool holds %v", files)
	}
	// The gateway logs at debug level here: still never a secret.
	if log := g.log(); strings.Contains(log, "pp-web-01") {
		t.Error("the host passphrase is in the gateway's log")
	}
	before, _ := os.ReadFile(files[0])
	out, err := exec.Command("bash", "-c", `gzip -dc "$1" 2>"$1.err" | openssl enc -d -aes-256-ctr -pbkdf2 -k pp-web-01`, "x", files[0]).Output()
	gzErr, _ := os.ReadFile(files[0] + ".err")
	if err != nil || !strings.Contains(string(out), "before-the-42") || !strings.Contains(string(gzErr), "unexpected end of file") {
		t.Fatalf("prefix of the killed session's recording: %v, %.300q, gzip said %q", err, out, gzErr)
	}
	if check != nil {
		check(out)
	}

	// Restart: the session is interrupted, its file sealed, not touched.
	g.start()
	st, err := sqlite.Open(filepath.Join(g.dir, "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.Sessions(context.Background(), store.SessionFilter{})
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v %v", rows, err)
	}
	r := rows[0]
	after, _ := os.ReadFile(files[0])
	if r.State != store.StateInterrupted || r.Recording != files[0] || r.RecordingSize != int64(len(before)) ||
		len(r.RecordingSHA256) != 64 || string(after) != string(before) {
		t.Fatalf("after restart: %+v (file %d → %d bytes)", r, len(before), len(after))
	}
	// rr verify says what it is: a prefix, cut short, with its digest.
	v := exec.Command(filepath.Join(g.bin, "rr"), "verify", "-sha256", r.RecordingSHA256, files[0])
	v.Env = append(os.Environ(), "RR_PASSPHRASE=pp-web-01")
	vout, verr := v.CombinedOutput()
	if verr == nil || !strings.Contains(string(vout), "cut short") || !strings.Contains(string(vout), r.RecordingSHA256) {
		t.Fatalf("rr verify on the interrupted file: %v\n%s", verr, vout)
	}
}
