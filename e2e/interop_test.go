package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/internal/testtool"
	"github.com/rr-gateway/rr/store"
)

// The interop suite: every SSH client installable from Debian, driven as
// people drive them, against one gateway and one agent. Each client fills
// its row of the matrix:
//
//	exec     a command on the host (ssh rr+web-01@gw CMD), its output and
//	         exit status; the login's keyboard-interactive prompts answered
//	shell    a terminal session (rr@gw web-01 with a PTY): the passphrase
//	         and code asked in-band on the terminal, a command, exit
//	console  the rr-admin subsystem on a key-alone login: sessions
//	sftp     a recording downloaded over SFTP, byte for byte
//	scp      the same over the legacy scp protocol
//	binary   1 MiB of random bytes through `cat` on the host and back
//
// A cell a client cannot fill by design says so, with the reason. The
// matrix is printed at the end (and written to RR_INTEROP_MATRIX if set:
// make test prints it).
var interopColumns = []string{"exec", "shell", "console", "sftp", "scp", "binary"}

// interop is the suite's one gateway and agent, and one person: ivy at
// first, then each client's row its own (ivy1, ivy2…: key, password and
// authenticator app, in team ops_RR reaching web-01), since an
// authenticator code is accepted once per person and rows run at once.
type interop struct {
	*board
	gw         *gatewaytest.Gateway
	name       string // the person
	key        gatewaytest.Key
	ppk, dbKey string // the key for PuTTY and for Dropbear
	totp       string
	lastStep   int64 // the last authenticator step handed out
	host, port string
	home       string // HOME for clients that read ~/.ssh (dbclient)
	recording  string // a closed session of ivy's
	stored     []byte // its file's bytes
	python     string
	rowPeople  []*interop // one a client row, made up front
}

// board is the matrix the rows fill in, shared by every row's interop.
type board struct {
	mu    sync.Mutex
	rows  []string
	cells map[string]map[string]string
}

const ivyPassword = "ivys password"

// interopRows is how many client rows the matrix has (a person each).
const interopRows = 12

func newInterop(t *testing.T, rows int) *interop {
	gw := gatewaytest.StartGateway(t, gatewaytest.Config{Auth: auth.Config{
		Limits: auth.Limits{SourceAttempts: 100000, MailsPerPerson: 100000}}})
	web01 := gw.AddHost("web-01")
	gw.SetPassphrase("web-01", "pp-web-01")
	host, port, _ := net.SplitHostPort(gw.PeopleAddr)
	iv := &interop{board: &board{cells: map[string]map[string]string{}}, gw: gw, host: host, port: port,
		home: t.TempDir(), python: "python3"}
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		iv.python = "/usr/bin/python3" // Debian's, with python3-paramiko and python3-asyncssh
	}
	iv.person(t, "ivy")
	members := []string{"ivy"}
	for i := range rows {
		r := *iv
		r.person(t, fmt.Sprintf("ivy%d", i+1))
		iv.rowPeople = append(iv.rowPeople, &r)
		members = append(members, r.name)
	}
	gw.AddTeam("ops_RR", true, members, "web-01")
	gatewaytest.StartAgent(t, gw, "web-01", web01, nil)
	gw.WaitOnline("web-01")
	return iv
}

