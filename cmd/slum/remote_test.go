package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	isoTime    = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	localTime  = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?`)
	clockTime  = regexp.MustCompile(`\b\d\d:\d\d:\d\d(\.\d{3})?\b`)
	apiToken   = regexp.MustCompile(`slum_[A-Za-z0-9_-]{43}`)
	approvedBy = regexp.MustCompile(` via API token \d+ \(test\)`)
)

// normalize hides what differs between two runs of the same commands at
// different moments: times, and new tokens. The API records which token
// approved a plan, which the local CLI cannot; that is hidden too.
func normalize(s string) string {
	s = isoTime.ReplaceAllString(s, "TIME")
	s = localTime.ReplaceAllString(s, "TIME")
	s = clockTime.ReplaceAllString(s, "TIME")
	s = apiToken.ReplaceAllString(s, "TOKEN")
	return approvedBy.ReplaceAllString(s, "")
}

// holdRow records a held plan as a controller would.
const holdRow = `INSERT INTO holds (kind, fingerprint, summary, detail, state, created_at, updated_at)
VALUES ('mass-stop', 'fp1', 'would stop 3 of 4 instances', '{"actions":["stop api:bob--prod on s1"]}', 'held', 1, 1)`

// Every command, run on one database with --db and on another through the
// API with --api, prints the same and exits the same, step by step.
func TestCLIRemoteMatchesLocal(t *testing.T) {
	dir := t.TempDir()
	localDB, remoteDB := filepath.Join(dir, "local.db"), filepath.Join(dir, "remote.db")
	expect(t, cliLocal(t, localDB, "", "init"), 0, "ready", "")
	expect(t, cliLocal(t, localDB, "", "token", "create", "--role", "admin", "--name", "test", "--out", filepath.Join(dir, "local.token")), 0, "", "")
	srv := serveFor(t, remoteDB)
	for _, db := range []string{localDB, remoteDB} {
		ledger(t, db, holdRow)
	}
	tok := writeFile(t, filepath.Join(dir, "s1.token"), "tok-1\n", 0o600)
	fleetFile := writeFile(t, filepath.Join(dir, "fleet.yaml"), `version: 1
servers:
  - {id: s1, url: 'http://10.0.0.1:8080', capacity_mb: 1000, region: eu, token_file: s1.token}
  - {id: s4, url: 'http://10.0.0.4:8080', capacity_mb: 2000, token_env: SLUM_TOKEN_EU_2}
settings:
  dead_after: 4
tenants:
  - id: alice
    domain: alice.example.com
    instances: [{id: prod, process: api}]
  - id: dave
    domain: dave.example.org
    instances: [{id: prod, process: api, server: s4, mode: on-demand}]
