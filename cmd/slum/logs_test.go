package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum/observed/sim"
)

// logFleet is a fleet database whose servers s1, s2 and s3 are simulated
// tenement servers run by the test, with tenant alice: prod on s1,
// backup on s2, each printing a line or two.
type logFleet struct {
	dir, db string
	sims    map[string]*sim.Server
}

func newLogFleet(t *testing.T) *logFleet {
	t.Helper()
	dir := t.TempDir()
	f := &logFleet{dir: dir, db: filepath.Join(dir, "fleet.db"), sims: map[string]*sim.Server{}}
	for _, id := range []string{"s1", "s2", "s3"} {
		s := sim.New(sim.Config{Token: "secret-" + id, Processes: map[string]sim.Process{"api": {}}})
		u, err := s.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		f.sims[id] = s
		tok := writeFile(t, filepath.Join(dir, id+".token"), "secret-"+id+"\n", 0o600)
		expect(t, cliLocal(t, f.db, "", "server", "add", id, "--url", u, "--capacity-mb", "1000", "--token-file", tok), 0, "added", "")
	}
	expect(t, cliLocal(t, f.db, "", "tenant", "add", "alice", "--domain", "alice.example.com", "--process", "api", "--server", "s1"), 0, "placed on s1", "")
	expect(t, cliLocal(t, f.db, "", "instance", "spawn", "alice:backup", "--process", "api", "--server", "s2"), 0, "", "")
	f.sims["s1"].Put("api", "alice--prod") // it prints that it listens
	time.Sleep(2 * time.Millisecond)
	f.sims["s2"].Put("api", "alice--backup")
	time.Sleep(2 * time.Millisecond)
	f.log("s1", "prod", "stdout", "GET /a hits=1")
	f.log("s2", "backup", "stderr", "oops \x1b[31mred")
	f.log("s1", "prod", "stderr", "GET /b failed")
	return f
}

func (f *logFleet) log(server, instance, level, msg string) {
	f.sims[server].Log("api", "alice--"+instance, level, msg)
	time.Sleep(2 * time.Millisecond) // each its own millisecond: one order
}

// row is a line as the table prints it, after the time.
func row(copy, level, msg string) string { return fmt.Sprintf("%-14s  %-6s  %s", copy, level, msg) }

// noSecrets fails when output shows a server's token.
func noSecrets(t *testing.T, r result) {
	t.Helper()
	if strings.Contains(r.stdout+r.stderr, "secret-") {
		t.Fatalf("a server token in the output:\n%s\n%s", r.stdout, r.stderr)
	}
}

// TestCLILogs: every copy's lines in time order, filtered, as JSON, and
// the errors, the same through the API as on the database.
func TestCLILogs(t *testing.T) { bothWays(t, testCLILogs) }

