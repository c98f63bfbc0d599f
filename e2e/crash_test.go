package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rr-gateway/rr/store"
)

// TestGatewayKilledMidSession: a gateway killed with SIGKILL leaves a
// recording whose decryptable prefix holds what was flushed; the next
// start marks the session interrupted and seals the file as it stands.
func TestGatewayKilledMidSession(t *testing.T) {
	g, gw := startProcGateway(t, "recordings: {spool: '{{dir}}/spool', flush_interval: 200ms}\n")
	w := g.w
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	for i := 0; ; i++ { // the agent may still be dialling
		cmd = exec.CommandContext(ctx, "ssh", w.sshArgs("rr+web-01@127.0.0.1",
			"echo before-the-kill; sleep 60")...)
		cmd.Env = w.answers(t, nil)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if line == "before-the-kill\n" {
			break
		}
		cmd.Wait()
		if i == 50 {
			t.Fatalf("no session: %q\n%s", line, g.log())
		}
		time.Sleep(100 * time.Millisecond)
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
	before, _ := os.ReadFile(files[0])
	out, err := exec.Command("bash", "-c", `gzip -dc "$1" 2>"$1.err" | openssl enc -d -aes-256-ctr -pbkdf2 -k pp-web-01`, "x", files[0]).Output()
	gzErr, _ := os.ReadFile(files[0] + ".err")
	if err != nil || !strings.Contains(string(out), "before-the-kill") || !strings.Contains(string(gzErr), "unexpected end of file") {
		t.Fatalf("prefix of the killed session's recording: %v, %q, gzip said %q", err, out, gzErr)
	}

	// Restart: the session is interrupted, its file sealed, not touched.
	g.start()
	st, err := store.Open(filepath.Join(g.dir, "rr.db"))
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