// person makes name, with a key, ivyPassword and an authenticator app,
// the person iv logs in as.
func (iv *interop) person(t *testing.T, name string) {
	key := gatewaytest.NewKey(t, name)
	iv.gw.AddPerson(name, "advanced", name+"@example.test", ivyPassword, key)
	secret, err := auth.NewTOTPKey("rr", name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := iv.gw.Store.PersonByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	p.TOTPSecret = secret.Secret()
	if err := iv.gw.Store.UpdatePerson(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	iv.name, iv.key, iv.totp, iv.ppk, iv.dbKey, iv.lastStep = name, key, secret.Secret(), "", "", 0
}

// code is the person's next authenticator code. The gateway takes each
// time step's code once, in order, and accepts the steps around now: each
// call hands out the step after the last (from now on), waiting when that
// is more than one step ahead. A row's cells run one after another, so
// their codes are used in the order they are made.
func (iv *interop) code(t *testing.T) string {
	const period = 30
	now := time.Now().Unix() / period
	step := max(iv.lastStep+1, now)
	if step > now+1 {
		time.Sleep(time.Until(time.Unix((step-1)*period, 0)))
	}
	iv.lastStep = step
	c, err := totp.GenerateCodeCustom(iv.totp, time.Unix(step*period, 0),
		totp.ValidateOpts{Period: period, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// set records a cell: "ok", "n/a: why" or "FAIL: what".
func (iv *interop) set(row, col, v string) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	if iv.cells[row] == nil {
		iv.cells[row] = map[string]string{}
		iv.rows = append(iv.rows, row)
	}
	iv.cells[row][col] = v
}

func (iv *interop) get(row, col string) string {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	return iv.cells[row][col]
}

// cell runs check for one cell of row in a subtest of its own and records
// its outcome.
func (iv *interop) cell(t *testing.T, row, col string, check func(t *testing.T)) {
	t.Run(col, func(t *testing.T) {
		defer func() { // also after a Fatal or a Skip
			if t.Failed() {
				iv.set(row, col, "FAIL")
			} else if !t.Skipped() {
				iv.set(row, col, "ok")
			}
		}()
		check(t)
	})
}

func (iv *interop) na(row, col, why string) { iv.set(row, col, "n/a: "+why) }

func (iv *interop) matrix() string {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	var b strings.Builder
	b.WriteString("| client | " + strings.Join(interopColumns, " | ") + " |\n|---|")
	b.WriteString(strings.Repeat("---|", len(interopColumns)) + "\n")
	var notes []string
	number := map[string]int{}
	for _, r := range iv.rows {
		b.WriteString("| " + r + " |")
		for _, c := range interopColumns {
			v := iv.cells[r][c]
			switch {
			case v == "":
				v = "–"
			case strings.HasPrefix(v, "n/a: "):
				why := strings.TrimPrefix(v, "n/a: ")
				if number[why] == 0 {
					notes = append(notes, why)
					number[why] = len(notes)
				}
				v = fmt.Sprintf("n/a[%d]", number[why])
			}
			b.WriteString(" " + v + " |")
		}
		b.WriteString("\n")
	}
	for i, n := range notes {
		fmt.Fprintf(&b, "\n[%d] %s", i+1, n)
	}
	return b.String() + "\n"
}

// answers is the environment that answers the person's prompts: OpenSSH
// through askpass, the Python clients directly; withCode for a login that
// names the host (rr+web-01@), which asks the code.
func (iv *interop) answers(t *testing.T, withCode bool) []string {
	code := ""
	if withCode { // a code is taken once: make one only for a login that asks it
		code = iv.code(t)
	}
	return askpassEnv(t, map[string]string{"RR_PASSPHRASE": "pp-web-01", "RR_CODE": code,
		"RR_USERNAME": iv.name, "RR_PASSWORD": ivyPassword, "HOME": iv.home,
		"RR_HOST": iv.host, "RR_PORT": iv.port, "RR_KEY": iv.key.Path, "RR_KNOWN_HOSTS": iv.gw.KnownHosts,
		"LC_RRTEST": "sent-env"})
}

// openSSH are the options of every OpenSSH command.
func (iv *interop) openSSH(portFlag string, extra ...string) []string {
	return append([]string{"-F", "none", portFlag, iv.port, "-i", iv.key.Path, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + iv.gw.KnownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR"}, extra...)
}

// step is one turn of a conversation: wait for text, then send.
type step struct {
	wait, send string
	tty        bool // send on the client's controlling terminal, not its stdin
}

// talk runs a client, answering as steps say. Its stdout goes to stdout
// (or, if nil, to what the steps read); stderr and its controlling
// terminal (with tty set: the client asks login prompts there, while its
// stdin and stdout stay pipes, byte for byte) go to what the steps read.
// stdin, if not nil, is the client's whole input; else the steps write it
// and it is closed after the last. It returns what the steps read and the
// exit code.
type talk struct {
	name   string
	args   []string
	env    []string
	tty    bool
	allTTY bool // stdin, stdout and stderr on the terminal too (steps send there)
	stdin  io.Reader
	stdout io.Writer
	steps  []step
}

func (c talk) run(t *testing.T, ctx context.Context) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, c.name, c.args...)
	cmd.Env = c.env
	cmd.WaitDelay = 5 * time.Second
	screen := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = screen, screen
	if c.stdout != nil {
		cmd.Stdout = c.stdout
	}
	var stdin io.WriteCloser
	if c.allTTY {
		c.tty = true
	} else if c.stdin != nil {
		cmd.Stdin = c.stdin
	} else {
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}
	var term *os.File
	var copied chan struct{}
	if c.tty {
		m, s, err := pty.Open()
		if err != nil {
			t.Fatal(err)
		}
		term = m
		defer m.Close()
		cmd.ExtraFiles = []*os.File{s}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 3}
		if c.allTTY {
			cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
		}
		defer s.Close()
		copied = make(chan struct{})
		go func() {
			defer close(copied)
			io.Copy(screen, m)
		}()
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	if len(cmd.ExtraFiles) > 0 {
		cmd.ExtraFiles[0].Close()
	}
	for _, s := range c.steps {
		if !screen.WaitFor(s.wait, 20*time.Second) {
			t.Errorf("%s: no %q in:\n%s", c.name, s.wait, screen.String())
			cmd.Process.Kill()
			break
		}
		w := io.Writer(stdin)
		if s.tty || c.allTTY {
			w = term
		}
		if w != nil {
			io.WriteString(w, s.send)
		}
	}
	if stdin != nil {
		stdin.Close()
	}
	err := cmd.Wait()
	if term != nil {
		term.Close()
		<-copied
	}
	return screen.String(), exitCode(err)
}

// syncBuffer is a buffer the steps wait on.
type syncBuffer = gatewaytest.SyncBuffer

// The conversations every client has, whatever its flags.
const (
	execCommand = "echo exec-$((6*7)) $LC_RRTEST; exit 3"
	shellMarker = "shell-42"
)

// shellSteps answer the in-band prompts of a terminal session, run a
// command, and leave with status 5.
func (iv *interop) shellSteps(t *testing.T) []step {
	return []step{{wait: "Passphrase for web-01: ", send: "pp-web-01\r"},
		{wait: "Authenticator code: ", send: iv.code(t) + "\r"},
		{wait: "Team: ops_RR", send: "echo shell-$((6*7))\r"},
		{wait: shellMarker, send: "exit 5\r"}}
}

// checkExec checks what an exec cell printed.
func checkExec(t *testing.T, out string, code int, wantEnv bool) {
	t.Helper()
	if !strings.Contains(out, "exec-42") || code != 3 {
		t.Errorf("exec: exit %d, output %q; want exec-42 and 3", code, out)
	}
	if wantEnv && !strings.Contains(out, "exec-42 sent-env") {
		t.Errorf("exec: SendEnv LC_RRTEST did not arrive: %q", out)
	}
}

func checkShell(t *testing.T, out string, code int, wantStatus bool) {
	t.Helper()
	if !strings.Contains(out, shellMarker) || (wantStatus && code != 5) {
		t.Errorf("shell: exit %d, output %q; want %s and 5", code, out, shellMarker)
	}
	if strings.Contains(out, "pp-web-01") {
		t.Errorf("shell: the passphrase was echoed: %q", out)
	}
}

func (iv *interop) checkConsole(t *testing.T, out string, code int) {
	t.Helper()
	if code != 0 || !strings.Contains(out, iv.recording) {
		t.Errorf("console: exit %d, output %q; want the session %s listed", code, out, iv.recording)
	}
}

// checkFile checks a downloaded recording against the stored one.
func (iv *interop) checkFile(t *testing.T, path, out string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, iv.stored) {
		t.Errorf("download: %d bytes (%v), want the stored %d; output %q", len(got), err, len(iv.stored), out)
	}
}

// binary sends 1 MiB of random bytes through cat on the host with c and
// checks they came back exactly.
func binary(t *testing.T, ctx context.Context, c talk) {
	t.Helper()
	data := make([]byte, 1<<20)
	rand.Read(data)
	var got bytes.Buffer
	c.stdin, c.stdout = bytes.NewReader(data), &got
	out, code := c.run(t, ctx)
	if code != 0 || !bytes.Equal(got.Bytes(), data) {
		t.Errorf("binary: exit %d, %d bytes back (sha256 %x), want %d (%x); output %q",
			code, got.Len(), sha256.Sum256(got.Bytes()), len(data), sha256.Sum256(data), out)
	}
}

func TestInterop(t *testing.T) {
	testtool.Need(t, "ssh")
	iv := newInterop(t, interopRows)
	ctx := testCtx(t, 5*time.Minute)
	started := time.Now()

	// One closed session of ivy's, whose recording every client fetches.
	out, code := talk{name: "ssh", args: iv.openSSH("-p", "rr+web-01@127.0.0.1", "echo recorded"), env: iv.answers(t, true)}.run(t, ctx)
	if code != 0 || !strings.Contains(out, "recorded") {
		t.Fatalf("first session: %d %q", code, out)
	}
	rows, _ := iv.gw.Store.Sessions(ctx, store.SessionFilter{Person: "ivy"})
	if len(rows) != 1 {
		t.Fatalf("sessions: %+v", rows)
	}
	iv.recording = rows[0].ID
	var err error
	if iv.stored, err = os.ReadFile(rows[0].Recording); err != nil {
		t.Fatal(err)
	}
	remote := "recordings/" + iv.recording + ".gz"

	clients := []struct {
		row  string
		tool string // what must be installed
		run  func(iv *interop, t *testing.T, row string)
	}{
		{"OpenSSH 9 (ssh, scp, sftp)", "ssh", func(iv *interop, t *testing.T, row string) { iv.openSSHRow(t, ctx, row, remote) }},
		{"OpenSSH, BatchMode=yes", "ssh", func(iv *interop, t *testing.T, row string) { iv.batchRow(t, ctx, row, remote) }},
		{"OpenSSH, ControlMaster (-f -N -M, -S)", "ssh", func(iv *interop, t *testing.T, row string) { iv.controlMasterRow(t, ctx, row, remote) }},
		{"PuTTY plink 0.78", "plink", func(iv *interop, t *testing.T, row string) { iv.plinkRow(t, ctx, row) }},
		{"PuTTY pscp, psftp", "pscp", func(iv *interop, t *testing.T, row string) { iv.pscpRow(t, ctx, row, remote) }},
		{"Dropbear dbclient", "dbclient", func(iv *interop, t *testing.T, row string) { iv.dropbearRow(t, ctx, row) }},
		{"paramiko 2.12 (rr+HOST@ by password)", "python3-paramiko", func(iv *interop, t *testing.T, row string) { iv.pythonRow(t, ctx, row, "paramiko", remote) }},
		{"asyncssh 2.10", "python3-asyncssh", func(iv *interop, t *testing.T, row string) { iv.pythonRow(t, ctx, row, "asyncssh", remote) }},
		{"rclone (sftp backend)", "rclone", func(iv *interop, t *testing.T, row string) { iv.rcloneRow(t, ctx, row, remote) }},
		{"lftp (sftp)", "lftp", func(iv *interop, t *testing.T, row string) { iv.lftpRow(t, ctx, row, remote) }},
		{"curl (libssh2)", "curl", func(iv *interop, t *testing.T, row string) { iv.curlRow(t, ctx, row, remote) }},
		{"sshfs", "sshfs", func(iv *interop, t *testing.T, row string) { iv.sshfsRow(t, ctx, row) }},
	}
	if len(clients) != interopRows {
		t.Fatalf("%d client rows, interopRows says %d", len(clients), interopRows)
	}
	for _, c := range clients {
		iv.set(c.row, "", "") // the matrix lists the clients in this order
	}
	t.Run("clients", func(t *testing.T) {
		for i, c := range clients {
			riv := iv.rowPeople[i]
			riv.recording, riv.stored = iv.recording, iv.stored
			t.Run(c.row, func(t *testing.T) {
				t.Parallel()
				if !riv.installed(c.tool) {
					testtool.Missing(t, c.tool, "")
				}
				c.run(riv, t, c.row)
			})
		}
	})
	m := iv.matrix()
	t.Logf("interop matrix (%.0f s):\n%s", time.Since(started).Seconds(), m)
	if path := os.Getenv("RR_INTEROP_MATRIX"); path != "" {
		os.WriteFile(path, []byte(m), 0o644)
	}
}

func (iv *interop) installed(tool string) bool {
	switch tool {
	case "python3-paramiko", "python3-asyncssh":
		mod := strings.TrimPrefix(tool, "python3-")
		return exec.Command(iv.python, "-c", "import "+mod).Run() == nil
	}
	_, err := exec.LookPath(tool)
	return err == nil
}

func (iv *interop) openSSHRow(t *testing.T, ctx context.Context, row, remote string) {
	env := iv.answers(t, false)
	iv.cell(t, row, "exec", func(t *testing.T) {
		// -T and SendEnv with it.
		out, code := talk{name: "ssh", args: iv.openSSH("-p", "-T", "-o", "SendEnv=LC_RRTEST", "rr+web-01@127.0.0.1", execCommand), env: iv.answers(t, true)}.run(t, ctx)
		checkExec(t, out, code, true)
	})
	iv.cell(t, row, "shell", func(t *testing.T) {
		out, code := talk{name: "ssh", args: iv.openSSH("-p", "-tt", "rr@127.0.0.1", "web-01"), env: env, steps: iv.shellSteps(t)}.run(t, ctx)
		checkShell(t, out, code, true)
	})
	iv.cell(t, row, "console", func(t *testing.T) {
		out, code := talk{name: "ssh", args: iv.openSSH("-p", "-s", "rr@127.0.0.1", "rr-admin"), env: env,
			stdin: strings.NewReader("sessions\n")}.run(t, ctx)
		iv.checkConsole(t, out, code)
	})
	iv.cell(t, row, "sftp", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "sftp.gz")
		out, code := talk{name: "sftp", args: iv.openSSH("-P", "rr@127.0.0.1"), env: env,
			stdin: strings.NewReader("get " + remote + " " + dst + "\n")}.run(t, ctx)
		if code != 0 {
			t.Errorf("sftp: exit %d", code)
		}
		iv.checkFile(t, dst, out)
		dst = filepath.Join(t.TempDir(), "scp.gz") // OpenSSH 9's scp speaks SFTP
		out, code = talk{name: "scp", args: iv.openSSH("-P", "rr@127.0.0.1:"+remote, dst), env: env}.run(t, ctx)
		if code != 0 {
			t.Errorf("scp (SFTP): exit %d", code)
		}
		iv.checkFile(t, dst, out)
	})
	iv.cell(t, row, "scp", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "scp.gz")
		out, _ := talk{name: "scp", args: iv.openSSH("-P", "-O", "rr@127.0.0.1:"+remote, dst), env: env}.run(t, ctx)
		iv.checkFile(t, dst, out)
	})
	iv.cell(t, row, "binary", func(t *testing.T) {
		binary(t, ctx, talk{name: "ssh", args: iv.openSSH("-p", "rr+web-01@127.0.0.1", "cat"), env: iv.answers(t, true)})
	})
}