func testCLILogs(t *testing.T) {
	f := newLogFleet(t)
	r := cli(t, f.db, "", "logs", "alice")
	expect(t, r, 0, "", "")
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		fields := strings.Fields(l)
		got = append(got, strings.Join(fields[2:], " "))
	}
	want := []string{"prod@s1 stdout alice--prod listening on port 30000", "backup@s2 stdout alice--backup listening on port 30000",
		"prod@s1 stdout GET /a hits=1", `backup@s2 stderr oops \x1b[31mred`, "prod@s1 stderr GET /b failed"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || r.stderr != "" {
		t.Fatalf("slum logs alice:\n%s\nwant lines ending\n%s\nstderr %q", r.stdout, strings.Join(want, "\n"), r.stderr)
	}
	noSecrets(t, r)

	r = cli(t, f.db, "", "-o", "json", "logs", "alice:prod", "--grep", "GET", "--level", "stderr", "--since", "1h", "-n", "5")
	expect(t, r, 0, "", "")
	var line struct{ Time, Instance, Server, Copy, Level, Message string }
	if err := json.Unmarshal([]byte(r.stdout), &line); err != nil || line.Copy != "prod@s1" || line.Server != "s1" ||
		line.Instance != "prod" || line.Level != "stderr" || line.Message != "GET /b failed" || line.Time == "" {
		t.Fatalf("-o json: %v %s", err, r.stdout)
	}
	expect(t, cli(t, f.db, "", "logs", "alice", "-n", "1"), 0, row("prod@s1", "stderr", "GET /b failed"), "")
	expect(t, cli(t, f.db, "", "logs", "--help"), 0, "Usage:\n  slum logs TENANT[:INSTANCE] [-f]", "")
	expect(t, cli(t, f.db, "", "logs", "alice", "--since", "2000-01-01", "--grep", "nothing like it"), 0, "", "")

	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"logs", "zed"}, 4, "slum: tenant zed not found"},
		{[]string{"logs", "alice:nope"}, 4, "slum: instance alice:nope not found"},
		{[]string{"logs", "Alice"}, 3, `tenant id "Alice": must be lower-case`},
		{[]string{"logs", "alice:"}, 3, `instance id "": must not be empty`},
		{[]string{"logs", "alice", "--level", "info"}, 3, `--level "info": must be stdout or stderr`},
		{[]string{"logs", "alice", "--since", "yesterday"}, 3, `--since "yesterday": must be a duration`},
		{[]string{"logs", "alice", "-n", "-1"}, 3, `--lines "-1": must be 0 or more`},
		{[]string{"logs"}, 2, "slum logs takes 1 argument(s)"},
		{[]string{"logs", "alice", "--tail"}, 2, "unknown flag: --tail"},
	} {
		expect(t, cli(t, f.db, "", tc.args...), tc.code, "", tc.stderr)
	}

	// A server down is said; the other copies are read. None readable
	// is a failure.
	if err := f.sims["s2"].SetDown(true); err != nil {
		t.Fatal(err)
	}
	r = cli(t, f.db, "", "logs", "alice")
	expect(t, r, 0, "GET /b failed", "slum: backup@s2: cannot read its lines: logs on http://127.0.0.1:")
	noSecrets(t, r)
	if err := f.sims["s1"].SetDown(true); err != nil {
		t.Fatal(err)
	}
	r = cli(t, f.db, "", "logs", "alice")
	expect(t, r, 1, "", "slum: no copy of alice could be read: backup@s2: logs on http://127.0.0.1:")
	noSecrets(t, r)
}

// following is a 'slum logs -f' running in the background.
type followingCLI struct {
	cmd  *exec.Cmd
	out  string // the file its stdout and stderr go to
	done chan struct{}
}

func startFollow(t *testing.T, args ...string) *followingCLI {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	fh, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(slumBin, args...)
	cmd.Stdout, cmd.Stderr = fh, fh
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fc := &followingCLI{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); fh.Close(); close(fc.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-fc.done
	})
	return fc
}

func (fc *followingCLI) text() string {
	b, _ := os.ReadFile(fc.out)
	return string(b)
}

