package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestLimitsSharedByGateways: two services on one set of counters (two
// gateways on one store) count wrong factors together: five spread over
// both lock the person out on both.
func TestLimitsSharedByGateways(t *testing.T) {
	dir, _ := bobDir(t)
	shared := newMemCounters()
	var gws []*Service
	for range 2 {
		s, err := New(Config{Directory: dir, Mailer: mailFunc(func(Message) error { return nil }), Counters: shared,
			CodeTries: 1}) // one wrong code per session: the five alternate
		if err != nil {
			t.Fatal(err)
		}
		gws = append(gws, s)
	}
	ctx := context.Background()
	wrong := promptFunc(func(prompt string) string {
		if strings.HasPrefix(prompt, "Authenticator code") {
			return "000000"
		}
		return "pp"
	})
	for i := range DefaultLimits.FailuresBeforeLockout {
		s := gws[i%2]
		l, err := s.Interactive(ctx, promptFunc(func(string) string { return "pw" }), nil, "bob", "", "192.0.2.1:1000")
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		if _, err := s.HostFactors(ctx, wrong, l, "h"); err == nil {
			t.Fatal("a wrong code passed")
		}
	}
	var d *Denied
	for i, s := range gws {
		if _, err := s.Interactive(ctx, promptFunc(func(string) string { return "pw" }), nil, "bob", "h", "192.0.2.1:1001"); !errors.As(err, &d) || d.Reason != "locked out" {
			t.Fatalf("gateway %d after %d wrong factors over both: %v, want locked out", i+1, DefaultLimits.FailuresBeforeLockout, err)
		}
	}
}

// attempt is l.attempt where the counters cannot fail.
func attempt(l *limiter, source string) bool {
	ok, err := l.attempt(source)
	return ok && err == nil
}

// downCounters are a store that does not answer.
type downCounters struct{}

var errDown = errors.New("connection refused")

func (downCounters) HitWindow(context.Context, string, string, time.Duration, time.Time) (int, error) {
	return 0, errDown
}
func (downCounters) Window(context.Context, string, string, time.Duration, time.Time) (int, time.Time, error) {
	return 0, time.Time{}, errDown
}
func (downCounters) UpdateLock(context.Context, string, string, time.Time, time.Duration,
	func(int, int, time.Time, time.Time) (int, int, time.Time, time.Time)) error {
	return errDown
}
func (downCounters) ResetFailures(context.Context, string, string) error { return errDown }
func (downCounters) LockedUntil(context.Context, string, string) (time.Time, error) {
	return time.Time{}, errDown
}
func (downCounters) SweepLimits(context.Context, time.Time) error { return errDown }

// TestLimitsFailClosed: counters that cannot be read refuse the login at
// once, saying the gateway cannot reach its database; a lock that cannot
// be read is a lock.
func TestLimitsFailClosed(t *testing.T) {
	dir, _ := bobDir(t)
	s, err := New(Config{Directory: dir, Mailer: mailFunc(func(Message) error { return nil }), Counters: downCounters{}})
	if err != nil {
		t.Fatal(err)
	}
	asked := false
	_, err = s.Interactive(context.Background(), promptFunc(func(string) string { asked = true; return "pw" }), nil, "bob", "", "192.0.2.1:1")
	var d *Denied
	if !errors.As(err, &d) || d.Message != StoreDownMessage || asked {
		t.Fatalf("login with the store down: %v (asked: %v), want %q before any prompt", err, asked, StoreDownMessage)
	}
	if !s.limiter.factorLocked("bob") || !s.limiter.passwordLocked("bob") || s.limiter.mail("bob") {
		t.Fatal("unreadable counters did not fail closed")
	}
}
