// Package mail holds rr's mailers for the codes auth sends: SMTPMailer,
// which speaks SMTP through go-mail (STARTTLS required unless told
// otherwise), and FileMailer, the demo's outbox of .eml files. Both
// implement auth.Mailer; only the programs that wire a gateway import
// this package, so the SMTP client stays out of auth and the gateway.
//
// It must not decide who gets a code or what it says: auth does.
package mail
