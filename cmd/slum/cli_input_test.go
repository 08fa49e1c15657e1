package main

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dbState is a database's bytes with its WAL, or "absent".
func dbState(t *testing.T, path string) string {
	t.Helper()
	main, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "absent"
	}
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(path + "-wal")
	return string(main) + "\x00wal\x00" + string(wal)
}

// rejected runs a command that must fail with code, printing want on
// stderr in one line, and leave the database byte for byte as it was.
func rejected(t *testing.T, db, stdin string, code int, want string, args ...string) result {
	t.Helper()
	before := dbState(t, db)
	r := cli(t, db, stdin, args...)
	expect(t, r, code, "", want)
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "slum: ") {
		t.Fatalf("%v: stderr is not one line: %q", args, r.stderr)
	}
	if dbState(t, db) != before {
		t.Fatalf("%v was rejected but changed the database", args)
	}
	return r
}

// newFleet makes a database with servers s1 and s2 (capacity 1000 MB, with
// tokens) and tenant alice with instance prod on s1.
func newFleet(t *testing.T) (dir, db string) {
	t.Helper()
	dir = t.TempDir()
	db = filepath.Join(dir, "fleet.db")
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(t, cli(t, db, "", "server", "add", "s1", "--url", "http://10.0.0.1:8080", "--capacity-mb", "1000", "--token-file", tok), 0, "server s1 added", "")
	expect(t, cli(t, db, "", "server", "add", "s2", "--url", "http://10.0.0.2:8080", "--capacity-mb", "1000", "--token-file", tok), 0, "server s2 added", "")
	expect(t, cli(t, db, "", "tenant", "add", "alice", "--domain", "alice.example.com", "--process", "api", "--server", "s1"), 0, "placed on s1", "")
	return dir, db
}