// waitFor waits until the output holds s, and says how long it took.
func (fc *followingCLI) waitFor(t *testing.T, s string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for !strings.Contains(fc.text(), s) {
		if time.Since(start) > limit {
			t.Fatalf("no %q in %v:\n%s", s, limit, fc.text())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestCLILogsFollow: -f prints new lines, follows a move to another
// server within a second, and prints nothing twice, both ways.
func TestCLILogsFollow(t *testing.T) { bothWays(t, testCLILogsFollow) }

func testCLILogsFollow(t *testing.T) {
	f := newLogFleet(t)
	args := []string{"--db", f.db, "logs", "alice", "-f"}
	if isRemote(t) {
		s := serveFor(t, f.db)
		read := filepath.Join(t.TempDir(), "read.token")
		expect(t, cliLocal(t, f.db, "", "token", "create", "--role", "read", "--out", read), 0, "", "")
		args = []string{"--api", s.url, "--api-token-file", read, "logs", "alice", "-f"}
	}
	fc := startFollow(t, args...)
	fc.waitFor(t, "GET /b failed", 10*time.Second)
	f.log("s2", "backup", "stdout", "live line")
	fc.waitFor(t, row("backup@s2", "stdout", "live line"), 5*time.Second)

	expect(t, cliLocal(t, f.db, "", "tenant", "move", "alice", "--instance", "prod", "--to", "s3"), 0, "", "")
	f.sims["s3"].Put("api", "alice--prod")
	f.log("s3", "prod", "stdout", "on s3 now")
	took := fc.waitFor(t, row("prod@s3", "stdout", "on s3 now"), 5*time.Second)
	if took > time.Second {
		t.Errorf("the moved copy's line came %v after it was printed", took)
	}
	fc.waitFor(t, "slum: prod@s1: an old copy: prod runs on s3: reading its last lines", 5*time.Second)
	f.log("s1", "prod", "stdout", "last words")
	fc.waitFor(t, row("prod@s1 [an old copy: prod runs on s3]", "stdout", "last words"), 5*time.Second)
	seen := map[string]bool{}
	for _, l := range strings.Split(fc.text(), "\n") {
		if l != "" && !strings.HasPrefix(l, "slum: ") && seen[l] {
			t.Fatalf("printed twice: %q\n%s", l, fc.text())
		}
		seen[l] = true
	}
	if strings.Contains(fc.text(), "secret-") {
		t.Fatal("a server token in the output")
	}
	if err := fc.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fc.done:
		if code := fc.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("interrupted, it exited %d:\n%s", code, fc.text())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an interrupted 'slum logs -f' did not end")
	}
}

// Through the API, revoking the token a 'slum logs -f' reads with ends
// it, with a failure.
func TestCLILogsFollowEndsWhenTheTokenIsRevoked(t *testing.T) {
	f := newLogFleet(t)
	s := serveFor(t, f.db)
	read := filepath.Join(t.TempDir(), "read.token")
	expect(t, cliLocal(t, f.db, "", "token", "create", "--role", "read", "--out", read), 0, "API token 2 (read)", "")
	fc := startFollow(t, "--api", s.url, "--api-token-file", read, "logs", "alice:backup", "-f")
	fc.waitFor(t, "oops", 10*time.Second)
	expect(t, cliLocal(t, f.db, "", "token", "revoke", "2"), 0, "revoked", "")
	fc.ends(t, 1, "slum: the API ended the log stream")
}

// ends waits for the follow to exit (5 s at most) with code, having said
// what.
func (fc *followingCLI) ends(t *testing.T, code int, what string) {
	t.Helper()
	select {
	case <-fc.done:
	case <-time.After(5 * time.Second):
		t.Fatal("'slum logs -f' goes on")
	}
	if got := fc.cmd.ProcessState.ExitCode(); got != code || !strings.Contains(fc.text(), what) {
		t.Fatalf("exit %d, want %d and %q:\n%s", got, code, what, fc.text())
	}
}

// A tenant removed while followed ends 'slum logs -f' cleanly, both ways.
func TestCLILogsFollowEndsWithTheTenant(t *testing.T) {
	bothWays(t, testCLILogsFollowEndsWithTheTenant)
}

func testCLILogsFollowEndsWithTheTenant(t *testing.T) {
	f := newLogFleet(t)
	args := []string{"--db", f.db, "logs", "alice", "-f"}
	if isRemote(t) {
		s := serveFor(t, f.db)
		args = []string{"--api", s.url, "--api-token-file", s.tokenFile, "logs", "alice", "-f"}
	}
	fc := startFollow(t, args...)
	fc.waitFor(t, "GET /b failed", 10*time.Second)
	expect(t, cliLocal(t, f.db, "", "tenant", "remove", "alice"), 0, "", "")
	fc.ends(t, 0, "slum: tenant alice not found: nothing more to follow")
}
