package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rr-gateway/rr/auth"
	"github.com/rr-gateway/rr/gateway"
	"github.com/rr-gateway/rr/store"
	"github.com/rr-gateway/rr/store/sqlite"
)

// TestExampleConfig loads configs/gateway.yaml: it must decode strictly,
// pass the checks, and state every default the code has.
func TestExampleConfig(t *testing.T) {
	c, err := loadConfig("../../configs/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	d := defaultConfig()
	if c.Listen != d.Listen || c.AgentListen != d.AgentListen || c.HostKey != d.HostKey || c.Database != d.Database ||
		c.Audit != d.Audit || c.Cluster != d.Cluster {
		t.Fatalf("the example's values differ from the defaults: %+v vs %+v", c, d)
	}
	if _, err := c.mailer(nil); err != nil {
		t.Fatal(err)
	}
	if c.Demo || c.Mail.Mode != "smtp" {
		t.Fatalf("the example is a demo (demo %v, mail mode %s)", c.Demo, c.Mail.Mode)
	}
	if a, d := c.SSH.algorithms(), gateway.DefaultAlgorithms(); !slices.Equal(a.KeyExchanges, d.KeyExchanges) ||
		!slices.Equal(a.Ciphers, d.Ciphers) || !slices.Equal(a.MACs, d.MACs) {
		t.Fatalf("the example's ssh algorithms %+v differ from the defaults %+v", a, d)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "g.yaml")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	if _, err := loadConfig(write("listen: :1\nlisen: :2\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("misspelt key: %v", err)
	}
	c, err := loadConfig(write("hosts: [{name: 'bad host'}, {name: a}, {name: a}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.check()
	if err == nil || !strings.Contains(err.Error(), "bad name") || !strings.Contains(err.Error(), "declared twice") {
		t.Fatalf("check: %v; want every problem named", err)
	}
	c, _ = loadConfig(write("people: [{name: a, role: boss, password_hash: plain}]\nteams: [{name: t, members: [b], hosts: ['x y']}]\n"))
	err = c.check()
	for _, want := range []string{"role \"boss\"", "password_hash", "member \"b\"", "host \"x y\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check: %v; want it to name %s", err, want)
		}
	}
	p := filePerson{Name: "a", Keys: []string{"ssh-ed25519 nonsense"}}
	if _, err := p.keys(); err == nil || !strings.Contains(err.Error(), "bad key") {
		t.Fatalf("keys: %v", err)
	}
	c, _ = loadConfig(write("mail: {mode: smtp, smtp: {host: ''}}\n"))
	if _, err := c.mailer(nil); err == nil || !strings.Contains(err.Error(), "smtp.host") {
		t.Fatalf("smtp without host: %v", err)
	}
	c, _ = loadConfig(write("mail: {mode: pigeon}\n"))
	if _, err := c.mailer(nil); err == nil {
		t.Fatal("unknown mail mode accepted")
	}
	c, _ = loadConfig(write("cluster: {lease: 1s, kill_poll: 1ms, advertise: nohost}\n"))
	err = c.check()
	for _, want := range []string{"cluster.lease", "cluster.kill_poll", "cluster.advertise"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check: %v; want it to name %s", err, want)
		}
	}
}

func TestEventsConfigErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "g.yaml")
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("tooshort\n"), 0o600)
	for _, tc := range []struct{ yaml, want string }{
		{"https: {listen: ':8443'}\nevents: {falco_token_file: " + short + "}\n", "not a loopback address, and no cert_file"},
		{"https: {listen: '127.0.0.1:8443', cert_file: x}\nevents: {falco_token_file: " + short + "}\n", "cert_file and key_file go together"},
		{"https: {listen: '127.0.0.1:8443'}\nweb: {enabled: false}\n", "no events token file"},
		{"web: {idle_timeout: -1s}\n", "web: idle_timeout"},
		{"teams: [{name: t, events: loud}]\n", `events "loud"`},
		{"events: {rate: -1}\n", "may not be negative"},
	} {
		os.WriteFile(p, []byte(tc.yaml), 0o600)
		c, err := loadConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	// Plain HTTP off loopback only when the file says so; a token too
	// short to guess is refused at start.
	os.WriteFile(p, []byte("https: {listen: ':8443', plain_http: true}\nevents: {falco_token_file: "+short+"}\n"), 0o600)
	c, _ := loadConfig(p)
	if err := c.check(); err != nil {
		t.Fatalf("plain_http: %v", err)
	}
	if _, err := c.Events.tokens(); err == nil || !strings.Contains(err.Error(), "shorter than 16") {
		t.Fatalf("short token: %v", err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, ":1": false, "0.0.0.0:1": false, "10.0.0.1:1": false} {
		if loopback(addr) != want {
			t.Errorf("loopback(%q) = %v", addr, !want)
		}
	}
}

func TestKeygenAndFingerprint(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	key := filepath.Join(dir, "id")
	if code := run([]string{"keygen", key}, &out, &errb); code != 0 {
		t.Fatalf("keygen: %d %s", code, errb.String())
	}
	pub, _ := os.ReadFile(key + ".pub")
	if !strings.HasPrefix(out.String(), "ssh-ed25519 ") || out.String() != string(pub) {
		t.Fatalf("keygen printed %q, wrote %q", out.String(), pub)
	}
	out.Reset()
	if code := run([]string{"fingerprint", "-host-key", key}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "SHA256:") {
		t.Fatalf("fingerprint: %d %q %s", code, out.String(), errb.String())
	}
	if code := run([]string{"-no-such-flag"}, &out, &errb); code != 2 {
		t.Fatalf("bad flag: exit %d", code)
	}
}

func TestEnroll(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	db := filepath.Join(dir, "rr.db")
	if code := run([]string{"enroll", "-database", db, "web-01"}, &out, &errb); code != 0 {
		t.Fatalf("enroll: %d %s", code, errb.String())
	}
	if tok := strings.TrimSpace(out.String()); len(tok) < 40 {
		t.Fatalf("token %q", tok)
	}
	if code := run([]string{"enroll", "-database", db, "bad name"}, &out, &errb); code != 2 {
		t.Fatalf("bad host name: exit %d", code)
	}
}

func TestPassphraseHashFromPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("correct horse\n")
	w.Close()
	var out, errb bytes.Buffer
	if code := cmdPassphraseHash(nil, r, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	v := strings.TrimSpace(out.String())
	if ok, err := auth.CheckSecret("correct horse", v); !ok || err != nil {
		t.Fatalf("verifier %q does not check: %v", v, err)
	}
	if ok, _ := auth.CheckSecret("wrong horse", v); ok {
		t.Fatal("verifier accepts anything")
	}
}

// TestPassphraseHashRefusesTooLong: a passphrase longer than a login
// answer carries (auth.MaxAnswer) could never be typed: it is refused,
// with the limit, and no verifier is printed; one of exactly that length
// is hashed.
func TestPassphraseHashRefusesTooLong(t *testing.T) {
	for _, n := range []int{auth.MaxAnswer, auth.MaxAnswer + 1} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		w.WriteString(strings.Repeat("p", n) + "\n")
		w.Close()
		var out, errb bytes.Buffer
		code := cmdPassphraseHash(nil, r, &out, &errb)
		r.Close()
		if n <= auth.MaxAnswer && (code != 0 || !strings.HasPrefix(out.String(), "$argon2id$")) {
			t.Fatalf("%d bytes: exit %d, %q %q", n, code, out.String(), errb.String())
		}
		if n > auth.MaxAnswer && (code != 1 || out.Len() != 0 || !strings.Contains(errb.String(), "256 bytes")) {
			t.Fatalf("%d bytes: exit %d, stdout %q, stderr %q; want refused with the limit", n, code, out.String(), errb.String())
		}
	}
}

func TestApplyIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	var out, errb bytes.Buffer
	run([]string{"keygen", key}, &out, &errb)
	v, _ := auth.HashSecret("pp")
	yaml := "people: [{name: alice, email: a@x.test, role: advanced, key_files: [" + key + ".pub]}]\n" +
		"hosts: [{name: web-01, labels: [env=prod], passphrase_verifier: '" + v + "'}]\n" +
		"teams: [{name: ops_RR, rapid_response: true, members: [alice], hosts: ['label:env=prod']}]\n"
	p := filepath.Join(dir, "g.yaml")
	os.WriteFile(p, []byte(yaml), 0o600)
	c, err := loadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(dir, "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := c.apply(ctx, st, nil); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	teams, _ := st.TeamsOf(ctx, "alice")
	h, _ := st.Host(ctx, "web-01")
	if len(teams) != 1 || !teams[0].RapidResponse || len(teams[0].Hosts) != 1 || h.PassphraseVerifier != v || len(h.Labels) != 1 {
		t.Fatalf("after apply: teams %+v host %+v", teams, h)
	}
	pub, _ := os.ReadFile(key + ".pub")
	k, _, _, _, _ := ssh.ParseAuthorizedKey(pub)
	if p, err := st.PersonByKey(ctx, ssh.FingerprintSHA256(k)); err != nil || p.Name != "alice" {
		t.Fatalf("key lookup: %+v %v", p, err)
	}
}