func writeFile(t *testing.T, path, text string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// Issue 10, item 1: no empty token, and no server without one unless asked.
func TestCLITokenSourcesMustHoldAToken(t *testing.T) { bothWays(t, testCLITokenSourcesMustHoldAToken) }

func testCLITokenSourcesMustHoldAToken(t *testing.T) {
	dir, db := newFleet(t)
	empty := writeFile(t, filepath.Join(dir, "empty"), "", 0o600)
	blank := writeFile(t, filepath.Join(dir, "blank"), "\n  \n", 0o600)
	rejected(t, db, "", 3, `token: the token file "`+empty+`" is empty`, "server", "update", "s1", "--token-file", empty)
	rejected(t, db, "", 3, `the token file "`+blank+`" is empty`, "server", "update", "s1", "--token-file", blank)
	rejected(t, db, "", 3, `--token-file "`+dir+`/nope": cannot be read: no such file or directory`, "server", "update", "s1", "--token-file", filepath.Join(dir, "nope"))
	rejected(t, db, "", 3, "the standard input is empty", "server", "update", "s1", "--token-stdin")
	rejected(t, db, "", 3, `--token-env "UNSET_VAR": environment variable is not set: export UNSET_VAR=`, "server", "update", "s1", "--token-env", "UNSET_VAR")
	rejected(t, db, "", 2, "server add needs the server's admin token", "server", "add", "s3", "--url", "http://10.0.0.3:8080", "--capacity-mb", "1")
	rejected(t, db, "", 2, "give one of --token-file, --token-env, --token-stdin and --no-token", "server", "add", "s3", "--url", "http://10.0.0.3:8080", "--capacity-mb", "1", "--no-token", "--token-file", empty)
	expect(t, cli(t, db, "", "server", "get", "s1"), 0, "token:       set", "")
	fleet := writeFile(t, filepath.Join(dir, "fleet.yaml"), "version: 1\nservers:\n  - id: s1\n    url: http://10.0.0.1:8080\n    capacity_mb: 1000\n    token_file: empty\n", 0o644)
	rejected(t, db, "", 3, fleet+`:6: servers[0].token: the token file "empty" is empty`, "apply", "-f", fleet)
	fleet = writeFile(t, filepath.Join(dir, "new.yaml"), "version: 1\nservers:\n  - id: s3\n    url: http://10.0.0.3:8080\n    capacity_mb: 1000\n", 0o644)
	rejected(t, db, "", 3, fleet+`:3: servers[0] "s3": is a new server without a token`, "apply", "-f", fleet)
	// Asked for, a server without a token is added, and the output says
	// what that means.
	expect(t, cli(t, db, "", "server", "add", "s3", "--url", "http://10.0.0.3:8080", "--capacity-mb", "1", "--no-token"), 0, "(no token: the controller cannot reach it", "")
	expect(t, cli(t, db, "", "server", "update", "s1", "--no-token"), 0, "server s1 updated", "")
	expect(t, cli(t, db, "", "server", "get", "s1"), 0, "token:       not set", "")
}

// ledger changes the ownership ledger as a running controller would:
// an entry says slum placed a copy it must stop before its server may go.
func ledger(t *testing.T, db, stmt string, args ...any) {
	t.Helper()
	d, err := sql.Open("sqlite3", "file:"+db+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Exec(stmt, args...); err != nil {
		t.Fatal(err)
	}
}

// Issue 10, item 2: prune follows the rules of the single commands, diff
// and apply agree, and pruning most of the fleet needs --allow-mass-prune.
func TestCLIPruneIsSafe(t *testing.T) { bothWays(t, testCLIPruneIsSafe) }

func testCLIPruneIsSafe(t *testing.T) {
	dir, db := newFleet(t)
	expect(t, cli(t, db, "", "tenant", "add", "bob", "--domain", "bob.example.com", "--process", "api", "--server", "s2"), 0, "placed on s2", "")
	ledger(t, db, `INSERT INTO placements (server_id, name, tenant_id, instance_id, created_at) VALUES ('s2', 'api:bob--prod', 'bob', 'prod', 1)`)
	// A file without s2 and bob: s2 still has a copy to stop.
	keep := writeFile(t, filepath.Join(dir, "keep.yaml"), `version: 1
servers:
  - {id: s1, url: 'http://10.0.0.1:8080', capacity_mb: 1000}
tenants:
  - id: alice
    domain: alice.example.com
    instances: [{id: prod, process: api}]
`, 0o644)
	const refused = "prune server s2: conflict: the controller has yet to stop 1 instances it placed there; keep s2 in the file until they are stopped"
	for _, cmd := range []string{"diff", "apply"} {
		rejected(t, db, "", 5, refused, cmd, "-f", keep, "--prune", "--allow-mass-prune")
	}
	expect(t, cli(t, db, "", "tenant", "remove", "bob"), 0, "", "")
	expect(t, cli(t, db, "", "server", "remove", "s2"), 5, "", "the controller has yet to stop 1 instances it placed there") // as prune refuses
	// The controller stops the copy and forgets it.
	ledger(t, db, `DELETE FROM placements`)
	expect(t, cli(t, db, "", "tenant", "add", "bob", "--domain", "bob.example.com", "--process", "api", "--server", "s2"), 0, "placed on s2", "")
	// A file holding only the version: most of the fleet.
	empty := writeFile(t, filepath.Join(dir, "empty.yaml"), "version: 1\n", 0o644)
	const mass = "would delete most of the fleet: 2 of 2 servers, 2 of 2 tenants, 2 of 2 instances; is the file complete? If this is meant, add --allow-mass-prune"
	for _, cmd := range []string{"diff", "apply"} {
		r := rejected(t, db, "", 5, mass, cmd, "-f", empty, "--prune")
		if !strings.Contains(r.stdout, "- tenant alice") || !strings.Contains(r.stdout, "would apply "+empty+": 0 to create, 0 to update, 6 to delete") {
			t.Fatalf("%s --prune does not show what it refused:\n%s", cmd, r.stdout)
		}
	}
	// Without --prune the same file changes nothing and says so.
	expect(t, cli(t, db, "", "apply", "-f", empty), 0, "6 objects in the database are not in", "")
}

// Issue 10, item 3.
func TestCLIUnknownCommandsAreUsageErrors(t *testing.T) {
	bothWays(t, testCLIUnknownCommandsAreUsageErrors)
}

func testCLIUnknownCommandsAreUsageErrors(t *testing.T) {
	_, db := newFleet(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"servr", "list"}, `unknown command "servr" for "slum"; did you mean "server"?`},
		{[]string{"server", "lst"}, `unknown command "lst" for "slum server"; did you mean "list"?`},
		{[]string{"tenant", "ad", "bob"}, `unknown command "ad" for "slum tenant"; did you mean "add"?`},
		{[]string{"instance", "xyzzy"}, `unknown command "xyzzy" for "slum instance"; see 'slum instance --help'`},
	} {
		rejected(t, db, "", 2, tc.want, tc.args...)
	}
	expect(t, cli(t, db, "", "server"), 0, "Available Commands:", "")
}