// batchRow: no prompt at all. A key login that asks nothing at login
// time gets in; the host's factors are asked on a terminal, so commands
// without one are refused with the reason.
func (iv *interop) batchRow(t *testing.T, ctx context.Context, row, remote string) {
	env := iv.answers(t, false)
	batch := func(portFlag string, args ...string) []string {
		return iv.openSSH(portFlag, append([]string{"-o", "BatchMode=yes"}, args...)...)
	}
	iv.cell(t, row, "exec", func(t *testing.T) {
		// What is possible: a terminal (shell column); without one the
		// person is told how.
		out, code := talk{name: "ssh", args: batch("-p", "rr@127.0.0.1", "web-01", "--", "true"), env: env}.run(t, ctx)
		if code != 1 || !strings.Contains(out, "cannot be asked without a terminal") {
			t.Errorf("exec in batch mode: exit %d, %q; want the reason", code, out)
		}
	})
	if iv.get(row, "exec") == "ok" {
		iv.na(row, "exec", "the host's passphrase is asked at login (rr+HOST@: keyboard-interactive, off in batch mode) "+
			"or on a terminal: without one the session is refused with the reason (checked); with -tt it is asked in-band (shell)")
	}
	iv.cell(t, row, "shell", func(t *testing.T) {
		out, code := talk{name: "ssh", args: batch("-p", "-tt", "rr@127.0.0.1", "web-01"), env: env, steps: iv.shellSteps(t)}.run(t, ctx)
		checkShell(t, out, code, true)
	})
	iv.cell(t, row, "console", func(t *testing.T) {
		out, code := talk{name: "ssh", args: batch("-p", "rr@127.0.0.1", "-s", "rr-admin"), env: env,
			stdin: strings.NewReader("sessions\n")}.run(t, ctx)
		iv.checkConsole(t, out, code)
	})
	iv.cell(t, row, "sftp", func(t *testing.T) {
		script := filepath.Join(t.TempDir(), "batch")
		dst := filepath.Join(t.TempDir(), "sftp.gz")
		os.WriteFile(script, []byte("get "+remote+" "+dst+"\n"), 0o644)
		out, code := talk{name: "sftp", args: iv.openSSH("-P", "-b", script, "rr@127.0.0.1"), env: env}.run(t, ctx)
		if code != 0 {
			t.Errorf("sftp -b: exit %d: %s", code, out)
		}
		iv.checkFile(t, dst, out)
		dst = filepath.Join(t.TempDir(), "scp.gz")
		out, _ = talk{name: "scp", args: batch("-P", "rr@127.0.0.1:"+remote, dst), env: env}.run(t, ctx)
		iv.checkFile(t, dst, out)
	})
	iv.cell(t, row, "scp", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "scp.gz")
		out, _ := talk{name: "scp", args: batch("-P", "-O", "rr@127.0.0.1:"+remote, dst), env: env}.run(t, ctx)
		iv.checkFile(t, dst, out)
	})
	iv.na(row, "binary", "as exec, and a terminal is not byte-exact")
}

