package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// 'slum route --db' keeps answering with its last table while the
// database file is gone, says so on /healthz and in its metrics, and
// follows the database again once a backup is put back in its place.
func TestRouteOutlivesItsDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	tok := filepath.Join(dir, "token")
	_, simURL, _ := startProc(t, regexp.MustCompile(`simulated tenement on (http://\S+)`),
		"sim", "--listen", "127.0.0.1:0", "--token-file", tok)
	expect(t, cliLocal(t, db, "", "server", "add", "s1", "--url", simURL, "--capacity-mb", "1024", "--token-file", tok), 0, "added", "")
	expect(t, cliLocal(t, db, "", "tenant", "add", "alice", "--domain", "alice.example.com", "--process", "api"), 0, "placed on s1", "")
	run, _, _ := startProc(t, regexp.MustCompile(`(slum run)`), "--db", db, "run", "--metrics-addr", "", "--log-format", "json", "--poll-interval", "100ms")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(cliLocal(t, db, "", "tenant", "get", "alice").stdout, "prod@s1") {
		if time.Now().After(deadline) {
			t.Fatal(cliLocal(t, db, "", "tenant", "get", "alice").stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	run.Process.Signal(syscall.SIGTERM)
	run.Wait()

	_, metrics, logPath := startProc(t, regexp.MustCompile(`"msg":"serving metrics","addr":"(http://[^"]+)/metrics"`),
		"--db", db, "route", "--listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-format", "json", "--follow-interval", "20ms")
	logBytes, _ := os.ReadFile(logPath)
	m := regexp.MustCompile(`"msg":"routing tenants' traffic","addr":"(http://[^"]+)"`).FindStringSubmatch(string(logBytes))
	if m == nil {
		t.Fatalf("no router address in the log:\n%s", logBytes)
	}
	routerURL := m[1]
	alice := func() int {
		req, _ := http.NewRequest("GET", routerURL+"/", nil)
		req.Host = "alice.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	health := func() routerHealth {
		_, body := get(t, metrics+"/healthz?format=json")
		var h routerHealth
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("/healthz: %v: %s", err, body)
		}
		return h
	}
	if code := alice(); code != 200 {
		t.Fatalf("alice before: %d", code)
	}

	backup := db + ".backup"
	backupDB(t, db, backup)
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the router to see its database gone", func() bool { return !health().SourceUp })
	for i := 0; i < 20; i++ {
		if code := alice(); code != 200 {
			t.Fatalf("alice with the database gone: %d", code)
		}
	}
	if h := health(); !strings.Contains(h.LastError, "was deleted") || h.Routes != 1 {
		t.Errorf("/healthz with the database gone: %+v", h)
	}
	if _, body := get(t, metrics+"/metrics"); !strings.Contains(body, "slum_router_source_up 0") {
		t.Errorf("metrics with the database gone lack slum_router_source_up 0")
	}
	if _, body := get(t, metrics+"/healthz"); !strings.Contains(body, "DOWN since") {
		t.Errorf("/healthz with the database gone:\n%s", body)
	}

	if err := os.Rename(backup, db); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the router to follow its database again", func() bool { return health().SourceUp })
	expect(t, cliLocal(t, db, "", "tenant", "add", "bob", "--domain", "bob.example.com", "--process", "api"), 0, "placed on s1", "")
	waitUntil(t, "bob's route", func() bool { return health().Routes == 2 })
	if code := alice(); code != 200 {
		t.Fatalf("alice after: %d", code)
	}
	logBytes, _ = os.ReadFile(logPath)
	for _, msg := range []string{"route source is down: routing with the last good table", "route source is back: following it again"} {
		if !strings.Contains(string(logBytes), msg) {
			t.Errorf("the log lacks %q:\n%s", msg, logBytes)
		}
	}
}

// routerHealth is the part of /healthz?format=json the test reads.
type routerHealth struct {
	SourceUp  bool   `json:"source_up"`
	LastError string `json:"last_error"`
	Routes    int    `json:"table_routes"`
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