// sqliteFile makes a SQLite database with stmts, as another program would.
func sqliteFile(t *testing.T, path string, stmts ...string) {
	t.Helper()
	d, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, s := range stmts {
		if _, err := d.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
}

// Issue 10, item 4: another program's database is refused untouched; a
// missing one is created only by the commands meant to, which say so.
func TestCLIDatabaseMustBeAFleet(t *testing.T) {
	dir := t.TempDir()
	fleet := writeFile(t, filepath.Join(dir, "fleet.yaml"), "version: 1\nservers:\n  - {id: s1, url: 'http://10.0.0.1:8080', capacity_mb: 100, no_token: true}\n", 0o644)
	foreign := filepath.Join(dir, "app.db")
	sqliteFile(t, foreign, `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`, `INSERT INTO users (name) VALUES ('ann')`)
	migrateTool := filepath.Join(dir, "migrate.db")
	sqliteFile(t, migrateTool, `CREATE TABLE schema_migrations (version INTEGER NOT NULL, dirty BOOLEAN NOT NULL)`)
	notSQLite := writeFile(t, filepath.Join(dir, "notes.txt"), "not a database\n", 0o600)
	every := [][]string{
		{"init"}, {"server", "add", "s1", "--url", "http://10.0.0.1:8080", "--capacity-mb", "100", "--no-token"},
		{"apply", "-f", fleet}, {"diff", "-f", fleet}, {"status"}, {"server", "list"}, {"tenant", "list"},
		{"instance", "list"}, {"events"}, {"run", "--dry-run"},
	}
	for _, db := range []string{foreign, migrateTool, notSQLite} {
		for _, args := range every {
			rejected(t, db, "", 3, "not a slum database", args...)
		}
	}
	// A mistyped path: read commands fail, naming it and how to make one.
	missing := filepath.Join(dir, "typo.db")
	for _, args := range every[4:] {
		r := rejected(t, missing, "", 4, missing+": no slum database: there is no such file; create the fleet with 'slum init'", args...)
		_ = r
	}
	expect(t, cli(t, missing, "", "diff", "-f", fleet), 0, "would apply", "comparing "+fleet+" with an empty fleet")
	if dbState(t, missing) != "absent" {
		t.Fatal("diff created the database")
	}
	expect(t, cli(t, missing, "", "init"), 0, "fleet database "+missing+" is ready (created, empty)", "created the fleet database "+missing)
	expect(t, cli(t, missing, "", "init"), 0, "is ready (it existed)", "")
	expect(t, cli(t, missing, "", "status"), 0, "0 tenants", "")
	other := filepath.Join(dir, "other.db")
	expect(t, cli(t, other, "", "apply", "-f", fleet), 0, "applied", "created the fleet database "+other)
	third := filepath.Join(dir, "third.db")
	expect(t, cli(t, third, "", "server", "add", "s1", "--url", "http://10.0.0.1:8080", "--capacity-mb", "100", "--no-token"), 0, "added", "created the fleet database "+third)
	// A rejected create leaves no database behind.
	fourth := filepath.Join(dir, "fourth.db")
	rejected(t, fourth, "", 3, "has port 0", "server", "add", "s1", "--url", "http://a:0", "--capacity-mb", "1", "--no-token")
	tooBig := writeFile(t, filepath.Join(dir, "big.yaml"), "version: 1\ntenants:\n  - {id: a, domain: a.com, instances: [{id: p, process: api}]}\n", 0o644)
	rejected(t, fourth, "", 5, tooBig+":3: place a:p: no capacity", "apply", "-f", tooBig)
}

// Issue 10, item 5.
func TestCLIFleetFileIsOneDocument(t *testing.T) { bothWays(t, testCLIFleetFileIsOneDocument) }

func testCLIFleetFileIsOneDocument(t *testing.T) {
	dir, db := newFleet(t)
	two := writeFile(t, filepath.Join(dir, "two.yaml"), "version: 1\ntenants: []\n---\nversion: 1\ntenants:\n  - {id: bob, domain: bob.example.com}\n", 0o644)
	rejected(t, db, "", 3, two+":3: a second YAML document ('---'): a fleet file is one document", "apply", "-f", two)
}

// Issue 10, item 6.
func TestCLIMemoryIsNeverSilentlyChanged(t *testing.T) {
	bothWays(t, testCLIMemoryIsNeverSilentlyChanged)
}

func testCLIMemoryIsNeverSilentlyChanged(t *testing.T) {
	_, db := newFleet(t)
	rejected(t, db, "", 3, `--memory-mb "0": must be a positive whole number`, "instance", "spawn", "alice:prod", "--process", "api", "--memory-mb", "0")
	rejected(t, db, "", 3, `--memory-mb "0": must be a positive whole number`, "tenant", "add", "bob", "--domain", "bob.example.com", "--process", "api", "--memory-mb", "0")
	rejected(t, db, "", 3, `--memory-mb "-5": must be a positive whole number`, "instance", "spawn", "alice:backup", "--process", "api", "--memory-mb", "-5")
	// A re-spawn applies every flag given...
	expect(t, cli(t, db, "", "instance", "spawn", "alice:prod", "--process", "api", "--memory-mb", "512", "--mode", "on-demand"), 0, "is to run on s1", "")
	expect(t, cli(t, db, "", "instance", "list"), 0, "alice:prod  api      s1      512        on-demand", "")
	// ...keeps what is not given (not resetting the mode to always)...
	expect(t, cli(t, db, "", "instance", "spawn", "alice:prod", "--process", "api"), 0, "is to run on s1", "")
	expect(t, cli(t, db, "", "instance", "list"), 0, "alice:prod  api      s1      512        on-demand", "")
	// ...or refuses all of them.
	rejected(t, db, "", 5, "server s1 has 1000 MB for it, not the 5000 MB asked; nothing was changed",
		"instance", "spawn", "alice:prod", "--process", "api", "--memory-mb", "5000", "--mode", "always")
}

// Issue 10, item 7.
func TestCLIRejectsEmptyAndOutOfRangeValues(t *testing.T) {
	bothWays(t, testCLIRejectsEmptyAndOutOfRangeValues)
}

func testCLIRejectsEmptyAndOutOfRangeValues(t *testing.T) {
	dir, db := newFleet(t)
	rejected(t, db, "", 3, `--to "": must not be empty`, "tenant", "move", "alice", "--to", "")
	rejected(t, db, "", 3, `url "http://10.0.0.9:0": has port 0; a port is 1 to 65535`, "server", "add", "s9", "--url", "http://10.0.0.9:0", "--capacity-mb", "1", "--no-token")
	rejected(t, db, "", 3, `url "http://10.0.0.9:": has an empty port`, "server", "add", "s9", "--url", "http://10.0.0.9:", "--capacity-mb", "1", "--no-token")
	rejected(t, db, "", 3, `url "http://10.0.0.9:65536": has port 65536`, "server", "update", "s1", "--url", "http://10.0.0.9:65536")
	rejected(t, db, "", 3, `domain "10.0.0.7": must be a host name, not an IP address`, "tenant", "add", "bob", "--domain", "10.0.0.7")
	rejected(t, db, "", 3, `domain "10.0.0.7": must be a host name, not an IP address`, "tenant", "update", "alice", "--domain", "10.0.0.7")
	rejected(t, db, "", 3, `-n "-1": must be 0 or more`, "events", "-n", "-1")
	noVersion := writeFile(t, filepath.Join(dir, "nov.yaml"), "tenants:\n  - {id: bob, domain: bob.example.com}\n", 0o644)
	rejected(t, db, "", 3, noVersion+":1: version: is missing: a fleet file starts with version: 1", "apply", "-f", noVersion)
}

// Issue 10, item 8.
func TestCLIWarnsAboutSecretsOthersCanRead(t *testing.T) {
	bothWays(t, testCLIWarnsAboutSecretsOthersCanRead)
}

func testCLIWarnsAboutSecretsOthersCanRead(t *testing.T) {
	dir, db := newFleet(t)
	open := writeFile(t, filepath.Join(dir, "open-token"), "tok-2\n", 0o644)
	expect(t, cli(t, db, "", "server", "update", "s2", "--token-file", open), 0, "server s2 updated",
		`slum: warning: token file "`+open+`" is open to other users (mode 0644): chmod 600`)
	fleet := writeFile(t, filepath.Join(dir, "fleet.yaml"), "version: 1\nservers:\n  - {id: s2, url: 'http://10.0.0.2:8080', capacity_mb: 1000, token_file: open-token}\n", 0o644)
	expect(t, cli(t, db, "", "apply", "-f", fleet), 0, "no changes", fleet+`:3: token file "`+open+`" is open to other users (mode 0644)`)
	if isRemote(t) {
		return // the database is the API's to guard
	}
	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	expect(t, cli(t, db, "", "status"), 0, "", `slum: warning: the fleet database "`+db+`" is open to other users (mode 0644) and holds server tokens: chmod 600`)
	if err := os.Chmod(db, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := cli(t, db, "", "status"); strings.Contains(r.stderr, "warning") {
		t.Fatalf("a warning for a private database: %s", r.stderr)
	}
}

// Issue 10, the messages: no password, no split line, the field named,
// the entry's position for errors from the database's state, flags in
// words, and a fleet file from standard input.
func TestCLIMessagesSayWhatAndWhere(t *testing.T) { bothWays(t, testCLIMessagesSayWhatAndWhere) }

func testCLIMessagesSayWhatAndWhere(t *testing.T) {
	dir, db := newFleet(t)
	r := rejected(t, db, "", 3, `url "http://(hidden)@10.0.0.9:8080": must not hold credentials`,
		"server", "add", "s9", "--url", "http://admin:hunter2@10.0.0.9:8080", "--capacity-mb", "1", "--no-token")
	rejected(t, db, "", 3, `url "https://(hidden)@a/x": must not hold credentials`, "server", "update", "s1", "--url", "https://admin:hunter2@a/x")
	if strings.Contains(r.stderr, "hunter2") {
		t.Fatal("the password is shown")
	}
	rejected(t, db, "", 3, `domain "bob\nx.example.com": must be a host name`, "tenant", "add", "bob", "--domain", "bob\nx.example.com")
	rejected(t, db, "", 3, `tenant id "b\nob"`, "tenant", "get", "b\nob")
	bad := writeFile(t, filepath.Join(dir, "bad\nname.yaml"), "version: 1\nservrs: []\n", 0o644)
	rejected(t, db, "", 3, `bad\nname.yaml:2: servrs: is not a known field; did you mean servers?`, "apply", "-f", bad)
	unknown := writeFile(t, filepath.Join(dir, "unknown.yaml"), "version: 1\ntenants:\n  - id: bob\n    domian: bob.example.com\n", 0o644)
	rejected(t, db, "", 3, unknown+`:4: tenants[0].domian: is not a known field; did you mean domain? (known: id, domain, region, failover, serving, data, replica, instances)`, "apply", "-f", unknown)
	clash := writeFile(t, filepath.Join(dir, "clash.yaml"), "version: 1\ntenants:\n  - id: bob\n    domain: bob.example.com\n  - id: carol\n    domain: alice.example.com\n", 0o644)
	rejected(t, db, "", 5, clash+":5: conflict: tenants alice and carol would both have domain alice.example.com", "apply", "-f", clash)
	full := writeFile(t, filepath.Join(dir, "full.yaml"), "version: 1\ntenants:\n  - id: bob\n    domain: bob.example.com\n    instances:\n      - {id: prod, process: api, memory_mb: 5000}\n", 0o644)
	rejected(t, db, "", 5, full+":6: place bob:prod: no capacity", "apply", "-f", full)
	for _, tc := range [][]string{
		{`invalid value "abc" for --capacity-mb: must be a whole number`, "server", "update", "s1", "--capacity-mb", "abc"},
		{`invalid value "99999999999999999999" for --capacity-mb: is out of range`, "server", "update", "s1", "--capacity-mb", "99999999999999999999"},
		{`invalid value "1.5" for --memory-mb: must be a whole number`, "instance", "spawn", "alice:x", "--process", "api", "--memory-mb", "1.5"},
		{`invalid value "x" for --lines: must be a whole number`, "events", "-n", "x"},
		{`invalid value "soon" for --poll-interval: must be a duration such as 500ms, 10s or 1m30s`, "run", "--poll-interval", "soon"},
		{`invalid value "maybe" for --prune: must be true or false`, "apply", "-f", full, "--prune=maybe"},
	} {
		r := rejected(t, db, "", 2, tc[0], tc[1:]...)
		if strings.Contains(r.stderr, "strconv") || strings.Contains(r.stderr, "time:") {
			t.Fatalf("%v shows Go internals: %s", tc[1:], r.stderr)
		}
	}
	// -f - reads the fleet file from standard input.
	stdin := "version: 1\ntenants:\n  - id: bob\n    domain: bob.example.com\n    instances: [{id: prod, process: api}]\n"
	expect(t, cli(t, db, stdin, "diff", "-f", "-"), 0, "would apply stdin: 2 to create", "")
	expect(t, cli(t, db, stdin, "apply", "-f", "-"), 0, "applied stdin: 2 to create", "")
	expect(t, cli(t, db, stdin, "apply", "-f", "-"), 0, "no changes: the database already matches stdin", "")
	rejected(t, db, "version: 1\nservers: 3\n", 3, "stdin:2: servers: must be a list", "apply", "-f", "-")
}

// Issue 10, item 9: README's commands, run as written in an empty
// directory with nothing in the environment but PATH.
func TestREADMEWorksAsWritten(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "## Using slum")
	end := start + 1 + strings.Index(text[start+1:], "\n## ")
	if start < 0 || end <= start {
		t.Fatal("README has no section 'Using slum'")
	}
	var script []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text[start:end], -1) {
		script = append(script, m[1])
	}
	if len(script) < 3 || !strings.HasPrefix(script[0], "go build -o bin/slum ./cmd/slum\n") || strings.TrimSpace(script[len(script)-1]) != "bin/slum run" {
		t.Fatalf("the README's commands are not as this test expects (go build first, bin/slum run last): %q", script)
	}
	// The build is done: link its result where 'go build' would put it.
	script[0] = strings.TrimPrefix(script[0], "go build -o bin/slum ./cmd/slum\n")
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(slumBin, filepath.Join(dir, "bin", "slum")); err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "fleet-as-shipped.yaml"), string(example), 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "examples"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "examples", "fleet.yaml"), string(example), 0o644)

	// Without the variables the example fails, saying what to do.
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	apply := exec.Command(slumBin, "--db", filepath.Join(dir, "x.db"), "apply", "-f", "examples/fleet.yaml")
	apply.Dir, apply.Env = dir, env
	out, err := apply.CombinedOutput()
	if apply.ProcessState.ExitCode() != 3 || !strings.Contains(string(out), `token_env "SLUM_TOKEN_EU_1": environment variable is not set: export SLUM_TOKEN_EU_1=<the admin token of server eu-1>`) {
		t.Fatalf("apply without the token variables: %v\n%s", err, out)
	}

	// Output goes to a file, which the test reads while the commands run.
	outFile, err := os.Create(filepath.Join(t.TempDir(), "output"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	output := func() string { b, _ := os.ReadFile(outFile.Name()); return string(b) }
	cmd := exec.Command("bash", "-euc", strings.Join(script, "\n"))
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = outFile, outFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}()
	// The README's last command, slum run, keeps the fleet converged: wait
	// until every instance is where its desired state says.
	db := filepath.Join(dir, "fleet.db")
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("the README's commands ended (%v) before the fleet converged:\n%s", err, output())
		default:
		}
		if r := cli(t, db, "", "status"); r.code == 0 && strings.Contains(r.stdout, "4 tenants, 5 instances: 3 running 1 idle 1 stopped") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fleet did not converge:\n%s\n%s", cli(t, db, "", "status").stdout, output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"created the fleet database " + db, "server eu-1 added", "instance alice:backup (api:alice--backup) is to run on eu-2",
		"applied examples/fleet.yaml", "no changes: the database already matches examples/fleet.yaml"} {
		if !strings.Contains(output(), want) {
			t.Fatalf("the README's commands did not print %q:\n%s", want, output())
		}
	}
	if shipped, _ := os.ReadFile(filepath.Join(dir, "examples", "fleet.yaml")); string(shipped) != string(example) {
		t.Fatal("the example fleet file changed")
	}
}