// controlMasterRow: a master connection (-f -N -M) whose login names the
// host; sessions share it with -S. The first uses the passphrase given at
// login; a second one without a terminal is told why it cannot, and with
// -t is asked. A second master on rr@ carries the console and downloads.
func (iv *interop) controlMasterRow(t *testing.T, ctx context.Context, row, remote string) {
	env := iv.answers(t, false)
	dir, err := os.MkdirTemp("", "rr-cm") // a socket path must be short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	master := func(login, sock string) {
		t.Helper()
		out, code := talk{name: "ssh", args: iv.openSSH("-p", "-f", "-N", "-M", "-S", sock, login+"@127.0.0.1"), env: iv.answers(t, login != "rr")}.run(t, ctx)
		if code != 0 {
			t.Fatalf("master %s: exit %d: %s", login, code, out)
		}
		t.Cleanup(func() { exec.Command("ssh", "-S", sock, "-O", "exit", "x").Run() })
	}
	hostSock, rrSock := filepath.Join(dir, "host"), filepath.Join(dir, "rr")
	master("rr+web-01", hostSock)
	master("rr", rrSock)
	iv.cell(t, row, "exec", func(t *testing.T) {
		out, code := talk{name: "ssh", args: []string{"-S", hostSock, "x", execCommand}, env: env}.run(t, ctx)
		checkExec(t, out, code, false)
		out, code = talk{name: "ssh", args: []string{"-S", hostSock, "x", "true"}, env: env}.run(t, ctx)
		if code != 1 || !strings.Contains(out, "was used by this connection's first session") || !strings.Contains(out, "-S none") {
			t.Errorf("second session on the master: exit %d, %q; want the reason", code, out)
		}
	})
	iv.cell(t, row, "shell", func(t *testing.T) {
		steps := iv.shellSteps(t)
		steps = append(steps[:1], steps[2:]...) // the code was given on this connection
		out, code := talk{name: "ssh", args: []string{"-tt", "-S", hostSock, "x"}, env: env, steps: steps}.run(t, ctx)
		checkShell(t, out, code, true)
	})
	iv.cell(t, row, "console", func(t *testing.T) {
		out, code := talk{name: "ssh", args: []string{"-S", rrSock, "-s", "x", "rr-admin"}, env: env,
			stdin: strings.NewReader("sessions\n")}.run(t, ctx)
		iv.checkConsole(t, out, code)
	})
	iv.cell(t, row, "sftp", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "sftp.gz")
		out, _ := talk{name: "sftp", args: []string{"-o", "ControlPath=" + rrSock, "x"}, env: env,
			stdin: strings.NewReader("get " + remote + " " + dst + "\n")}.run(t, ctx)
		iv.checkFile(t, dst, out)
	})
	iv.cell(t, row, "scp", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "scp.gz")
		out, _ := talk{name: "scp", args: []string{"-O", "-o", "ControlPath=" + rrSock, "x:" + remote, dst}, env: env}.run(t, ctx)
		iv.checkFile(t, dst, out)
	})
	iv.na(row, "binary", "each session on the host needs its passphrase anew, asked on a terminal (not byte-exact) once the login's went to the first")
}