// configIn writes yaml to dir and loads it; check must pass when ok.
func configIn(t *testing.T, dir, yaml string, ok bool) (fileConfig, error) {
	t.Helper()
	p := filepath.Join(dir, "g.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	err = c.check()
	if ok && err != nil {
		t.Fatal(err)
	}
	return c, err
}

// TestKeyMovesBetweenDeclaredPeople: a key the file moves from bob to
// alice (listed first) moves, at the next start and every one after.
func TestKeyMovesBetweenDeclaredPeople(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	run([]string{"keygen", filepath.Join(dir, "k")}, &out, &errb)
	pub := strings.TrimSpace(out.String())
	st, err := sqlite.Open(filepath.Join(dir, "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	v1, _ := configIn(t, dir, "people: [{name: alice, role: advanced}, {name: bob, role: advanced, keys: ['"+pub+"']}]\n", true)
	if err := v1.apply(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	v2, _ := configIn(t, dir, "people: [{name: alice, role: admin, keys: ['"+pub+"']}, {name: bob, role: standard}]\n", true)
	for i := range 2 {
		if err := v2.apply(ctx, st, nil); err != nil {
			t.Fatalf("start %d after moving bob's key to alice: %v", i, err)
		}
	}
	k, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(pub))
	if p, err := st.PersonByKey(ctx, ssh.FingerprintSHA256(k)); err != nil || p.Name != "alice" {
		t.Fatalf("the key is %+v's (%v), want alice's", p, err)
	}
	if b, _ := st.PersonByName(ctx, "bob"); b.Role != "standard" {
		t.Fatalf("bob is %s, want standard", b.Role)
	}
}

// TestCheckRefusesBeforeWriting: a key given to two people, or a TOTP
// secret file that holds no secret, is refused by check, naming it,
// before anything reaches the store.
func TestCheckRefusesBeforeWriting(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	run([]string{"keygen", filepath.Join(dir, "k")}, &out, &errb)
	pub := strings.TrimSpace(out.String())
	_, err := configIn(t, dir, "people: [{name: bob, role: advanced, keys: ['"+pub+"']}, {name: carol, role: advanced, keys: ['"+pub+"']}]\n", false)
	if err == nil || !strings.Contains(err.Error(), "also bob's") {
		t.Errorf("one key for bob and carol: %v", err)
	}
	bad := filepath.Join(dir, "totp")
	os.WriteFile(bad, []byte("otpauth://totp/rr:alice?secret=NOTBASE32!!"), 0o600)
	_, err = configIn(t, dir, "people: [{name: alice, role: advanced, totp_secret_file: "+bad+"}]\n", false)
	if err == nil || !strings.Contains(err.Error(), "totp_secret_file") {
		t.Errorf("a TOTP file with no secret: %v", err)
	}
	good, _ := auth.NewTOTPKey("rr", "alice")
	os.WriteFile(bad, []byte(good.Secret()+"\n"), 0o600)
	configIn(t, dir, "people: [{name: alice, role: advanced, totp_secret_file: "+bad+"}]\n", true)
}

// TestRemovedFromTheFileIsRemoved: a person, team or host the file
// declared and no longer names is gone at the next start (a person's key
// then finds no one), audited; what the console made is left alone; the
// next starts change nothing; declaring it again brings it back.
func TestRemovedFromTheFileIsRemoved(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	run([]string{"keygen", filepath.Join(dir, "k")}, &out, &errb)
	pub := strings.TrimSpace(out.String())
	k, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(pub))
	st, err := sqlite.Open(filepath.Join(dir, "rr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	// Made from the console: never the file's to remove.
	if err := st.UpsertPerson(ctx, store.Person{Name: "carol", Role: "standard"}); err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertHost(ctx, "db-01"); err != nil {
		t.Fatal(err)
	}
	const hosts = "hosts: [{name: web-01}, {name: web-02}]\n"
	v1, _ := configIn(t, dir, "people: [{name: alice, role: advanced}, {name: bob, role: advanced, keys: ['"+pub+"']}]\n"+
		"teams: [{name: ops, rapid_response: true, members: [alice, bob], hosts: [web-01]}, {name: old, members: [bob], hosts: ['*']}]\n"+hosts, true)
	if err := v1.apply(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	if p, err := st.PersonByKey(ctx, ssh.FingerprintSHA256(k)); err != nil || p.Name != "bob" {
		t.Fatalf("before: bob's key finds %+v, %v", p, err)
	}
	v2, _ := configIn(t, dir, "people: [{name: alice, role: advanced}]\n"+
		"teams: [{name: ops, rapid_response: true, members: [alice], hosts: [web-01]}]\nhosts: [{name: web-01}]\n", true)
	for range 2 {
		if err := v2.apply(ctx, st, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.PersonByName(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("bob, taken out of the file, is still there: %v", err)
	}
	if p, err := st.PersonByKey(ctx, ssh.FingerprintSHA256(k)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("bob's key still logs in as %+v (%v)", p, err)
	}
	if _, err := st.Host(ctx, "web-02"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("web-02, taken out of the file, is still there: %v", err)
	}
	if teams, _ := st.Teams(ctx); len(teams) != 1 || teams[0].Name != "ops" {
		t.Errorf("teams %+v, want only ops", teams)
	}
	for _, who := range []string{"alice", "carol"} {
		if _, err := st.PersonByName(ctx, who); err != nil {
			t.Errorf("%s: %v", who, err)
		}
	}
	for _, h := range []string{"web-01", "db-01"} {
		if _, err := st.Host(ctx, h); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	events, err := st.AuditEvents(ctx, store.AuditFilter{Action: "config.remove"})
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, e := range events {
		removed = append(removed, e.Target)
	}
	sort.Strings(removed)
	if strings.Join(removed, " ") != "bob old web-02" {
		t.Errorf("audited removals %q, want bob, old and web-02 once each", removed)
	}
	// Declared again: back, with the key.
	if err := v1.apply(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	if p, err := st.PersonByKey(ctx, ssh.FingerprintSHA256(k)); err != nil || p.Name != "bob" {
		t.Errorf("bob declared again: his key finds %+v, %v", p, err)
	}
	// Renamed, with his key: bob goes first, so robert can have it.
	v3, _ := configIn(t, dir, "people: [{name: alice, role: advanced}, {name: robert, role: advanced, keys: ['"+pub+"']}]\n"+hosts, true)
	if err := v3.apply(ctx, st, nil); err != nil {
		t.Fatalf("start after renaming bob to robert: %v", err)
	}
	if p, err := st.PersonByKey(ctx, ssh.FingerprintSHA256(k)); err != nil || p.Name != "robert" {
		t.Errorf("after the rename the key finds %+v, %v; want robert", p, err)
	}
	// A section left out removes nothing of its kind (a file cut short
	// must not empty the store); teams: [] removes every declared team.
	v4, _ := configIn(t, dir, "people: [{name: alice, role: advanced}, {name: robert, role: advanced, keys: ['"+pub+"']}]\nteams: []\n", true)
	if err := v4.apply(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Host(ctx, "web-02"); err != nil {
		t.Errorf("web-02 removed by a file without a hosts section: %v", err)
	}
	if teams, _ := st.Teams(ctx); len(teams) != 0 {
		t.Errorf("teams %+v after teams: [], want none", teams)
	}
	// Once the file names something the console made, it is the file's:
	// taking it out removes it.
	v5, _ := configIn(t, dir, "people: [{name: alice, role: advanced}, {name: carol, role: standard}]\n", true)
	v6, _ := configIn(t, dir, "people: [{name: alice, role: advanced}]\n", true)
	for _, v := range []fileConfig{v5, v6} {
		if err := v.apply(ctx, st, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.PersonByName(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("carol, named by the file and then taken out, is still there: %v", err)
	}
}

// TestHashMemoryBudget: auth.hash_memory_budget reaches auth, and a
// negative one is refused by name.
func TestHashMemoryBudget(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "g.yaml")
	os.WriteFile(p, []byte("auth: {hash_memory_budget: 134217728}\n"), 0o600)
	c, err := loadConfig(p)
	if err != nil || c.check() != nil || c.authConfig().HashMemoryBudget != 128<<20 {
		t.Fatalf("128 MiB budget: %v, %v, %d", err, c.check(), c.authConfig().HashMemoryBudget)
	}
	os.WriteFile(p, []byte("auth: {hash_memory_budget: -1}\n"), 0o600)
	if c, err = loadConfig(p); err != nil {
		t.Fatal(err)
	}
	if err := c.check(); err == nil || !strings.Contains(err.Error(), "hash_memory_budget") {
		t.Fatalf("negative budget: %v", err)
	}
}

// TestSampleConfigs loads the sample configurations in testdata/configs:
// a small team's gateway passes the checks with its declared people's
// keys; a misspelt key is refused with its line.
func TestSampleConfigs(t *testing.T) {
	c, err := loadConfig("../../testdata/configs/gateway-small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	d := defaultConfig()
	if c.Recordings.S3.Bucket != "rr-recordings" || c.Recordings.FlushInterval != d.Recordings.FlushInterval || c.LoginGraceTime != d.LoginGraceTime {
		t.Errorf("set fields not read, or unset ones not defaulted: %+v", c)
	}
	if len(c.People) != 2 || len(c.Teams) != 1 || len(c.Hosts) != 2 {
		t.Fatalf("declared %d people, %d teams, %d hosts; want 2, 1, 2", len(c.People), len(c.Teams), len(c.Hosts))
	}
	if keys, err := c.People[0].keys(); err != nil || len(keys) != 1 {
		t.Errorf("alice's keys: %v, %v", keys, err)
	}
	_, err = loadConfig("../../testdata/configs/gateway-typo.yaml")
	if err == nil || !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), "flush_intervall") {
		t.Fatalf("misspelt key: %v; want it named with its line", err)
	}
}

// audit-key creates the audit key beside the host key (0600) unless
// signing_key names it, prints it as an allowed_signers line, and fails on
// a file that is not a key: nothing runs unsigned.
func TestAuditKey(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "g.yaml")
	os.WriteFile(cfg, []byte("host_key: "+dir+"/keys/host_key\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"audit-key", "-config", cfg}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "rr-audit ssh-ed25519 ") {
		t.Fatalf("audit-key: %d %q %s", code, out.String(), errb.String())
	}
	fi, err := os.Stat(filepath.Join(dir, "keys", "audit_ed25519_key"))
	if err != nil || fi.Mode().Perm() != 0o600 || !strings.Contains(errb.String(), "created the audit key") {
		t.Fatalf("key file: %v %v; stderr %q", fi, err, errb.String())
	}
	first := out.String()
	out.Reset()
	if run([]string{"audit-key", "-config", cfg}, &out, &errb); out.String() != first {
		t.Fatalf("a second run printed another key: %q", out.String())
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if code := run([]string{"audit-key", "-key", bad}, &out, &errb); code != 1 {
		t.Fatalf("a broken key: exit %d", code)
	}
	os.WriteFile(cfg, []byte("host_key: "+dir+"/keys/host_key\naudit: {signing_key: "+bad+"}\n"), 0o600)
	c, err := loadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.notary(t.Context(), nil, nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "audit.signing_key") {
		t.Fatalf("the gateway would start with a broken audit key: %v", err)
	}
}
