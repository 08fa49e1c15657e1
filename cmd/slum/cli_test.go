package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
)

var slumBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slum-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	slumBin = filepath.Join(dir, "slum")
	out, err := exec.Command("go", "build", "-o", slumBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build slum: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// cli runs the built binary as a user would, against db: with --db, or
// in the remote half of a test run both ways (see bothWays), through
// 'slum serve' over db with --api.
func cli(t *testing.T, db string, stdin string, args ...string) result {
	t.Helper()
	if isRemote(t) {
		s := serveFor(t, db)
		return runSlum(t, stdin, append([]string{"--api", s.url, "--api-token-file", s.tokenFile}, args...)...)
	}
	return runSlum(t, stdin, append([]string{"--db", db}, args...)...)
}

// cliLocal runs the built binary on db, in either half of a test.
func cliLocal(t *testing.T, db string, stdin string, args ...string) result {
	t.Helper()
	return runSlum(t, stdin, append([]string{"--db", db}, args...)...)
}

func runSlum(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(slumBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "SLUM_TOKEN_EU_1=tok-eu-1", "SLUM_TOKEN_EU_2=tok-eu-2", "SLUM_TOKEN_US_1=tok-us-1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// backupDB writes a backup of the fleet database db to the file to, as a
// user makes one (VACUUM INTO: one file, whatever its -wal holds).
func backupDB(t *testing.T, db, to string) {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("VACUUM INTO ?", to); err != nil {
		t.Fatal(err)
	}
}

func expect(t *testing.T, r result, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, stdout) {
		t.Fatalf("stdout %q does not contain %q", r.stdout, stdout)
	}
	if !strings.Contains(r.stderr, stderr) {
		t.Fatalf("stderr %q does not contain %q", r.stderr, stderr)
	}
}

func TestCLIWorkflow(t *testing.T) { bothWays(t, testCLIWorkflow) }

func testCLIWorkflow(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte("secret-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	expect(t, cli(t, db, "", "server", "add", "s1", "--url", "http://10.0.0.1:8080", "--capacity-mb", "1024", "--region", "eu", "--token-file", tokFile),
		0, "server s1 added", "")
	expect(t, cli(t, db, "secret-token-2", "server", "add", "s2", "--url", "http://10.0.0.2:8080", "--capacity-mb", "1024", "--token-stdin"),
		0, "server s2 added", "")
	expect(t, cli(t, db, "", "server", "add", "s1", "--url", "http://x", "--capacity-mb", "1", "--no-token"), 5, "", "slum: add server: server s1 already exists\n")
	expect(t, cli(t, db, "", "server", "add", "s3", "--url", "ftp://x", "--capacity-mb", "1", "--no-token"), 3, "", `url "ftp://x": must start with http:// or https://`)
	expect(t, cli(t, db, "", "server", "add", "s3", "--url", "http://x", "--no-token"), 2, "", `required flag(s) "capacity-mb" not set`)
	expect(t, cli(t, db, "", "server", "add", "s3", "--url", "http://x", "--capacity-mb", "lots", "--no-token"), 2, "", `invalid value "lots" for --capacity-mb: must be a whole number`)
	expect(t, cli(t, db, "", "server", "add"), 2, "", "takes 1 argument(s): ID")

	r := cli(t, db, "", "server", "list")
	expect(t, r, 0, "s1  http://10.0.0.1:8080  eu", "")
	r = cli(t, db, "", "-o", "json", "server", "list")
	expect(t, r, 0, `"id": "s1"`, "")
	var servers []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &servers); err != nil || len(servers) != 2 {
		t.Fatalf("server list JSON: %v %s", err, r.stdout)
	}
	for _, args := range [][]string{{"server", "list"}, {"-o", "json", "server", "list"}, {"server", "get", "s1"}, {"-o", "json", "server", "get", "s1"}} {
		if r := cli(t, db, "", args...); strings.Contains(r.stdout+r.stderr, "secret-token") {
			t.Fatalf("%v shows a token: %s", args, r.stdout)
		}
	}
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database mode: %v %v", fi.Mode(), err)
	}

	expect(t, cli(t, db, "", "tenant", "add", "alice", "--domain", "alice.example.com", "--region", "eu", "--process", "api"),
		0, "instance alice:prod placed on s1", "")
	expect(t, cli(t, db, "", "tenant", "add", "bob", "--domain", "alice.example.com"), 5, "", "domain alice.example.com belongs to tenant alice")
	expect(t, cli(t, db, "", "tenant", "add", "Bob", "--domain", "bob.example.com"), 3, "", `tenant id "Bob"`)
	expect(t, cli(t, db, "", "tenant", "add", "bob", "--domain", "bob.example.com", "--process", "api", "--memory-mb", "5000"), 5, "", "no capacity")
	expect(t, cli(t, db, "", "tenant", "get", "bob"), 4, "", "tenant bob not found")
	expect(t, cli(t, db, "", "instance", "spawn", "alice:backup", "--process", "api"), 0, "instance alice:backup (api:alice--backup) is to run on s2", "")
	expect(t, cli(t, db, "", "instance", "spawn", "alice:../x", "--process", "api"), 3, "", `instance id "../x"`)
	expect(t, cli(t, db, "", "instance", "list"), 0, "alice:backup  api      s2      256        always  running  pending", "")
	expect(t, cli(t, db, "", "tenant", "move", "alice"), 2, "", "tenant alice has 2 instances (backup, prod): name one with --instance")
	expect(t, cli(t, db, "", "tenant", "move", "alice", "--instance", "prod", "--to", "s2"), 5, "", "never share a server")
	expect(t, cli(t, db, "", "instance", "stop", "alice:backup"), 0, "instance alice:backup is to stop on s2", "")
	expect(t, cli(t, db, "", "instance", "status", "alice:backup"), 0, "desired:             stopped (always), generation 2", "")
	expect(t, cli(t, db, "", "server", "remove", "s2"), 5, "", "server has active tenants")
	expect(t, cli(t, db, "", "server", "cordon", "s2"), 0, "server s2 is cordoned", "")
	expect(t, cli(t, db, "", "server", "drain", "s1"), 5, "", "no capacity")
	expect(t, cli(t, db, "", "server", "uncordon", "s2"), 0, "server s2 is active", "")
	expect(t, cli(t, db, "", "status"), 0, "1 tenants, 2 instances: 2 pending", "")
	expect(t, cli(t, db, "", "status"), 0, "no controller has reported yet", "")
	expect(t, cli(t, db, "", "events", "-n", "3"), 0, "Uncordoned", "")
	expect(t, cli(t, db, "", "tenant", "remove", "alice"), 0, "tenant alice removed", "")
	expect(t, cli(t, db, "", "-o", "yaml", "status"), 2, "", "-o must be table or json")
}