// puttyKey writes ivy's key as PuTTY's .ppk, once.
func (iv *interop) puttyKey(t *testing.T) string {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	if iv.ppk == "" {
		p := iv.key.Path + ".ppk"
		if out, err := exec.Command("puttygen", iv.key.Path, "-O", "private", "-o", p).CombinedOutput(); err != nil {
			t.Fatalf("puttygen: %v %s", err, out)
		}
		iv.ppk = p
	}
	return iv.ppk
}

func (iv *interop) putty(t *testing.T, portFlag string, extra ...string) []string {
	return append([]string{portFlag, iv.port, "-i", iv.puttyKey(t), "-hostkey", iv.gw.Fingerprint, "-noagent"}, extra...)
}

// loginSteps answer, on the client's terminal, the keyboard-interactive
// prompts of a login that names the host.
func (iv *interop) loginSteps(t *testing.T) []step {
	return []step{{wait: "Passphrase for web-01:", send: "pp-web-01\n", tty: true},
		{wait: "Authenticator code:", send: iv.code(t) + "\n", tty: true}}
}

func (iv *interop) plinkRow(t *testing.T, ctx context.Context, row string) {
	env := iv.answers(t, false)
	iv.cell(t, row, "exec", func(t *testing.T) {
		out, code := talk{name: "plink", args: iv.putty(t, "-P", "rr+web-01@127.0.0.1", execCommand), env: iv.answers(t, false), tty: true,
			stdin: strings.NewReader(""), steps: iv.loginSteps(t)}.run(t, ctx)
		checkExec(t, out, code, false)
	})
	iv.cell(t, row, "shell", func(t *testing.T) {
		out, code := talk{name: "plink", args: iv.putty(t, "-P", "-batch", "-t", "rr@127.0.0.1", "web-01"), env: env, steps: iv.shellSteps(t)}.run(t, ctx)
		checkShell(t, out, code, true)
	})
	iv.cell(t, row, "console", func(t *testing.T) {
		out, code := talk{name: "plink", args: iv.putty(t, "-P", "-batch", "-s", "rr@127.0.0.1", "rr-admin"), env: env,
			stdin: strings.NewReader("sessions\n")}.run(t, ctx)
		iv.checkConsole(t, out, code)
	})
	iv.na(row, "sftp", "plink has no file transfer: see pscp and psftp")
	iv.na(row, "scp", "plink has no file transfer: see pscp")
	iv.cell(t, row, "binary", func(t *testing.T) {
		binary(t, ctx, talk{name: "plink", args: iv.putty(t, "-P", "rr+web-01@127.0.0.1", "cat"), env: iv.answers(t, false), tty: true,
			steps: iv.loginSteps(t)})
	})
}

