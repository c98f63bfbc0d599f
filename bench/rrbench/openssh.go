package main

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshdPath is where Debian's openssh-server puts sshd; the benchmark
// never installs it.
func sshdPath() string {
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	return ""
}

// openssh is two throwaway sshds on 127.0.0.1, "target" and "jump", and
// an ssh_config naming them: "direct" is the target, "target" is the
// target through the jump host (ProxyJump, as ssh -J).
type openssh struct {
	dir   string
	procs []*exec.Cmd
	ports map[string]int // "target" and "jump"
}

func startOpenSSH(sshd, dir string) (*openssh, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	o := &openssh{dir: dir}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, "id"), "person-p0"); err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, "host_key"), "openssh-host"); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(authorizedLine(personKey(0))+"\n"), 0o600); err != nil {
		return nil, err
	}
	// sshd refuses to start without its privilege separation directory.
	if os.Geteuid() == 0 {
		os.MkdirAll("/run/sshd", 0o755)
	}
	var known bytes.Buffer
	ports := map[string]int{}
	o.ports = ports
	for _, name := range []string{"target", "jump"} {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[name] = port
		fmt.Fprintf(&known, "[127.0.0.1]:%d %s\n", port, authorizedLine(signer("openssh-host")))
		conf := filepath.Join(dir, "sshd_config."+name)
		if err := os.WriteFile(conf, fmt.Appendf(nil, `Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
LogLevel ERROR
`, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd."+name+".pid")), 0o600); err != nil {
			return nil, err
		}
		cmd := exec.Command(sshd, "-D", "-e", "-f", conf)
		logFile, err := os.Create(filepath.Join(dir, "sshd."+name+".log")) // our readiness probes show there
		if err != nil {
			o.stop()
			return nil, err
		}
		defer logFile.Close()
		cmd.Stderr = logFile
		if err := cmd.Start(); err != nil {
			o.stop()
			return nil, err
		}
		o.procs = append(o.procs, cmd)
	}
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), known.Bytes(), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ssh_config"), fmt.Appendf(nil, `Host jump
  HostName 127.0.0.1
  Port %[1]d
Host direct
  HostName 127.0.0.1
  Port %[2]d
Host target
  HostName 127.0.0.1
  Port %[2]d
  ProxyJump jump
Host *
  User %[3]s
  IdentityFile %[4]s
  IdentitiesOnly yes
  UserKnownHostsFile %[5]s
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
`, ports["jump"], ports["target"], u.Username, filepath.Join(dir, "id"), filepath.Join(dir, "known_hosts")), 0o600); err != nil {
		o.stop()
		return nil, err
	}
	// Wait until both answer.
	for _, p := range ports {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				o.stop()
				return nil, fmt.Errorf("sshd on port %d did not start: %w", p, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return o, nil
}

func writeKey(path, name string) error {
	block, err := ssh.MarshalPrivateKey(privateKey(name), "")
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (o *openssh) stop() {
	for _, p := range o.procs {
		p.Process.Kill()
		p.Wait()
	}
}

// matchedCipher is the cipher x/crypto/ssh negotiates between the Go
// client, the gateway and the agent: the OpenSSH runs the target is judged
// against use it too (OpenSSH's own default, chacha20-poly1305, is
// measured as a reference).
const matchedCipher = "aes128-gcm@openssh.com"

// sshArgs are ssh's arguments for host with cipher ("" for OpenSSH's
// default).
func (o *openssh) sshArgs(host, cipher string) []string {
	args := []string{"-F", filepath.Join(o.dir, "ssh_config")}
	if cipher != "" {
		args = append(args, "-c", cipher)
	}
	return append(args, host)
}

// setup is what an ssh run to host costs before any byte moves (process
// start, handshakes, authentication, the session and a command): the
// median of three runs of `ssh HOST true`. The Go paths' clocks start
// after their handshake, so this is taken off OpenSSH's (slightly more
// than its share: `true` and the exit are in it too).
func (o *openssh) setup(host, cipher string) (time.Duration, error) {
	var ds []time.Duration
	for range 3 {
		t0 := time.Now()
		if out, err := exec.Command("ssh", append(o.sshArgs(host, cipher), "true")...).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("ssh %s true: %v: %s", host, err, out)
		}
		ds = append(ds, time.Since(t0))
	}
	slices.Sort(ds)
	return ds[1], nil
}

// bulk moves size bytes of log lines through OpenSSH to host ("direct"
// or "target", the latter through the jump host), with cipher, and takes
// setup (see setup) off the time.
func (o *openssh) bulk(host, cipher string, setup time.Duration, size int64, down bool) (transfer, error) {
	args := o.sshArgs(host, cipher)
	var cmd *exec.Cmd
	t0 := time.Now()
	var n int64
	if down {
		cmd = exec.Command("ssh", append(args, fmt.Sprintf("yes '%s' | head -c %d", logLine[:len(logLine)-1], size))...)
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return transfer{}, err
		}
		var err error
		if n, err = io.Copy(io.Discard, out); err != nil {
			return transfer{}, err
		}
	} else {
		cmd = exec.Command("ssh", append(args, "cat > /dev/null")...)
		in, _ := cmd.StdinPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return transfer{}, err
		}
		buf := bytes.Repeat([]byte(logLine), (256<<10)/len(logLine))
		for n < size {
			m, err := in.Write(buf[:min(int64(len(buf)), size-n)])
			n += int64(m)
			if err != nil {
				return transfer{}, err
			}
		}
		in.Close()
	}
	if err := cmd.Wait(); err != nil {
		return transfer{}, fmt.Errorf("ssh %s: %w", host, err)
	}
	if n != size {
		return transfer{}, fmt.Errorf("ssh %s: moved %d bytes of %d", host, n, size)
	}
	return transfer{bytes: n, elapsed: max(time.Since(t0)-setup, time.Millisecond)}, nil
}

// keystrokeTargets are the OpenSSH paths of the keystroke figure, for the
// same Go client as rr's paths: "OpenSSH direct" logs in to the target
// sshd; "ssh -J" does what OpenSSH's ProxyJump does: it logs in to the
// jump sshd, opens a direct-tcpip channel through it to the target's
// port, and runs the target's SSH session end to end inside it (the jump
// host relays ciphertext, never decrypts it). Both run the same shell as
// the agent's sessions, so the echo is the terminal's in each.
func (o *openssh) keystrokeTargets(shell string) (direct, jump target) {
	hostKey := signer("openssh-host").PublicKey()
	addr := func(name string) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(o.ports[name])) }
	u, _ := user.Current()
	login := ""
	if u != nil {
		login = u.Username
	}
	direct = target{name: "OpenSSH direct", addr: addr("target"), hostKey: hostKey, login: login, command: "exec " + shell + " -i"}
	jump = direct
	jump.name, jump.jump = "OpenSSH ssh -J", addr("jump")
	return direct, jump
}
