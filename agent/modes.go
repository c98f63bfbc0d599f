package agent

import (
	"encoding/binary"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// Terminal modes of a pty-req (RFC 4254 §8, x/crypto/ssh's names): opcode
// → control character index, or flag bit of one of termios's flag words.
var (
	modeChars = map[byte]int{
		ssh.VINTR: unix.VINTR, ssh.VQUIT: unix.VQUIT, ssh.VERASE: unix.VERASE, ssh.VKILL: unix.VKILL,
		ssh.VEOF: unix.VEOF, ssh.VEOL: unix.VEOL, ssh.VEOL2: unix.VEOL2, ssh.VSTART: unix.VSTART,
		ssh.VSTOP: unix.VSTOP, ssh.VSUSP: unix.VSUSP, ssh.VREPRINT: unix.VREPRINT,
		ssh.VWERASE: unix.VWERASE, ssh.VLNEXT: unix.VLNEXT, ssh.VDISCARD: unix.VDISCARD,
	}
	modeIflags = map[byte]uint32{
		ssh.IGNPAR: unix.IGNPAR, ssh.PARMRK: unix.PARMRK, ssh.INPCK: unix.INPCK, ssh.ISTRIP: unix.ISTRIP,
		ssh.INLCR: unix.INLCR, ssh.IGNCR: unix.IGNCR, ssh.ICRNL: unix.ICRNL, ssh.IUCLC: unix.IUCLC,
		ssh.IXON: unix.IXON, ssh.IXANY: unix.IXANY, ssh.IXOFF: unix.IXOFF, ssh.IMAXBEL: unix.IMAXBEL,
		ssh.IUTF8: unix.IUTF8,
	}
	modeLflags = map[byte]uint32{
		ssh.ISIG: unix.ISIG, ssh.ICANON: unix.ICANON, ssh.XCASE: unix.XCASE, ssh.ECHO: unix.ECHO,
		ssh.ECHOE: unix.ECHOE, ssh.ECHOK: unix.ECHOK, ssh.ECHONL: unix.ECHONL, ssh.NOFLSH: unix.NOFLSH,
		ssh.TOSTOP: unix.TOSTOP, ssh.IEXTEN: unix.IEXTEN, ssh.ECHOCTL: unix.ECHOCTL,
		ssh.ECHOKE: unix.ECHOKE, ssh.PENDIN: unix.PENDIN,
	}
	modeOflags = map[byte]uint32{
		ssh.OPOST: unix.OPOST, ssh.OLCUC: unix.OLCUC, ssh.ONLCR: unix.ONLCR, ssh.OCRNL: unix.OCRNL,
		ssh.ONOCR: unix.ONOCR, ssh.ONLRET: unix.ONLRET,
	}
	modeCflags = map[byte]uint32{ssh.PARENB: unix.PARENB, ssh.PARODD: unix.PARODD}
	modeCsize  = map[byte]uint32{ssh.CS7: unix.CS7, ssh.CS8: unix.CS8}
)

// applyModes sets the terminal modes of a pty-req on the terminal fd, as
// sshd does, so that the client's erase character, UTF-8 line editing and
// the rest are the terminal's. Opcodes it does not know (the speeds among
// them) are skipped; a malformed list stops at the malformation.
func applyModes(fd int, modes []byte) error {
	if len(modes) == 0 {
		return nil
	}
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	set := func(word *uint32, bit uint32, on bool) {
		if on {
			*word |= bit
		} else {
			*word &^= bit
		}
	}
	for len(modes) >= 1 {
		op := modes[0]
		if op == 0 || op >= 160 || len(modes) < 5 { // TTY_OP_END, or arguments we cannot read
			break
		}
		v := binary.BigEndian.Uint32(modes[1:5])
		modes = modes[5:]
		if i, ok := modeChars[op]; ok {
			t.Cc[i] = byte(v)
		} else if b, ok := modeIflags[op]; ok {
			set(&t.Iflag, b, v != 0)
		} else if b, ok := modeLflags[op]; ok {
			set(&t.Lflag, b, v != 0)
		} else if b, ok := modeOflags[op]; ok {
			set(&t.Oflag, b, v != 0)
		} else if b, ok := modeCflags[op]; ok {
			set(&t.Cflag, b, v != 0)
		} else if b, ok := modeCsize[op]; ok && v != 0 {
			t.Cflag = t.Cflag&^unix.CSIZE | b
		}
	}
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