func (iv *interop) pscpRow(t *testing.T, ctx context.Context, row, remote string) {
	env := iv.answers(t, false)
	for _, c := range []string{"exec", "shell", "console", "binary"} {
		iv.na(row, c, "file transfer only")
	}
	iv.cell(t, row, "sftp", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "pscp.gz")
		out, _ := talk{name: "pscp", args: iv.putty(t, "-P", "-batch", "-sftp", "rr@127.0.0.1:"+remote, dst), env: env}.run(t, ctx)
		iv.checkFile(t, dst, out)
		script := filepath.Join(t.TempDir(), "batch")
		dst = filepath.Join(t.TempDir(), "psftp.gz")
		os.WriteFile(script, []byte("get "+remote+" "+dst+"\n"), 0o644)
		out, _ = talk{name: "psftp", args: iv.putty(t, "-P", "-batch", "-b", script, "rr@127.0.0.1"), env: env}.run(t, ctx)
		iv.checkFile(t, dst, out)
	})
	iv.cell(t, row, "scp", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "pscp.gz")
		out, _ := talk{name: "pscp", args: iv.putty(t, "-P", "-batch", "-scp", "rr@127.0.0.1:"+remote, dst), env: env}.run(t, ctx)
		iv.checkFile(t, dst, out)
	})
}

