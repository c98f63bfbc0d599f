package auth

import "context"

// Message is one mail.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Mailer sends mail. Send must give up when ctx is done.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}
