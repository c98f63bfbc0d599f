package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"
)

// Listen calls fn with the payload of each notification on channel until
// ctx ends, on a connection of its own, reconnecting after a second when
// it is lost. Notifications sent while it is disconnected are lost: a
// caller that must not miss one also polls the store (the wake-up only
// makes it sooner). fn runs on Listen's goroutine, one at a time.
func (s *Store) Listen(ctx context.Context, channel string, fn func(payload string)) error {
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
		},
		ReconnectDelay: time.Second,
	}
	l.Handle(channel, pgxlisten.HandlerFunc(func(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
		fn(n.Payload)
		return nil
	}))
	err := l.Listen(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("store: listen %s: %w", channel, err)
}

// Notify sends payload to channel's listeners on every gateway (when the
// transaction it runs in, here its own, commits).
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return fmt.Errorf("store: notify %s: %w", channel, err)
	}
	return nil
}