// dropbear prepares dbclient: its form of the key, and the gateway's key
// in ~/.ssh/known_hosts.
func (iv *interop) dropbear(t *testing.T) []string {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	if iv.dbKey == "" {
		p := iv.key.Path + ".dropbear"
		if out, err := exec.Command("dropbearconvert", "openssh", "dropbear", iv.key.Path, p).CombinedOutput(); err != nil {
			t.Fatalf("dropbearconvert: %v %s", err, out)
		}
		os.MkdirAll(filepath.Join(iv.home, ".ssh"), 0o700)
		// Dropbear matches the host name alone, whatever the port.
		line := fmt.Sprintf("%s %s", iv.host, ssh.MarshalAuthorizedKey(iv.gw.HostKey.PublicKey()))
		if err := os.WriteFile(filepath.Join(iv.home, ".ssh", "known_hosts"), []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		iv.dbKey = p
	}
	return []string{"-p", iv.port, "-i", iv.dbKey}
}

func (iv *interop) dropbearRow(t *testing.T, ctx context.Context, row string) {
	env := iv.answers(t, false)
	args := func(extra ...string) []string { return append(iv.dropbear(t), extra...) }
	iv.cell(t, row, "exec", func(t *testing.T) {
		out, code := talk{name: "dbclient", args: args("rr+web-01@127.0.0.1", execCommand), env: iv.answers(t, false), tty: true,
			stdin: strings.NewReader(""), steps: iv.loginSteps(t)}.run(t, ctx)
		checkExec(t, out, code, false)
		if strings.Contains(out, "ops_RRPassphrase") {
			t.Errorf("the instruction is glued to the prompt: %q", out)
		}
	})
	iv.cell(t, row, "shell", func(t *testing.T) {
		// dbclient asks for a terminal only when its own stdin is one.
		out, code := talk{name: "dbclient", args: args("-t", "rr@127.0.0.1", "web-01"), env: env, allTTY: true,
			steps: iv.shellSteps(t)}.run(t, ctx)
		checkShell(t, out, code, true)
	})
	iv.cell(t, row, "console", func(t *testing.T) {
		out, code := talk{name: "dbclient", args: args("-s", "rr@127.0.0.1", "rr-admin"), env: env,
			stdin: strings.NewReader("sessions\n")}.run(t, ctx)
		iv.checkConsole(t, out, code)
	})
	iv.na(row, "sftp", "dbclient has no file transfer (Dropbear's scp is not in dropbear-bin)")
	iv.na(row, "scp", "dbclient has no file transfer (Dropbear's scp is not in dropbear-bin)")
	iv.cell(t, row, "binary", func(t *testing.T) {
		binary(t, ctx, talk{name: "dbclient", args: args("rr+web-01@127.0.0.1", "cat"), env: iv.answers(t, false), tty: true,
			steps: iv.loginSteps(t)})
	})
}

func (iv *interop) pythonRow(t *testing.T, ctx context.Context, row, lib, remote string) {
	env := iv.answers(t, false)
	script, _ := filepath.Abs("testdata/interop.py")
	py := func(args ...string) []string { return append([]string{script, lib}, args...) }
	iv.cell(t, row, "exec", func(t *testing.T) {
		out, code := talk{name: iv.python, args: py("exec", "rr+web-01", execCommand), env: iv.answers(t, true), stdin: strings.NewReader("")}.run(t, ctx)
		checkExec(t, out, code, false)
	})
	iv.cell(t, row, "shell", func(t *testing.T) {
		out, code := talk{name: iv.python, args: py("pty", "rr", "web-01"), env: env, steps: iv.shellSteps(t)}.run(t, ctx)
		checkShell(t, out, code, true)
	})
	iv.cell(t, row, "console", func(t *testing.T) {
		out, code := talk{name: iv.python, args: py("subsystem", "rr-admin"), env: env, stdin: strings.NewReader("sessions\n")}.run(t, ctx)
		iv.checkConsole(t, out, code)
	})
	iv.cell(t, row, "sftp", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "get.gz")
		out, _ := talk{name: iv.python, args: py("get", remote, dst), env: env, stdin: strings.NewReader("")}.run(t, ctx)
		iv.checkFile(t, dst, out)
	})
	if lib == "paramiko" {
		iv.na(row, "scp", "paramiko has no scp client")
	} else {
		iv.cell(t, row, "scp", func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "scp.gz")
			out, _ := talk{name: iv.python, args: py("scp", remote, dst), env: env, stdin: strings.NewReader("")}.run(t, ctx)
			iv.checkFile(t, dst, out)
		})
	}
	iv.cell(t, row, "binary", func(t *testing.T) {
		binary(t, ctx, talk{name: iv.python, args: py("exec", "rr+web-01", "cat"), env: iv.answers(t, true)})
	})
}

func (iv *interop) transferOnly(row string, cols ...string) {
	for _, c := range []string{"exec", "shell", "console", "binary"} {
		iv.na(row, c, "file transfer only")
	}
	for _, c := range cols {
		iv.na(row, c, "speaks SFTP only")
	}
}

// rcloneRow fetches with rclone's SFTP backend as configured by default,
// which probes the server's shell with commands (echo, md5sum, sha1sum)
// on its first connection: they are refused quietly, in one audit row.
func (iv *interop) rcloneRow(t *testing.T, ctx context.Context, row, remote string) {
	iv.transferOnly(row, "scp")
	iv.cell(t, row, "sftp", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "rclone.gz")
		out, code := talk{name: "rclone", args: []string{"copyto", ":sftp:" + remote, dst, "--sftp-host", iv.host, "--sftp-port", iv.port,
			"--sftp-user", "rr", "--sftp-key-file", iv.key.Path, "--sftp-known-hosts-file", iv.gw.KnownHosts,
			"--config", "/dev/null", "--low-level-retries", "1", "--retries", "1"},
			env: iv.answers(t, false), stdin: strings.NewReader("")}.run(t, ctx)
		if code != 0 {
			t.Errorf("rclone: exit %d: %s", code, out)
		}
		iv.checkFile(t, dst, out)
		// Its probes of the shell (echo, md5sum, sha1sum) were refused
		// quietly: one summary row, no refused session each.
		var probes, refused []string
		for deadline := time.Now().Add(10 * time.Second); len(probes) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			probes, refused = nil, nil
			evs, _ := iv.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: "session.open", Actor: iv.name})
			for _, ev := range evs {
				switch {
				case ev.Outcome == "denied" && strings.Contains(ev.Detail, "probe"):
					probes = append(probes, ev.Detail)
				case ev.Outcome == "denied" && ev.Target != "web-01":
					refused = append(refused, ev.Target)
				}
			}
		}
		if len(probes) != 1 || len(refused) != 0 {
			t.Errorf("rclone's probes: summary rows %q, refused sessions %q; want one summary and none", probes, refused)
		}
	})
}

