package gatewaytest

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
)

// WrongPassword logs in to the people's port at addr, from the local
// address from, as name (known or not) with a wrong password, and returns
// an error unless the login is refused. i tells the attempts apart.
func WrongPassword(addr, from, name string, i int) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 30 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(2 * time.Minute))
	answer := ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
		answers := make([]string, len(questions))
		for j, q := range questions {
			answers[j] = "wrong password " + strconv.Itoa(i)
			if strings.HasPrefix(q, "Username") {
				answers[j] = name
			}
		}
		return answers, nil
	})
	c, _, _, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{User: auth.ServiceLogin,
		Auth: []ssh.AuthMethod{ssh.RetryableAuthMethod(answer, 1)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err == nil {
		c.Close()
		return fmt.Errorf("attempt %d (%s from %s) logged in with a wrong password", i, name, from)
	}
	if !strings.Contains(err.Error(), "unable to authenticate") {
		return fmt.Errorf("attempt %d from %s: %v, want refused", i, from, err)
	}
	return nil
}

// PeakRSS is process pid's peak resident set size (VmHWM) in bytes.
func PeakRSS(pid int) (int64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0, err
	}
	return int64(st.VmHWM), nil
}
