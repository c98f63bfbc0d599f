package web

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// conversation runs one auth flow (a login, a session's factors) whose
// questions the browser answers one request at a time: the flow runs on
// its own goroutine, and each request hands it an answer and waits for
// its next question or its end.
type conversation struct {
	id      string
	prefill []string // answers given with the first request (username, password)
	asks    chan question
	answers chan string
	done    chan struct{} // closed when the flow has returned; err is set
	err     error
	value   any // what the flow returned, once done is closed
	cancel  context.CancelFunc
	once    sync.Once
}

// question is one prompt, as the page shows it.
type question struct {
	Instruction string `json:"instruction,omitempty"`
	Prompt      string `json:"prompt"`
	Echo        bool   `json:"echo"`
}

var errAbandoned = errors.New("web: the question was not answered in time")

// startConversation runs flow within grace; prefill answers its first
// questions.
func startConversation(parent context.Context, grace time.Duration, prefill []string, flow func(ctx context.Context, c *conversation) (any, error)) *conversation {
	ctx, cancel := context.WithTimeout(parent, grace)
	c := &conversation{id: randomToken(), prefill: prefill, asks: make(chan question), answers: make(chan string),
		done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(c.done)
		defer cancel()
		c.value, c.err = flow(ctx, c)
	}()
	return c
}

// Ask is auth.Prompter's: the next prefilled answer, else the browser's.
func (c *conversation) Ask(ctx context.Context, instruction, prompt string, echo bool) (string, error) {
	if len(c.prefill) > 0 {
		a := c.prefill[0]
		c.prefill = c.prefill[1:]
		return a, nil
	}
	select {
	case c.asks <- question{Instruction: instruction, Prompt: strings.TrimSpace(prompt), Echo: echo}:
	case <-ctx.Done():
		return "", errAbandoned
	}
	select {
	case a := <-c.answers:
		return a, nil
	case <-ctx.Done():
		return "", errAbandoned
	}
}

// next waits for the flow's next question; nil once it has ended (see err).
func (c *conversation) next(ctx context.Context) (*question, error) {
	select {
	case q := <-c.asks:
		return &q, nil
	case <-c.done:
		return nil, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// answer gives the flow the answer to its pending question and waits for
// what comes next.
func (c *conversation) answer(ctx context.Context, a string) (*question, error) {
	select {
	case c.answers <- a:
	case <-c.done:
		return nil, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.next(ctx)
}

// stop abandons the flow.
func (c *conversation) stop() { c.once.Do(c.cancel) }
