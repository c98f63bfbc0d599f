package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/store"
)

// Change is an administrative change that went through, as the admins are
// told of it (Config.Notify). Its detail never holds a secret.
type Change struct {
	Time   time.Time
	Actor  string // who made it
	Source string // from where (client address)
	Action string // "admin.host.reenroll"
	Target string // what it changed: a person, team or host name
	Detail string
}

// SecondFactorInstruction is shown before the code's prompt.
const SecondFactorInstruction = "Changes need your second factor, once per connection."

// secondFactor makes sure who's connection has given the second factor
// before cmd changes anything, asking on ask if not. A refusal is audited
// under cmd's action and is what the person is told.
func (c *Console) secondFactor(ctx context.Context, who Caller, cmd *command, ask auth.Prompter) error {
	err := c.cfg.SecondFactor(ctx, who, ask)
	if err == nil {
		return nil
	}
	// No target: the command's words are unparsed, and a flag's may be a secret.
	c.audit(ctx, who, store.AuditEvent{Action: cmd.action(), Outcome: "denied", Detail: "second factor: " + err.Error()})
	c.log.Warn("admin change refused: no second factor", "person", who.Person, "source", who.Source,
		"command", cmd.name, "err", err)
	return fmt.Errorf("change refused: %w", err)
}

// errCannotAsk is the answer of a console with no input to ask on.
var errCannotAsk = errors.New("the second factor cannot be asked here")

// noPrompter asks nothing (Exec).
type noPrompter struct{}

func (noPrompter) Ask(context.Context, string, string, bool) (string, error) { return "", errCannotAsk }

// linePrompter asks the console's person: the question on w (the
// terminal, or stderr without one), the answer the next input line, not
// echoed when secret. Without a terminal a script answers with the line
// after its first change (an authenticator's code, say).
type linePrompter struct {
	lines *lineReader
	w     io.Writer
}

// errNoAnswer is a question the input ended before answering.
var errNoAnswer = errors.New("no answer: the input ended")

func (p *linePrompter) Ask(_ context.Context, instruction, prompt string, echo bool) (string, error) {
	if instruction != "" {
		fmt.Fprintln(p.w, instruction)
	}
	fmt.Fprint(p.w, prompt)
	p.lines.hide = !echo
	line, err := p.lines.next()
	p.lines.hide = false
	switch {
	case err == nil, errors.Is(err, io.EOF) && line != "":
		return line, nil
	case errors.Is(err, errLineTooLong):
		return "", errors.New("answer too long")
	}
	return "", errNoAnswer
}
