package admin

import (
	"context"
	"strings"
	"testing"
)

// TestWatchTakesTheTerminal: watch lends the gateway the console's
// terminal: its output untranslated, the passphrase asked there (not
// echoed), the keys typed while the watch runs; the console then goes on
// reading lines. Without Config.Watch, or without a terminal (Exec), it
// says why.
func TestWatchTakesTheTerminal(t *testing.T) {
	e := newEnv(t)
	if _, msg := e.exec(bob, "watch ops-live"); msg != "watching is not available on this gateway" {
		t.Fatalf("without Config.Watch: %q", msg)
	}
	var got []string
	e.console.cfg.Watch = func(ctx context.Context, who Caller, id string, term WatchTerminal) error {
		pp, err := term.Ask.Ask(ctx, "", "Passphrase for web-01: ", false)
		if err != nil {
			return err
		}
		got = append(got, who.Person+" "+id+" "+pp)
		term.Out.Write([]byte("SCREEN\n")) // the session's bytes, as they are
		for keys := range term.Keys() {
			got = append(got, string(keys))
			if strings.Contains(string(keys), "q") {
				return nil
			}
		}
		return nil
	}
	if _, msg := e.exec(bob, "watch ops-live"); !strings.Contains(msg, "needs the interactive console") {
		t.Fatalf("watch from Exec: %q", msg)
	}
	out, _, failed := e.run(bob, "watch ops-live\rsecret-pp\rq", true)
	if failed != 0 || !strings.Contains(out, "Passphrase for web-01: \r\nSCREEN\n") || strings.Contains(out, "secret") {
		t.Fatalf("watch on a terminal: failed %d, out %q", failed, out)
	}
	if len(got) < 2 || got[0] != "bob ops-live secret-pp" || !strings.HasSuffix(got[len(got)-1], "q") {
		t.Fatalf("the watch got %q", got)
	}
	// The console reads its next lines through the watch's reader.
	got = nil
	out, _, failed = e.run(bob, "watch ops-live\rpp\rxq\rwhoami\r", true)
	if failed != 0 || !strings.Contains(out, "bob     advanced  ops") {
		t.Fatalf("after the watch: failed %d, out %q", failed, out)
	}
}
