package web

import (
	"context"
	"io"
	"net/http"

	"github.com/rr-gateway/rr/gateway/admin"
	"github.com/rr-gateway/rr/internal/termtext"
)

// watchSession hands out a ticket for a terminal that watches live
// session id, read-only: the console's watch (whoever may close a
// session may watch it; the host's passphrase is asked in the terminal;
// the watched person is told; every watch is audited).
func (h *Handler) watchSession(w http.ResponseWriter, r *http.Request, l *webLogin) {
	var in struct{}
	if !decode(w, r, &in) {
		return
	}
	id, ok := l.addTicket(&ticket{watch: r.PathValue("id")}, h.cfg.Now().Add(ticketTTL), h.cfg.TerminalsPerLogin)
	if !ok {
		fail(w, http.StatusTooManyRequests, "rr: too many sessions waiting for their terminal")
		return
	}
	reply(w, http.StatusOK, step{Done: true, Ticket: id})
}

// runWatch runs a watch ticket's terminal on ch until the watch ends, and
// tells the watcher why it could not start.
func (h *Handler) runWatch(ctx context.Context, l *webLogin, remote, id string, ch *wsChannel) {
	keys := make(chan []byte)
	err := h.cfg.Gateway.WebWatch(ctx, l.login, remote, id, admin.WatchTerminal{
		Out: ch,
		Keys: func() <-chan []byte {
			go func() { // ends when the WebSocket's input does
				defer close(keys)
				for {
					b := make([]byte, 64)
					n, err := ch.Read(b)
					if n > 0 {
						select {
						case keys <- b[:n]:
						case <-ctx.Done():
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			return keys
		},
		Ask: terminalPrompter{ch},
		TTY: true,
	})
	if err != nil {
		io.WriteString(ch, termtext.Escape("rr: "+err.Error())+"\r\n")
	}
}

// terminalPrompter asks a question in the terminal, its answer not
// echoed, as sudo does.
type terminalPrompter struct{ ch *wsChannel }

func (p terminalPrompter) Ask(_ context.Context, instruction, prompt string, _ bool) (string, error) {
	if instruction != "" {
		io.WriteString(p.ch, termtext.Escape(instruction)+"\r\n")
	}
	io.WriteString(p.ch, termtext.Escape(prompt))
	defer io.WriteString(p.ch, "\r\n")
	var line []byte
	b := make([]byte, 1)
	for len(line) < 256 {
		if _, err := p.ch.Read(b); err != nil {
			return "", errAbandoned
		}
		switch b[0] {
		case '\r', '\n':
			return string(line), nil
		case 0x7f, '\b':
			if len(line) > 0 {
				line = line[:len(line)-1]
			}
		case 3, 4: // Ctrl-C, Ctrl-D
			return "", errAbandoned
		default:
			line = append(line, b[0])
		}
	}
	return string(line), nil
}
