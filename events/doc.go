// Package events takes in security events (Falco's JSON alerts and
// Alertmanager's webhook), maps each to an rr host, stores it once, and
// tells the Rapid Response teams that subscribe to its priority.
//
// It owns:
//   - the parsers (ParseFalco, ParseAlertmanager): bounded, strict about
//     the fields they need, saying which one is missing;
//   - Intake: deduplication, host matching, storing, counting and
//     auditing each delivery;
//   - Handler: the HTTP handler of POST /v1/events/{falco,alertmanager}
//     (bearer token per source, compared in constant time; 1 MiB bodies;
//     a rate limit per source). It has no server of its own: the gateway
//     serves it over HTTPS, behind its before-login limits;
//   - Notifier: the mail to each subscribed person, from a bounded queue
//     that never blocks intake, retried while the mail server is down,
//     folded into a digest past a number of mails in a window.
//
// Lifecycle of one delivery:
//
//	POST → token → size → rate → parse → Intake.Accept
//	     → per event: match host → store (duplicate? counted, not stored)
//	     → Notifier.Enqueue (drops with a log line when the queue is full;
//	       the event is stored either way)
//
// Must not: import the gateway or a database driver (the store is the
// consumer-declared Store), block a delivery on mail, keep a token in a
// log line, or store anything from a delivery it refused.
package events
