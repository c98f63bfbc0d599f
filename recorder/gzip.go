package recorder

import (
	"encoding/binary"
	"hash/crc32"
	"io"
)

// storedGzip writes a gzip stream (RFC 1952) whose deflate data is only
// stored blocks (RFC 1951 §3.2.4). compress/gzip at NoCompression does the
// same on the wire but keeps a full compressor — about 750 KiB per writer,
// per live session — that stored blocks never use; this keeps nothing but
// a CRC. Every block is complete once written, so a file cut between
// blocks decodes up to the cut, which is what crash safety needs.
type storedGzip struct {
	w    io.Writer
	crc  uint32
	size uint32
	hdr  [5]byte
}

const maxStored = 65535

func newStoredGzip(w io.Writer) (*storedGzip, error) {
	// ID1 ID2, CM=deflate, FLG=0, MTIME=0, XFL=0, OS=255 (unknown).
	if _, err := w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}); err != nil {
		return nil, err
	}
	return &storedGzip{w: w}, nil
}

// Write puts p into stored blocks of at most 65535 bytes.
func (z *storedGzip) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxStored)
		z.hdr[0] = 0 // BFINAL=0, BTYPE=00: the header's 3 bits padded to a byte
		binary.LittleEndian.PutUint16(z.hdr[1:], uint16(n))
		binary.LittleEndian.PutUint16(z.hdr[3:], ^uint16(n))
		if _, err := z.w.Write(z.hdr[:]); err != nil {
			return written, err
		}
		if _, err := z.w.Write(p[:n]); err != nil {
			return written, err
		}
		z.crc = crc32.Update(z.crc, crc32.IEEETable, p[:n])
		z.size += uint32(n)
		written += n
		p = p[n:]
	}
	return written, nil
}

// Close ends the deflate data with an empty final block and writes the
// trailer (CRC-32 and size).
func (z *storedGzip) Close() error {
	var t [13]byte
	t[0] = 1 // BFINAL=1, BTYPE=00, LEN=0, NLEN=0xffff
	t[3], t[4] = 0xff, 0xff
	binary.LittleEndian.PutUint32(t[5:], z.crc)
	binary.LittleEndian.PutUint32(t[9:], z.size)
	_, err := z.w.Write(t[:])
	return err
}
