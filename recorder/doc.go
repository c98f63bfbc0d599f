// Package recorder writes and reads rr's session recordings (docs/recording-format.md):
//
//	file = gzip( OpenSSL "enc -aes-256-ctr -pbkdf2" stream( asciicast v2 ) )
//
// so that `gzip -dc FILE | openssl enc -d -aes-256-ctr -pbkdf2 -k P` prints
// the session with stock tools. The OpenSSL layer is "Salted__", 8 random
// salt bytes, then the ciphertext; key and IV are PBKDF2-HMAC-SHA256(P,
// salt, 10000 iterations, 48 bytes) split 32/16, and the CTR counter is the
// IV as a 128-bit big-endian number. The gzip layer only frames: stored
// blocks (compressing ciphertext gains nothing), written by a small
// writer of our own because compress/gzip keeps a 750 KiB compressor per
// live session even when it stores; every block is complete once written,
// so a flush makes every event so far decodable.
//
// The asciicast v2 stream is a header line (version, width, height,
// timestamp, env, plus rr's own: session_id, host, person, team, command,
// gateway), then events [t, code, data]: "o" output, "i" input, "r"
// resize ("COLSxROWS"), and last "x", a JSON object saying how the session
// ended. Asciicast strings are UTF-8; terminal bytes need not be. A chunk
// that is not valid UTF-8 is written as its "o" (or "i") event with each
// invalid byte shown as U+FFFD — what a player should display — followed at
// once by an "ob" (or "ib") event holding the exact bytes in base64. A
// chunk of binary data (see isBinary: 256 bytes or more, of which the first
// 512 are more than one eighth bytes a terminal neither prints nor acts on)
// is written as its "ob" (or "ib") event alone: as text it would take
// about three times the bytes, for a display of U+FFFD. rr cat and rr play
// use the exact bytes; players ignore the codes they do not know.
//
// Crash safety: the Writer flushes the salt and header before it returns,
// and Flush (called on an interval and on every resize and the end) pushes
// every event so far through to the file. A file cut anywhere after the
// header still yields its exact prefix. A Writer never appends to a file
// it did not create. In the spool, a busy recording's file is written in
// O_DIRECT chunks with its tail through the page cache at each flush (see
// spoolFile), which keeps the same guarantees.
//
// The package owns the format and the local spool; it imports nothing of
// ours.
package recorder
