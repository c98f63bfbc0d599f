package agent

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// Terminal modes of a pty-req (RFC 4254 §8): opcode → control character
// index, or flag bit of one of termios's flag words.
var (
	modeChars = map[byte]int{
		1: unix.VINTR, 2: unix.VQUIT, 3: unix.VERASE, 4: unix.VKILL, 5: unix.VEOF, 6: unix.VEOL,
		7: unix.VEOL2, 8: unix.VSTART, 9: unix.VSTOP, 10: unix.VSUSP, 12: unix.VREPRINT,
		13: unix.VWERASE, 14: unix.VLNEXT, 18: unix.VDISCARD,
	}
	modeIflags = map[byte]uint32{
		30: unix.IGNPAR, 31: unix.PARMRK, 32: unix.INPCK, 33: unix.ISTRIP, 34: unix.INLCR, 35: unix.IGNCR,
		36: unix.ICRNL, 37: unix.IUCLC, 38: unix.IXON, 39: unix.IXANY, 40: unix.IXOFF, 41: unix.IMAXBEL,
		42: unix.IUTF8,
	}
	modeLflags = map[byte]uint32{
		50: unix.ISIG, 51: unix.ICANON, 52: unix.XCASE, 53: unix.ECHO, 54: unix.ECHOE, 55: unix.ECHOK,
		56: unix.ECHONL, 57: unix.NOFLSH, 58: unix.TOSTOP, 59: unix.IEXTEN, 60: unix.ECHOCTL,
		61: unix.ECHOKE, 62: unix.PENDIN,
	}
	modeOflags = map[byte]uint32{
		70: unix.OPOST, 71: unix.OLCUC, 72: unix.ONLCR, 73: unix.OCRNL, 74: unix.ONOCR, 75: unix.ONLRET,
	}
	modeCflags = map[byte]uint32{92: unix.PARENB, 93: unix.PARODD}
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
		if op == 0 || op >= 160 || len(modes) < 5 { // TTY_OP_END, or args we cannot read
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
		} else if op == 90 || op == 91 { // CS7, CS8
			if v != 0 {
				t.Cflag = t.Cflag&^unix.CSIZE | map[byte]uint32{90: unix.CS7, 91: unix.CS8}[op]
			}
		}
	}
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
