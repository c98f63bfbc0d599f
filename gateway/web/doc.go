// Package web is rr's web console: the pages a responder works from in a
// browser (hosts, events, the session log) and the terminals they open,
// served on the gateway's HTTPS listener beside the event intake.
//
// It owns the browser's logins (cookies, CSRF tokens), the conversation
// that asks a session's factors in the page, and the WebSocket that
// stands in for an SSH session channel. Everything a session is — its
// row, recording, kill, watch, audit and limits — is the gateway's
// (gateway.Server.RunWebSession); everything a login proves is
// auth.Service's, with the SSH path's limits, lockouts and audit.
//
// Lifecycle of a terminal:
//
//	POST /api/login            password (+ team when several) → cookie, CSRF token
//	POST /api/start            host or event → the factors' prompts, one by one
//	POST /api/start/answer     … until the code passes → a start ticket
//	GET  /api/terminal?start=  WebSocket (Origin checked) bound to that ticket
//
// Must not: keep a passphrase beyond handing it to the session, open a
// terminal before the second factor has passed, serve anything from
// another origin, or buffer a browser's input without bound.
package web
