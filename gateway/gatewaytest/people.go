package gatewaytest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/store"
)

// CheapHash makes a verifier like auth.HashSecret's but cheap to check,
// for tests (CheckSecret reads the cost from the verifier).
func CheapHash(t testing.TB, secret string) string {
	v, err := argon2id.CreateHash(secret, &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// AddPerson declares a person with the given role, email, password (""
// for none) and keys.
func (g *Gateway) AddPerson(name, role, email, password string, keys ...Key) {
	g.t.Helper()
	hash := ""
	if password != "" {
		hash = CheapHash(g.t, password)
	}
	ctx := context.Background()
	if err := g.Store.UpsertPerson(ctx, store.Person{Name: name, Role: role, Email: email, PasswordHash: hash}); err != nil {
		g.t.Fatal(err)
	}
	m := map[string]string{}
	for _, k := range keys {
		m[ssh.FingerprintSHA256(k.Signer.PublicKey())] = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Signer.PublicKey())))
	}
	if err := g.Store.SetPersonKeys(ctx, name, m); err != nil {
		g.t.Fatal(err)
	}
}

// AddTeam declares a team.
func (g *Gateway) AddTeam(name string, rapidResponse bool, members []string, hosts ...string) {
	g.t.Helper()
	if err := g.Store.UpsertTeam(context.Background(), store.Team{Name: name, RapidResponse: rapidResponse,
		Members: members, Hosts: hosts}); err != nil {
		g.t.Fatal(err)
	}
}

// SetPassphrase gives host a passphrase.
func (g *Gateway) SetPassphrase(host, passphrase string) {
	g.t.Helper()
	v := CheapHash(g.t, passphrase)
	if err := g.Store.SetHostPassphrase(context.Background(), host, v); err != nil {
		g.t.Fatal(err)
	}
}

// Outbox is a Mailer that keeps what it is given, for tests to read.
type Outbox struct {
	mu      sync.Mutex
	msgs    []auth.Message
	changed chan struct{}
	// Fail, when set, makes Send fail (a mail server down).
	Fail bool
}

// NewOutbox returns an empty Outbox.
func NewOutbox() *Outbox { return &Outbox{changed: make(chan struct{})} }

// Send keeps m.
func (o *Outbox) Send(_ context.Context, m auth.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.Fail {
		return errMailDown
	}
	o.msgs = append(o.msgs, m)
	close(o.changed)
	o.changed = make(chan struct{})
	return nil
}

type mailErr string

func (e mailErr) Error() string { return string(e) }

const errMailDown = mailErr("connection refused")

// SetFail makes the mailer fail (or work again).
func (o *Outbox) SetFail(fail bool) {
	o.mu.Lock()
	o.Fail = fail
	o.mu.Unlock()
}

// Count returns how many mails were sent.
func (o *Outbox) Count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.msgs)
}

var codeRE = regexp.MustCompile(`\b\d{6}\b`)

// CodeAfter waits (up to 20 s) for the (n+1)-th mail and returns the code
// in it; n is Count() before the login started.
func (o *Outbox) CodeAfter(n int) (string, error) {
	timeout := time.After(20 * time.Second)
	for {
		o.mu.Lock()
		if len(o.msgs) > n {
			m := o.msgs[n]
			o.mu.Unlock()
			return codeRE.FindString(m.Body), nil
		}
		ch := o.changed
		o.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			return "", mailErr("no mail came")
		}
	}
}

// Answers answers keyboard-interactive prompts by their text: the first
// key of answers that the prompt starts with gives the answer. "Code sent
// to" without an entry answers with the next mailed code.
func Answers(t testing.TB, o *Outbox, answers map[string]string) ssh.AuthMethod {
	n := 0
	if o != nil {
		n = o.Count()
	}
	return ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
		out := make([]string, len(questions))
		for i, q := range questions {
			matched := false
			for prefix, a := range answers {
				if strings.HasPrefix(q, prefix) {
					out[i], matched = a, true
				}
			}
			if !matched && strings.HasPrefix(q, "Code sent to") && o != nil {
				code, err := o.CodeAfter(n)
				if err != nil {
					return nil, err
				}
				n++
				out[i], matched = code, true
			}
			if !matched {
				t.Logf("unexpected prompt %q", q)
			}
		}
		return out, nil
	})
}

// RefusedReads reads recording.download audit rows: how many name a path
// under prefix one by one, and the detail of the row that sums up the
// refused reads past those ("" if there is none yet).
func RefusedReads(evs []store.AuditEvent, prefix string) (listed int, summed string) {
	for _, ev := range evs {
		switch {
		case strings.HasPrefix(ev.Target, prefix):
			listed++
		case strings.Contains(ev.Detail, "not listed one by one"):
			summed = ev.Detail
		}
	}
	return listed, summed
}

// Messages returns the mails sent so far.
func (o *Outbox) Messages() []auth.Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]auth.Message(nil), o.msgs...)
}

// WaitCount waits (up to 20 s) until n mails were sent.
func (o *Outbox) WaitCount(n int) error {
	timeout := time.After(20 * time.Second)
	for {
		o.mu.Lock()
		ch, have := o.changed, len(o.msgs)
		o.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ch:
		case <-timeout:
			return mailErr(fmt.Sprintf("%d mails came, not %d", have, n))
		}
	}
}
