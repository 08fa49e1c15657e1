package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startProc starts the built binary with stderr to a file and waits for
// re to match a line of it, returning the first group and the file.
func startProc(t *testing.T, re *regexp.Regexp, args ...string) (*exec.Cmd, string, string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "stderr")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(slumBin, args...)
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		logf.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logPath)
		if m := re.FindStringSubmatch(string(b)); m != nil {
			return cmd, m[1], logPath
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(logPath)
	t.Fatalf("%v did not print %s:\n%s", args, re, b)
	return nil, "", ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCLIRunAgainstASimulator(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	tok := filepath.Join(dir, "token")
	_, simURL, _ := startProc(t, regexp.MustCompile(`simulated tenement on (http://\S+)`),
		"sim", "--listen", "127.0.0.1:0", "--token-file", tok)
	if fi, err := os.Stat(tok); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	secret, _ := os.ReadFile(tok)
	expect(t, cli(t, db, "", "server", "add", "s1", "--url", simURL, "--capacity-mb", "1024", "--token-file", tok), 0, "added", "")
	expect(t, cli(t, db, "", "tenant", "add", "alice", "--domain", "alice.example.com", "--process", "api"), 0, "placed on s1", "")

	expect(t, cli(t, db, "", "run", "--dry-run"), 0, "spawn api:alice--prod", "")
	expect(t, cli(t, db, "", "-o", "json", "run", "--dry-run"), 0, `"action": "spawn"`, "")

	run, metrics, logPath := startProc(t, regexp.MustCompile(`"addr":"(http://[^"]+)/metrics"`),
		"--db", db, "run", "--metrics-addr", "127.0.0.1:0", "--log-format", "json", "--poll-interval", "200ms")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get(t, metrics+"/metrics")
		if strings.Contains(body, `slum_actions_total{kind="spawn",result="ok"} 1`) {
			for _, m := range []string{"slum_plan_duration_seconds", "slum_queue_depth", "slum_failover_seconds", `slum_servers{health="online"} 1`} {
				if !strings.Contains(body, m) {
					t.Fatalf("metrics lack %s:\n%s", m, body)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no spawn in the metrics:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A second 'slum run' stands by: it does not exit, acts on nothing
	// and says who leads.
	host, _ := os.Hostname()
	second, secondMetrics, secondLog := startProc(t, regexp.MustCompile(`"addr":"(http://[^"]+)/metrics"`),
		"--db", db, "run", "--metrics-addr", "127.0.0.1:0", "--log-format", "json")
	for {
		code, body := get(t, secondMetrics+"/readyz")
		_, m := get(t, secondMetrics+"/metrics")
		if code == 503 && strings.Contains(body, "standby, not acting on the fleet:") && strings.Contains(body, "leads (epoch") &&
			strings.Contains(m, "slum_controller_leader 0") {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(secondLog)
			t.Fatalf("the second slum run is not a standby: /readyz %d %q\n%s", code, body, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := cliLocal(t, db, "", "status").stdout; !strings.Contains(out, "leads (epoch") ||
		!strings.Contains(out, fmt.Sprintf("standby: %s/%d/", host, second.Process.Pid)) {
		t.Fatalf("status names no leader or not the standby:\n%s", out)
	}
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Fatalf("the standby after SIGTERM: %v", err)
	}
	if _, m := get(t, metrics+"/metrics"); !strings.Contains(m, "slum_controller_leader 1") {
		t.Fatalf("the leader's metrics do not say it leads:\n%s", m)
	}
	if code, _ := get(t, metrics+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, _ := get(t, metrics+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	for !strings.Contains(cli(t, db, "", "instance", "status", "alice:prod").stdout, "phase:               running") {
		if time.Now().After(deadline) {
			t.Fatal(cli(t, db, "", "instance", "status", "alice:prod").stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := run.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := run.Wait(); err != nil {
		t.Fatalf("slum run after SIGTERM: %v", err)
	}
	logBytes, _ := os.ReadFile(logPath)
	log := string(logBytes)
	if strings.Contains(log, strings.TrimSpace(string(secret))) {
		t.Fatal("the log shows the token")
	}
	if !strings.Contains(log, `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the log:\n%s", log)
	}
}

// The database deleted under a running controller: it stands by and says
// so; no command creates a new database in its place, or suggests one;
// once a database is back at the path, it opens it and leads again.
func TestRunStandsByWhenItsDatabaseIsDeleted(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	expect(t, cliLocal(t, db, "", "init"), 0, "created", "")
	run, metrics, logPath := startProc(t, regexp.MustCompile(`"addr":"(http://[^"]+)/metrics"`),
		"--db", db, "run", "--metrics-addr", "127.0.0.1:0", "--log-format", "json")
	readyz := func(want int, says string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := get(t, metrics+"/readyz")
			if code == want && strings.Contains(body, says) {
				return
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(logPath)
				t.Fatalf("/readyz %d %q, want %d saying %q\n%s", code, body, want, says, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	readyz(200, "leading")
	away := filepath.Join(dir, "away.db")
	if err := os.Rename(db, away); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	readyz(503, "was deleted")
	t.Logf("FIGURE database deleted: standing by after %.2fs", time.Since(start).Seconds())
	for _, args := range [][]string{{"status"}, {"server", "list"}} {
		r := cliLocal(t, db, "", args...)
		expect(t, r, 4, "", "was deleted or moved")
		if !strings.Contains(r.stderr, "still runs on it") || strings.Contains(r.stderr, "server add") || strings.Contains(r.stderr, "slum init") {
			t.Fatalf("slum %v: %s", args, r.stderr)
		}
	}
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init"}, {"server", "add", "s1", "--url", "http://127.0.0.1:9", "--capacity-mb", "1", "--token-file", tok},
		{"apply", "-f", "-"}} {
		expect(t, cliLocal(t, db, "version: 1\n", args...), 5, "", "refusing to create a new one")
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatal("a command created a new database")
	}
	// The fleet put back (a new file, as a restore makes): led again.
	b, err := os.ReadFile(away)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	readyz(200, "leading")
	t.Logf("FIGURE database restored: leading again after %.2fs", time.Since(start).Seconds())
	expect(t, cliLocal(t, db, "", "status"), 0, "leads (epoch", "")
	if err := run.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := run.Wait(); err != nil {
		t.Fatalf("slum run after SIGTERM: %v", err)
	}
	if ms, _ := filepath.Glob(db + ".run-*"); len(ms) != 0 {
		t.Fatalf("run markers left after a clean stop: %v", ms)
	}
}