func TestCLIApplyAndDiff(t *testing.T) { bothWays(t, testCLIApplyAndDiff) }

func testCLIApplyAndDiff(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	example := filepath.Join("..", "..", "examples", "fleet.yaml")

	expect(t, cli(t, db, "", "diff", "-f", example), 0, "would apply "+example+": 12 to create, 0 to update, 0 to delete", "")
	if isRemote(t) {
		// A fleet behind an API always exists: there is no database to
		// create.
		expect(t, cli(t, db, "", "apply", "-f", example, "--dry-run"), 0, "+ tenant alice (domain=alice.example.com)", "")
		expect(t, cli(t, db, "", "apply", "-f", example), 0, "applied "+example+": 12 to create", "")
	} else {
		expect(t, cli(t, db, "", "apply", "-f", example, "--dry-run"), 0, "+ tenant alice (domain=alice.example.com)", "no fleet database at")
		expect(t, cli(t, db, "", "server", "list"), 4, "", "no slum database")
		if _, err := os.Stat(db); err == nil {
			t.Fatal("diff or a dry run created the database")
		}
		expect(t, cli(t, db, "", "apply", "-f", example), 0, "applied "+example+": 12 to create", "created the fleet database")
	}
	expect(t, cli(t, db, "", "apply", "-f", example), 0, "no changes: the database already matches", "")
	r := cli(t, db, "", "-o", "json", "diff", "-f", example)
	expect(t, r, 0, `"changes": []`, "")

	bad := filepath.Join(dir, "bad.yaml")
	data, _ := os.ReadFile(example)
	os.WriteFile(bad, []byte(strings.Replace(string(data), "domain: bob.example.com", "domain: bob..example.com", 1)), 0o644)
	expect(t, cli(t, db, "", "apply", "-f", bad), 3, "", bad+":38: tenants[1].domain \"bob..example.com\"")
	expect(t, cli(t, db, "", "apply", "-f", filepath.Join(dir, "missing.yaml")), 3, "", "cannot be read: no such file")

	small := filepath.Join(dir, "small.yaml")
	os.WriteFile(small, []byte(strings.Split(string(data), "  - id: bob")[0]), 0o644)
	expect(t, cli(t, db, "", "diff", "-f", small, "--prune"), 5, "- tenant bob", "would delete most of the fleet")
	expect(t, cli(t, db, "", "diff", "-f", small, "--prune", "--allow-mass-prune"), 0, "- tenant bob", "")
	expect(t, cli(t, db, "", "apply", "-f", small), 0, "objects in the database are not in", "")
	expect(t, cli(t, db, "", "apply", "-f", small, "--prune"), 5, "would apply "+small+": 0 to create, 0 to update, 6 to delete",
		"would delete most of the fleet: 0 of 3 servers, 3 of 4 tenants, 3 of 5 instances; is the file complete? If this is meant, add --allow-mass-prune")
	expect(t, cli(t, db, "", "apply", "-f", small, "--prune", "--allow-mass-prune"), 0, "0 to create, 0 to update, 6 to delete", "")
	expect(t, cli(t, db, "", "tenant", "list"), 0, "alice", "")
}