`, 0o644)
	small := writeFile(t, filepath.Join(dir, "small.yaml"), "version: 1\n", 0o644)

	runBothWays(t, localDB, srv, remoteSteps(tok, fleetFile, small, dir))
	// The plan was approved through the API by the API's token.
	shown := runSlum(t, "", "--db", remoteDB, "-o", "json", "approve", "1", "--show")
	if !strings.Contains(shown.stdout, `via API token 1 (test)`) {
		t.Fatalf("the approval does not name the token: %s", shown.stdout)
	}
}

// remoteStep is one command of TestCLIRemoteMatchesLocal.
type remoteStep struct {
	args  []string
	stdin string
	both  bool // read only: run with and without -o json
	json  bool // a change: run once, with -o json when set
}

// remoteSteps are the commands TestCLIRemoteMatchesLocal runs both ways,
// in order: each change sees the ones before it.
func remoteSteps(tok, fleetFile, small, dir string) []remoteStep {
	type step = remoteStep
	r := func(args ...string) step { return step{args: args, both: true} }
	w := func(args ...string) step { return step{args: args} }
	wj := func(args ...string) step { return step{args: args, json: true} }
	return []step{
		w("server", "add", "s1", "--url", "http://10.0.0.1:8080", "--capacity-mb", "1000", "--region", "eu", "--token-file", tok),
		{args: []string{"server", "add", "s2", "--url", "http://10.0.0.2:8080", "--capacity-mb", "1000", "--token-stdin"}, stdin: "tok-2\n", json: true},
		w("server", "add", "s3", "--url", "http://10.0.0.3:8080", "--capacity-mb", "500", "--no-token"),
		w("server", "add", "s1", "--url", "http://10.0.0.9:8080", "--capacity-mb", "1", "--no-token"),
		w("server", "add", "s9", "--url", "ftp://x", "--capacity-mb", "1", "--no-token"),
		w("server", "add", "s9", "--url", "http://x"),
		r("server", "list"), r("server", "list", "--region", "eu"), r("server", "list", "--region", "Bad!"),
		r("server", "get", "s1"), r("server", "get", "nope"), r("server", "get", ""), r("server", "get", "-x"),
		wj("server", "update", "s3", "--region", "us", "--token-env", "SLUM_TOKEN_EU_1"),
		w("server", "update", "s3"),
		w("tenant", "add", "alice", "--domain", "alice.example.com", "--process", "api", "--server", "s1"),
		wj("tenant", "add", "bob", "--domain", "bob.example.com", "--failover", "none", "--serving", "all"),
		w("tenant", "add", "carol", "--domain", "carol.example.com", "--process", "api", "--memory-mb", "5000"),
		w("tenant", "add", "carol", "--domain", "alice.example.com"),
		w("tenant", "add", "Carol", "--domain", "carol.example.com"),
		r("tenant", "list"), r("tenant", "list", "--server", "s1"), r("tenant", "list", "--server", "zz"),
		r("tenant", "get", "alice"), r("tenant", "get", "--domain", "alice.example.com"), r("tenant", "get", "zed"),
		wj("tenant", "update", "bob", "--region", "eu"),
		w("tenant", "update", "bob", "--failover", "sometimes"),
		w("instance", "spawn", "alice:backup", "--process", "api"),
		wj("instance", "spawn", "bob:prod", "--process", "api", "--server", "s2"),
		w("instance", "spawn", "alice:../x", "--process", "api"),
		r("instance", "list"), r("instance", "list", "--server", "s1"), r("instance", "list", "--tenant", "alice"),
		r("instance", "list", "--server", "nope"), r("instance", "list", "--server", "s1", "--tenant", "alice"),
		r("instance", "status", "alice:prod"), r("instance", "status", "alice:nope"), r("instance", "status", "nokey"),
		wj("instance", "stop", "alice:backup"),
		w("tenant", "move", "alice"),
		wj("tenant", "move", "alice", "--instance", "prod", "--to", "s3"),
		w("tenant", "move", "alice", "--instance", "prod", "--to", "s2"),
		w("server", "cordon", "s2"), wj("server", "uncordon", "s2"),
		w("server", "remove", "s2"),
		wj("server", "drain", "s2"),
		w("server", "drain", "s1"),
		w("instance", "remove", "alice:backup"), wj("instance", "remove", "alice:backup"),
		r("diff", "-f", fleetFile), r("diff", "-f", fleetFile, "--prune"),
		w("apply", "-f", fleetFile, "--dry-run"),
		w("apply", "-v", "-f", fleetFile),
		wj("apply", "-f", fleetFile),
		w("apply", "-f", small, "--prune"), wj("apply", "-f", small, "--prune"),
		{args: []string{"apply", "-f", "-"}, stdin: "version: 1\nservers: 3\n"},
		w("apply", "-f", filepath.Join(dir, "missing.yaml")),
		r("status"),
		r("events", "-n", "200"), r("events", "-n", "-1"),
		r("settings"), wj("settings", "set", "--dead-after", "5", "--failback", "return"), w("settings", "set", "--dead-after", "0"),
		w("settings", "set"),
		r("approve", "1", "--show"), r("approve", "99", "--show"), w("approve", "x"),
		w("approve", "1"), w("approve", "1"), w("approve", "99"),
		r("status"),
		w("token", "create", "--role", "read", "--name", "ci"), wj("token", "create", "--role", "router"),
		w("token", "create", "--role", "root"), w("token", "create"),
		r("token", "list"),
		wj("token", "revoke", "2"), w("token", "revoke", "2"), w("token", "revoke", "99"), w("token", "revoke", "two"),
		r("token", "list"),
		w("tenant", "remove", "bob"), w("tenant", "remove", "bob"),
		w("server", "remove", "s3"), w("server", "remove", "s9"),
		r("events", "-n", "200"),
	}
}

// runBothWays runs each step on localDB with --db and through srv with
// --api, and fails at the first that prints or exits differently; every
// usual exit code must be seen.
func runBothWays(t *testing.T, localDB string, srv *served, steps []remoteStep) {
	t.Helper()
	codes := map[int]bool{}
	for _, s := range steps {
		modes := [][]string{nil}
		switch {
		case s.both:
			modes = [][]string{nil, {"-o", "json"}}
		case s.json:
			modes = [][]string{{"-o", "json"}}
		}
		for _, m := range modes {
			args := append(append([]string{}, m...), s.args...)
			l := runSlum(t, s.stdin, append([]string{"--db", localDB}, args...)...)
			rm := runSlum(t, s.stdin, append([]string{"--api", srv.url, "--api-token-file", srv.tokenFile}, args...)...)
			codes[l.code] = true
			if l.code != rm.code || normalize(l.stdout) != normalize(rm.stdout) || normalize(l.stderr) != normalize(rm.stderr) {
				t.Fatalf("slum %s differs:\nlocal  exit %d\n%s%s\nremote exit %d\n%s%s", strings.Join(args, " "),
					l.code, l.stdout, l.stderr, rm.code, rm.stdout, rm.stderr)
			}
		}
	}
	for _, c := range []int{0, 2, 3, 4, 5} {
		if !codes[c] {
			t.Errorf("no step exited %d", c)
		}
	}
}

// Commands that work on the database itself refuse --api, plainly.
func TestCLIRemoteRefusesLocalOnlyCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "fleet.db")
	srv := serveFor(t, db)
	api := []string{"--api", srv.url, "--api-token-file", srv.tokenFile}
	for _, args := range [][]string{{"init"}, {"run"}, {"run", "--dry-run"}, {"sim", "--token-env", "X"}, {"demo"}, {"serve"}} {
		r := runSlum(t, "", append(api, args...)...)
		expect(t, r, 2, "", "'slum "+args[0]+"' works on the fleet database only and takes no --api")
	}
	expect(t, runSlum(t, "", append(api, "--db", db, "status")...), 2, "", "give --db or --api, not both")
	expect(t, runSlum(t, "", "--api", srv.url, "status"), 2, "", "--api needs the API token: --api-token-file F")
	expect(t, runSlum(t, "", "--api", srv.url, "--api-token-file", filepath.Join(t.TempDir(), "none"), "status"), 3, "", "cannot be read: no such file")
	expect(t, runSlum(t, "", "--api", "ftp://x", "--api-token-file", srv.tokenFile, "status"), 3, "", `--api "ftp://x": must be https://host:port`)
	expect(t, runSlum(t, "", "--api", "http://fleet.example.com:1", "--api-token-file", srv.tokenFile, "status"), 3, "", "would send the token unencrypted")
	expect(t, runSlum(t, "", "--db", db, "--api-token-file", srv.tokenFile, "status"), 2, "", "--api-token-file and --api-ca go with --api")
	// The variables do what the flags do; an explicit --db beats SLUM_API.
	cmd := exec.Command(slumBin, "server", "list")
	cmd.Env = append(os.Environ(), "SLUM_API="+srv.url, "SLUM_API_TOKEN_FILE="+srv.tokenFile)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "ID  URL") {
		t.Fatalf("with SLUM_API: %v %s", err, out)
	}
	cmd = exec.Command(slumBin, "--db", db, "init")
	cmd.Env = append(os.Environ(), "SLUM_API="+srv.url)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "is ready (it existed)") {
		t.Fatalf("--db with SLUM_API set: %v %s", err, out)
	}
	// --token-file is --api-token-file wherever a command has none of its own.
	expect(t, runSlum(t, "", "--api", srv.url, "--token-file", srv.tokenFile, "server", "list"), 0, "ID  URL", "")
}

