package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/gateway/gatewaytest"
	"github.com/rr-gateway/rr/store"
)

// TestAuthenticatorCodeReplayRefused: through the store, an authenticator
// code that opened one login is refused at a second connection in the
// same 30 s window, and the refusal is audited.
func TestAuthenticatorCodeReplayRefused(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	key, err := auth.NewTOTPKey("rr", "alice")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.gw.Store.UpsertPerson(ctx, store.Person{Name: "alice", Role: "advanced", Email: "alice@example.com",
		TOTPSecret: key.Secret()}); err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(key.Secret(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dial := func() error {
		c, err := ssh.Dial("tcp", e.gw.PeopleAddr, &ssh.ClientConfig{User: "rr+web-01",
			Auth: []ssh.AuthMethod{ssh.PublicKeys(e.alice.Signer),
				gatewaytest.Answers(t, nil, map[string]string{"Passphrase for web-01": "pp-web-01", "Authenticator code": code})},
			HostKeyCallback: ssh.FixedHostKey(e.gw.HostKey.PublicKey()), Timeout: 10 * time.Second})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("first login with the code: %v", err)
	}
	if err := dial(); err == nil {
		t.Fatal("the same authenticator code opened a second login")
	}
	evs, err := e.gw.Store.AuditEvents(ctx, store.AuditFilter{Action: "auth.code"})
	if err != nil {
		t.Fatal(err)
	}
	replays := 0
	for _, ev := range evs {
		if ev.Outcome == "denied" && ev.Detail == "authenticator code used already" {
			replays++
		}
	}
	if replays == 0 {
		t.Fatalf("the replay was not audited: %+v", evs)
	}
}
