// Package termtext makes text safe to write on a person's terminal: the
// gateway's own lines (notices, refusals, prompts, kill reasons typed by
// someone else) and the admin console's tables, messages and JSON, and
// strings an agent sends (exit-signal names and messages).
//
// Unsafe runes are the ones that act rather than show, or show nothing:
// C0 and C1 controls (U+009B is an 8-bit CSI) and DEL, the bidirectional
// formatting characters that reorder what follows (U+202E), the
// zero-width and other invisible format characters (U+200B, U+2060,
// U+FEFF, tags), line and paragraph separators, and the Hangul fillers.
// Escape writes them as Go escapes (\x1b, \u202e) so a person sees that
// something was there; invalid UTF-8 becomes \xNN too.
//
// Must not: touch a session's own bytes (what the host writes and the
// person types cross the gateway unchanged and are recorded exactly);
// import anything of rr's.
package termtext
