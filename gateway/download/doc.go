// Package download serves closed sessions' recordings to the people who may
// see them, over SFTP (OpenSSH 9's scp and sftp) and the legacy scp protocol
// (scp -O), as a virtual read-only tree:
//
//	/                                    dir  0555
//	/recordings                          dir  0555
//	/recordings/ID_HOST_20261125T211000Z.gz  0444  (Entry.Name; also reachable as ID.gz)
//	/recordings/ID.manifest                  0444  (its signed manifest, when the
//	                                               Library has Manifests; not listed)
//
// It owns:
//   - path resolution: every path is cleaned against "/" and must name one of
//     the three kinds above; anything else is not found, and no real
//     filesystem is ever touched by path;
//   - streaming: a recording is read through an Opener (local file or S3
//     ranged GET) by one sequential stream per open file, with a bounded ring
//     of recent bytes for slightly out-of-order SFTP reads and a re-open for
//     far jumps, so memory stays bounded whatever the file size;
//   - integrity: the bytes that end a file are never handed out before the
//     whole file's size and SHA-256 match what the store recorded (the
//     Entry); a mismatch fails the transfer so the client exits non-zero;
//   - the legacy scp source side ("scp -f"), and the refusal of every write.
//
// It must not know about SSH connections, the store or the gateway: the
// gateway hands it a channel as an io.ReadWriter and a Library that answers
// for the person connected, and audits what Library.Fetched reports.
//
// A Server serves one person: build one per connection, with that person's
// Library.
package download