// The demo builds its fleet from the example's parsed values, whatever
// their layout in the file.
func TestCLIDemoOnSimulators(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(slumBin, "demo", "--dir", filepath.Join(dir, "demo"), "--backend", "simulator", "--exit-when-converged")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("slum demo: %v\n%s", err, out)
	}
	for _, want := range []string{"using SIMULATED tenement servers", "5/5 settled", "api:alice--prod", "export SLUM_DB="} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
	db := filepath.Join(dir, "demo", "slum.db")
	expect(t, cli(t, db, "", "apply", "-f", filepath.Join(dir, "demo", "fleet.yaml")), 0, "no changes", "")
	expect(t, cli(t, db, "", "server", "get", "us-1"), 0, "token:       set", "")
}

// TestCLIReplicatedData: a tenant declared replicated shows its data and
// replica in get (both ways), a replica with credentials is refused without
// showing them and changes nothing, and --data local drops the replica.
func TestCLIReplicatedData(t *testing.T) { bothWays(t, testCLIReplicatedData) }

func testCLIReplicatedData(t *testing.T) {
	_, db := newFleet(t)
	const url = "s3://replicas/tenants/carol?endpoint=http://127.0.0.1:8333"
	expect(t, cli(t, db, "", "tenant", "add", "carol", "--domain", "carol.example.com", "--data", "replicated", "--replica", url), 0, "tenant carol added", "")
	expect(t, cli(t, db, "", "tenant", "get", "carol"), 0, "data:      replicated ("+url+")", "")
	expect(t, cli(t, db, "", "-o", "json", "tenant", "get", "carol"), 0, `"data": "replicated"`, "")
	if r := rejected(t, db, "", 3, `replica "s3://REDACTED@replicas/carol": must not carry credentials`,
		"tenant", "update", "carol", "--replica", "s3://key:hunter2@replicas/carol"); strings.Contains(r.stderr+r.stdout, "hunter2") {
		t.Fatalf("the secret was shown: %q", r.stderr)
	}
	rejected(t, db, "", 3, `replica "": is required with data: replicated`, "tenant", "add", "dave", "--domain", "dave.example.com", "--data", "replicated")
	expect(t, cli(t, db, "", "tenant", "update", "carol", "--data", "local"), 0, "tenant carol updated", "")
	expect(t, cli(t, db, "", "tenant", "get", "carol"), 0, "data:      local\n", "")
}