// Tokens through the CLI: each role does what it may, and the API says
// why it refuses the rest; failed guesses from one address are cut off.
func TestCLIRemoteAuthentication(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	srv := serveFor(t, db)
	as := func(tokenFile string, args ...string) result {
		return runSlum(t, "", append([]string{"--api", srv.url, "--api-token-file", tokenFile}, args...)...)
	}
	expect(t, as(srv.tokenFile, "tenant", "add", "alice", "--domain", "alice.example.com"), 0, "tenant alice added", "")
	readTok, routerTok := filepath.Join(dir, "read.token"), filepath.Join(dir, "router.token")
	expect(t, as(srv.tokenFile, "token", "create", "--role", "read", "--out", readTok), 0, "API token 2 (read) created and written to", "")
	expect(t, as(srv.tokenFile, "token", "create", "--role", "router", "--name", "edge", "--out", routerTok), 0, "API token 3 (router, \"edge\")", "")
	if fi, err := os.Stat(readTok); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	expect(t, as(readTok, "tenant", "list"), 0, "alice", "")
	expect(t, as(readTok, "diff", "-f", writeFile(t, filepath.Join(dir, "f.yaml"), "version: 1\n", 0o644)), 0, "no changes", "")
	expect(t, as(readTok, "tenant", "remove", "alice"), 1, "", "API token 2 has role read: DELETE /v1/tenants/alice needs an admin token")
	expect(t, as(routerTok, "tenant", "list"), 1, "", `API token 3 (edge) has role router: GET /v1/tenants needs a read or admin token`)
	expect(t, as(readTok, "token", "revoke", "2"), 1, "", "needs an admin token")
	expect(t, as(srv.tokenFile, "token", "revoke", "2"), 0, "API token 2 (-, read) revoked", "")
	expect(t, as(readTok, "tenant", "list"), 1, "", "the API token is unknown or revoked")
	wrong := writeFile(t, filepath.Join(dir, "wrong.token"), "slum_"+strings.Repeat("A", 43)+"\n", 0o600)
	// The revoked token was one failure; nine more guesses, then even the
	// right token from this address waits.
	for i := 0; i < 9; i++ {
		expect(t, as(wrong, "status"), 1, "", "the API token is unknown or revoked")
	}
	r := as(srv.tokenFile, "status")
	expect(t, r, 1, "", "too many failed authentications from your address: try again in")
	if strings.Contains(r.stderr+r.stdout, "slum_") {
		t.Fatal("an answer shows a token")
	}
}