func TestCLIHelpEverywhere(t *testing.T) {
	db := filepath.Join(t.TempDir(), "x.db")
	for _, args := range [][]string{
		{}, {"init"}, {"server"}, {"server", "add"}, {"server", "list"}, {"server", "get"}, {"server", "update"}, {"server", "cordon"},
		{"server", "uncordon"}, {"server", "drain"}, {"server", "remove"}, {"tenant"}, {"tenant", "add"}, {"tenant", "list"},
		{"tenant", "get"}, {"tenant", "update"}, {"tenant", "move"}, {"tenant", "remove"}, {"instance"}, {"instance", "spawn"},
		{"instance", "stop"}, {"instance", "remove"}, {"instance", "list"}, {"instance", "status"}, {"apply"}, {"diff"},
		{"status"}, {"events"}, {"run"}, {"sim"}, {"demo"}, {"approve"}, {"settings"}, {"settings", "set"}, {"route"},
		{"serve"}, {"token"}, {"token", "create"}, {"token", "list"}, {"token", "revoke"},
	} {
		r := cli(t, db, "", append(args, "--help")...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%v --help: exit %d: %s %s", args, r.code, r.stdout, r.stderr)
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("--help created the database")
	}
}

func TestCLIWarnsBeforeStopping(t *testing.T) { bothWays(t, testCLIWarnsBeforeStopping) }

// Every path that has the controller stop a copy (tenant move, server
// drain, apply, diff) says so, alike, and what a stop deletes.
func testCLIWarnsBeforeStopping(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	example := filepath.Join("..", "..", "examples", "fleet.yaml")
	expect(t, cliLocal(t, db, "", "apply", "-f", example), 0, "applied", "")
	cost := "the stop deletes its data where the tenement service has storage_persist = false"
	warning := func(key, server string) string {
		return "slum: warning: the copy of " + key + " on " + server + " will be stopped once its new copy runs: " + cost
	}
	serverOf := func(key string) string {
		r := cli(t, db, "", "-o", "json", "instance", "list")
		var ins []slum.Instance
		if err := json.Unmarshal([]byte(r.stdout), &ins); err != nil {
			t.Fatalf("%v %s", err, r.stdout)
		}
		for _, in := range ins {
			if string(in.Key()) == key {
				return in.ServerID
			}
		}
		t.Fatalf("no instance %s", key)
		return ""
	}
	carol := serverOf("carol:prod")
	to := "us-1"
	if carol == "us-1" {
		to = "eu-1"
	}
	expect(t, cli(t, db, "", "tenant", "move", "carol", "--to", to), 0, "carol:prod moves", warning("carol:prod", carol))

	data, _ := os.ReadFile(example)
	moved := filepath.Join(dir, "moved.yaml")
	os.WriteFile(moved, []byte(strings.Replace(string(data), "        server: eu-2        # pin it", "        server: eu-1        # pin it", 1)), 0o644)
	r := cli(t, db, "", "diff", "-f", moved)
	if r.code != 0 || !strings.Contains(r.stderr, warning("bob:prod", "eu-2")) {
		t.Fatalf("diff of a move: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r2 := cli(t, db, "", "apply", "-f", moved)
	if r2.code != 0 || r2.stderr != r.stderr {
		t.Fatalf("apply warns otherwise than diff: %d\ndiff: %s\napply: %s", r2.code, r.stderr, r2.stderr)
	}

	r = cli(t, db, "", "server", "drain", "eu-1")
	if r.code != 0 || !strings.Contains(r.stderr, warning("bob:prod", "eu-1")) {
		t.Errorf("drain does not warn of bob:prod: %d %s %s", r.code, r.stdout, r.stderr)
	}
}

// Settings that are valid but likely not meant are applied, with a
// warning on stderr, by 'settings set', 'settings', and a diff or apply
// of a file that sets them.
func TestCLIWarnsOfSettingsLikelyNotMeant(t *testing.T) {
	bothWays(t, testCLIWarnsOfSettingsLikelyNotMeant)
}

func testCLIWarnsOfSettingsLikelyNotMeant(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	expect(t, cliLocal(t, db, "", "init"), 0, "", "")
	const warning = "slum: warning: probe_timeout 5s is longer than probe_interval 1s"
	r := cli(t, db, "", "settings", "set", "--probe-timeout", "5s")
	expect(t, r, 0, "probe_timeout       5s", warning)
	if !strings.Contains(r.stderr, "dead_after × probe_timeout (15s), not 3s") {
		t.Fatalf("the warning does not say what it costs: %q", r.stderr)
	}
	expect(t, cli(t, db, "", "settings"), 0, "probe_timeout", warning)
	r = cli(t, db, "", "settings", "set", "--probe-timeout", "500ms")
	expect(t, r, 0, "probe_timeout       500ms", "")
	if strings.Contains(r.stderr, "warning") {
		t.Fatalf("a warning for settings that are fine: %q", r.stderr)
	}
	file := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(file, []byte("version: 1\nsettings:\n  probe_interval: 500ms\n  probe_timeout: 2s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const fileWarning = "slum: warning: probe_timeout 2s is longer than probe_interval 500ms"
	expect(t, cli(t, db, "", "diff", "-f", file), 0, "", fileWarning)
	expect(t, cli(t, db, "", "apply", "-f", file), 0, "applied", fileWarning)
	// Applied again, it changes nothing and says the same.
	expect(t, cli(t, db, "", "apply", "-f", file), 0, "", fileWarning)
}

// 'server add --token-file' is the server's token: with --api, the error
// for two token sources says so, since elsewhere --token-file names the
// API's.
func TestCLIServerTokenFileIsTheServers(t *testing.T) {
	bothWays(t, testCLIServerTokenFileIsTheServers)
}

func testCLIServerTokenFileIsTheServers(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	expect(t, cliLocal(t, db, "", "init"), 0, "", "")
	tok := filepath.Join(dir, "server-token")
	if err := os.WriteFile(tok, []byte("tenement-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli(t, db, "", "server", "add", "s1", "--url", "http://10.0.0.1:8080", "--capacity-mb", "100", "--no-token", "--token-file", tok)
	expect(t, r, 2, "", "give one of --token-file, --token-env, --token-stdin and --no-token")
	if hint := "name the API's with --api-token-file"; strings.Contains(r.stderr, hint) != isRemote(t) {
		t.Fatalf("with --api %v, the hint %q is in %q", isRemote(t), hint, r.stderr)
	}
}
