package recorder

import (
	"encoding/binary"
	"hash/crc32"
)

// storedGzip keeps the state of a gzip stream (RFC 1952) whose deflate
// data is only stored blocks (RFC 1951 §3.2.4). compress/gzip at
// NoCompression does the same on the wire but keeps a full compressor —
// about 750 KiB per writer, per live session — that stored blocks never
// use; this keeps nothing but a CRC and a size. The Writer builds each
// block in its own buffer, behind a header of blockHeaderLen bytes that
// seal fills in, and writes it whole: every block is complete once
// written, so a file cut between blocks decodes up to the cut, which is
// what crash safety needs.
type storedGzip struct {
	crc  uint32
	size uint32
}

// gzipHeader starts the stream: ID1 ID2, CM=deflate, FLG=0, MTIME=0,
// XFL=0, OS=255 (unknown).
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

const (
	blockHeaderLen = 5     // BFINAL/BTYPE padded to a byte, LEN, NLEN
	maxStored      = 65535 // the most data a stored block holds
)

// seal fills in block[:blockHeaderLen] as the header of a non-final
// stored block holding block[blockHeaderLen:] (at most maxStored bytes),
// and adds that data to the stream's CRC and size.
func (z *storedGzip) seal(block []byte) {
	data := block[blockHeaderLen:]
	n := len(data)
	if n > maxStored {
		panic("recorder: stored block too large")
	}
	block[0] = 0 // BFINAL=0, BTYPE=00: the header's 3 bits padded to a byte
	binary.LittleEndian.PutUint16(block[1:], uint16(n))
	binary.LittleEndian.PutUint16(block[3:], ^uint16(n))
	z.crc = crc32.Update(z.crc, crc32.IEEETable, data)
	z.size += uint32(n)
}

// trailer ends the deflate data with an empty final block and gives the
// gzip trailer (CRC-32 and size).
func (z *storedGzip) trailer() [13]byte {
	var t [13]byte
	t[0] = 1 // BFINAL=1, BTYPE=00, LEN=0, NLEN=0xffff
	t[3], t[4] = 0xff, 0xff
	binary.LittleEndian.PutUint32(t[5:], z.crc)
	binary.LittleEndian.PutUint32(t[9:], z.size)
	return t
}