func (iv *interop) lftpRow(t *testing.T, ctx context.Context, row, remote string) {
	iv.transferOnly(row, "scp")
	iv.cell(t, row, "sftp", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "lftp.gz")
		connect := "ssh -a -x " + strings.Join(iv.openSSH("-p", "-o", "BatchMode=yes"), " ")
		script := fmt.Sprintf("set sftp:connect-program %q; set net:max-retries 1; open -u rr, -p %s sftp://%s; get %s -o %s",
			connect, iv.port, iv.host, remote, dst)
		out, code := talk{name: "lftp", args: []string{"-c", script}, env: iv.answers(t, false), stdin: strings.NewReader("")}.run(t, ctx)
		if code != 0 {
			t.Errorf("lftp: exit %d: %s", code, out)
		}
		iv.checkFile(t, dst, out)
	})
}

func (iv *interop) curlRow(t *testing.T, ctx context.Context, row, remote string) {
	for _, c := range []string{"exec", "shell", "console", "binary"} {
		iv.na(row, c, "file transfer only")
	}
	sum := sha256.Sum256(iv.gw.HostKey.PublicKey().Marshal())
	args := func(scheme, dst string) []string {
		return []string{"-sS", "--key", iv.key.Path, "--pubkey", iv.key.Path + ".pub",
			"--hostpubsha256", base64.StdEncoding.EncodeToString(sum[:]), "-u", "rr:", "-o", dst,
			fmt.Sprintf("%s://%s:%s/~/%s", scheme, iv.host, iv.port, remote)}
	}
	for _, scheme := range []string{"sftp", "scp"} {
		iv.cell(t, row, scheme, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "curl.gz")
			out, code := talk{name: "curl", args: args(scheme, dst), env: iv.answers(t, false), stdin: strings.NewReader("")}.run(t, ctx)
			if code != 0 && strings.Contains(out, "Unable to exchange encryption keys") && oldLibssh2() {
				iv.na(row, scheme, "libssh2 before 1.11 (Debian 12's curl) has no ETM MAC and no AEAD cipher, and the gateway offers only those (ssh-audit's advice): adding hmac-sha2-256 to ssh.macs serves it")
				t.Skip(out)
			}
			if code != 0 {
				t.Errorf("curl %s: exit %d: %s", scheme, code, out)
			}
			iv.checkFile(t, dst, out)
		})
	}
}

// oldLibssh2 reports whether curl is built on libssh2 older than 1.11,
// the first with ETM MACs.
func oldLibssh2() bool {
	out, _ := exec.Command("curl", "-V").Output()
	_, v, ok := strings.Cut(string(out), "libssh2/")
	if !ok {
		return false
	}
	var major, minor int
	fmt.Sscanf(v, "%d.%d", &major, &minor)
	return major < 1 || major == 1 && minor < 11
}

func (iv *interop) sshfsRow(t *testing.T, ctx context.Context, row string) {
	iv.transferOnly(row, "scp")
	iv.cell(t, row, "sftp", func(t *testing.T) {
		if _, err := os.Stat("/dev/fuse"); err != nil {
			iv.na(row, "sftp", "no /dev/fuse on this machine")
			t.Skip("no /dev/fuse")
		}
		mnt := t.TempDir()
		sshCmd := "ssh " + strings.Join(iv.openSSH("-p", "-o", "BatchMode=yes"), " ")
		out, code := talk{name: "sshfs", args: []string{"-o", "ssh_command=" + sshCmd, "-o", "ro", "rr@" + iv.host + ":recordings", mnt},
			env: iv.answers(t, false), stdin: strings.NewReader("")}.run(t, ctx)
		if code != 0 {
			if strings.Contains(out, "fuse") {
				iv.na(row, "sftp", "FUSE mounts are not allowed on this machine: "+strings.TrimSpace(out))
				t.Skip(out)
			}
			t.Fatalf("sshfs: exit %d: %s", code, out)
		}
		defer exec.Command("fusermount", "-u", mnt).Run()
		entries, _ := os.ReadDir(mnt)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		var got []byte
		for _, n := range names {
			if strings.HasPrefix(n, iv.recording) {
				got, _ = os.ReadFile(filepath.Join(mnt, n))
			}
		}
		if !bytes.Equal(got, iv.stored) {
			t.Errorf("sshfs: %d bytes of %s among %q", len(got), iv.recording, names)
		}
	})
}