// 'events --follow' through the API prints events as they happen.
func TestCLIRemoteEventsFollow(t *testing.T) {
	db := filepath.Join(t.TempDir(), "fleet.db")
	srv := serveFor(t, db)
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(slumBin, "--api", srv.url, "--api-token-file", srv.tokenFile, "events", "-f")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	expect(t, runSlum(t, "", "--api", srv.url, "--api-token-file", srv.tokenFile, "tenant", "add", "zoe", "--domain", "zoe.example.com"), 0, "added", "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(out)
		if strings.Contains(string(b), "tenant/zoe") && strings.Contains(string(b), "tenant added for zoe.example.com") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events -f did not print the new tenant:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slum test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	cert = writeFile(t, filepath.Join(dir, "cert.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	key = writeFile(t, filepath.Join(dir, "key.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})), 0o600)
	return cert, key
}

// 'slum serve' with TLS, and its refusals.
func TestCLIServeOverTLS(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	expect(t, cliLocal(t, db, "", "init"), 0, "", "")
	tokFile := filepath.Join(dir, "admin.token")
	expect(t, cliLocal(t, db, "", "token", "create", "--role", "admin", "--out", tokFile), 0, "", "")
	cert, key := writeCert(t, dir)
	expect(t, cliLocal(t, db, "", "serve", "--listen", "0.0.0.0:0"), 2, "", "beyond loopback, needs TLS: give --tls-cert and --tls-key")
	expect(t, cliLocal(t, db, "", "serve", "--listen", "0.0.0.0:0", "--insecure-no-tls", "--no-auth"), 2, "", "allowed on a loopback address only")
	expect(t, cliLocal(t, db, "", "serve", "--tls-cert", cert), 2, "", "--tls-cert and --tls-key go together")
	expect(t, cliLocal(t, db, "", "run", "--api-no-auth"), 2, "", "the --api-* flags need --api-addr")
	_, url, _ := startProc(t, regexp.MustCompile(`url=(https://\S+)/ `), "--db", db, "serve", "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
	expect(t, runSlum(t, "", "--api", url, "--api-token-file", tokFile, "--api-ca", cert, "tenant", "add", "alice", "--domain", "alice.example.com"), 0, "tenant alice added", "")
	expect(t, runSlum(t, "", "--api", url, "--api-token-file", tokFile, "status"), 1, "", "certificate")
	expect(t, runSlum(t, "", "--api", url, "--api-token-file", tokFile, "--api-ca", tokFile, "status"), 3, "", "holds no PEM certificate")
}

// 'slum route --api' follows a fleet it does not hold, through the watch:
// a tenant added through the API is routed within a second.
func TestCLIRouteFollowsTheAPI(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	srv := serveFor(t, db)
	routerTok := filepath.Join(dir, "router.token")
	expect(t, cliLocal(t, db, "", "token", "create", "--role", "router", "--out", routerTok), 0, "", "")
	_, addr, _ := startProc(t, regexp.MustCompile(`routing tenants' traffic" addr=http://(\S+)`),
		"--api", srv.url, "--api-token-file", routerTok, "route", "--listen", "127.0.0.1:0", "--metrics-addr", "")
	get := func() (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = "bob.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 404 {
		t.Fatalf("before bob: %d %s", code, body)
	}
	expect(t, runSlum(t, "", "--api", srv.url, "--api-token-file", srv.tokenFile, "tenant", "add", "bob", "--domain", "bob.example.com"), 0, "added", "")
	start := time.Now()
	for {
		code, body := get()
		if code == 503 && strings.Contains(body, "no copy of tenant bob serves now") {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("the router did not follow in 1s: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the router followed in %s", time.Since(start).Round(time.Millisecond))
	// A router token may do nothing else.
	expect(t, runSlum(t, "", "--api", srv.url, "--api-token-file", routerTok, "status"), 1, "", "has role router")
}

// Large bodies cost 'slum serve' no memory to refuse: eight concurrent
// 100 MB bodies, with every role's token, declared (refused from their
// length before a byte is read) and chunked (refused as they stream, the
// large ones within the API's shared budget), grow its RSS by less than
// 50 MB. Every one is refused.
func TestServeRefusesLargeBodiesCheaply(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	expect(t, cliLocal(t, db, "", "init"), 0, "is ready", "")
	tokens := map[string]string{}
	for _, role := range []string{"admin", "read", "router"} {
		f := filepath.Join(dir, role+".token")
		expect(t, cliLocal(t, db, "", "token", "create", "--role", role, "--out", f), 0, "written to", "")
		b, _ := os.ReadFile(f)
		tokens[role] = strings.TrimSpace(string(b))
	}
	cmd, url, _ := startProc(t, serveURL, "--db", db, "serve", "--listen", "127.0.0.1:0")
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	rss := func() int64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if err != nil {
			t.Skipf("no /proc: %v", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
		return 0
	}
	before := rss()
	const size = 100 << 20
	for _, chunked := range []bool{false, true} {
		for role, tok := range tokens {
			for _, path := range []string{"/v1/apply", "/v1/diff", "/v1/servers"} {
				var wg sync.WaitGroup
				statuses := make([]int, 8)
				for i := range statuses {
					wg.Add(1)
					go func() {
						defer wg.Done()
						// A JSON string that never ends: it is read until
						// a limit stops it.
						prefix := `{"file":{"name":"f","text":"`
						body := io.MultiReader(strings.NewReader(prefix), io.LimitReader(letters{}, size-int64(len(prefix))))
						req, _ := http.NewRequest("POST", url+path, body)
						if !chunked {
							req.ContentLength = size
						}
						req.Header.Set("Authorization", "Bearer "+tok)
						req.Header.Set("Content-Type", "application/json")
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							statuses[i] = -1 // the server closed the connection mid-body: refused
							return
						}
						resp.Body.Close()
						statuses[i] = resp.StatusCode
					}()
				}
				wg.Wait()
				for _, st := range statuses {
					if st >= 200 && st < 300 {
						t.Fatalf("a 100 MB body to %s as %s (chunked %v) was taken: %d", path, role, chunked, st)
					}
				}
			}
		}
	}
	if grew := rss() - before; grew > 50<<20 {
		t.Fatalf("RSS grew by %d MB refusing large bodies (want < 50 MB)", grew>>20)
	} else {
		t.Logf("RSS %d MB -> %d MB after 144 refused 100 MB bodies", before>>20, (before+grew)>>20)
	}
}

// letters reads as endless 'a's.
type letters struct{}

func (letters) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

// 'slum route --db --traffic-to' follows the database and reports its
// traffic to the fleet's API, where 'slum status' shows it; the flags are
// refused where they do not belong.
func TestCLIRouteOnTheDatabaseReportsTrafficToTheAPI(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	srv := serveFor(t, db)
	routerTok := filepath.Join(dir, "router.token")
	expect(t, cliLocal(t, db, "", "token", "create", "--role", "router", "--out", routerTok), 0, "", "")
	expect(t, cliLocal(t, db, "", "tenant", "add", "bob", "--domain", "bob.example.com"), 0, "added", "")
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"--db", db, "route", "--traffic-to", srv.url}, 2, "--traffic-to needs a router token"},
		{[]string{"--db", db, "route", "--traffic-token-file", routerTok}, 2, "go with --traffic-to"},
		{[]string{"--api", srv.url, "--api-token-file", routerTok, "route", "--traffic-to", srv.url, "--traffic-token-file", routerTok}, 2, "--traffic-to goes with --db"},
		{[]string{"--db", db, "route", "--listen", "127.0.0.1:0", "--metrics-addr", "", "--traffic-to", "http://192.0.2.1:1", "--traffic-token-file", routerTok}, 3, "--traffic-to"},
		{[]string{"--db", db, "route", "--listen", "127.0.0.1:0", "--metrics-addr", "", "--traffic-to", srv.url, "--traffic-token-file", filepath.Join(dir, "none")}, 3, "--traffic-token-file"},
	} {
		expect(t, runSlum(t, "", tc.args...), tc.code, "", tc.says)
	}
	_, addr, _ := startProc(t, regexp.MustCompile(`routing tenants' traffic" addr=http://(\S+)`),
		"--db", db, "route", "--listen", "127.0.0.1:0", "--metrics-addr", "", "--traffic-to", srv.url, "--traffic-token-file", routerTok)
	for range 20 {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = "bob.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	start := time.Now()
	for {
		r := runSlum(t, "", "--api", srv.url, "--api-token-file", srv.tokenFile, "status")
		if strings.Contains(r.stdout, "traffic (last 30 s)") && strings.Contains(r.stdout, "100.0% errors") {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the router's traffic did not reach the API in 10 s; status:\n%s%s", r.stdout, r.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the database router's traffic reached the API in %s", time.Since(start).Round(time.Millisecond))
}
