// Package e2e drives slum against real tenement servers: three `ten serve`
// processes, each in a network namespace of its own, and `slum run` on the
// host, checking the fleet's real state through tenement's own API.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slum-fleet/slum/e2e/harness"
	"github.com/slum-fleet/slum/localfleet"
	"github.com/slum-fleet/slum/observed"
)

var slumBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slum-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	slumBin = filepath.Join(dir, "slum")
	if out, err := exec.Command("go", "build", "-o", slumBin, "../cmd/slum").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build slum: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type env struct {
	t     *testing.T
	fleet *localfleet.Fleet
	dir   string
	db    string
	run   *exec.Cmd
	runs  int
}

func (e *env) slum(args ...string) string {
	e.t.Helper()
	cmd := exec.Command(slumBin, append([]string{"--db", e.db}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("slum %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// startRun starts the controller as users do, logging to a file.
func (e *env) startRun(extra ...string) {
	e.t.Helper()
	e.runs++
	logf, err := os.Create(filepath.Join(e.dir, fmt.Sprintf("run-%d.log", e.runs)))
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(slumBin, "--db", e.db, "run", "--poll-interval", "500ms", "--poll-timeout", "1s",
		"--offline-after", "3s", "--metrics-addr", "", "--log-level", "debug", "--backoff-max", "2s")
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.run = cmd
	go func() { _ = cmd.Wait(); logf.Close() }()
}

func (e *env) stopRun(sig syscall.Signal) {
	if e.run == nil {
		return
	}
	_ = e.run.Process.Signal(sig)
	deadline := time.Now().Add(15 * time.Second)
	for e.run.ProcessState == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if e.run.ProcessState == nil {
		_ = e.run.Process.Kill()
	}
	e.run = nil
}

func (e *env) member(id string) *localfleet.Member {
	for _, m := range e.fleet.Members {
		if m.ID == id {
			return m
		}
	}
	e.t.Fatalf("no server %s", id)
	return nil
}

// running asks a server itself what it runs.
func (e *env) running(id string) ([]string, error) {
	m := e.member(id)
	c, err := observed.NewClient(m.URL, m.Token, observed.WithTimeout(2*time.Second))
	if err != nil {
		return nil, err
	}
	list, err := c.List(context.Background())
	if err != nil {
		return nil, err
	}
	var names []string
	for _, in := range list {
		names = append(names, in.Name)
	}
	sort.Strings(names)
	return names, nil
}

// converge waits until every listed server runs exactly want, and returns
// how long that took.
func (e *env) converge(want map[string][]string, timeout time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < timeout {
		ok := true
		var b strings.Builder
		for id, names := range want {
			got, err := e.running(id)
			sort.Strings(names)
			fmt.Fprintf(&b, "%s: %v (%v); ", id, got, err)
			if err != nil || !slices.Equal(got, names) {
				ok = false
			}
		}
		if ok {
			return time.Since(start)
		}
		last = b.String()
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("no convergence in %v: %s\nwant %v\nstatus:\n%s", timeout, last, want, e.slum("status"))
	return 0
}

func (e *env) writeFleet(name, tenants string) string {
	e.t.Helper()
	var b strings.Builder
	b.WriteString("version: 1\nservers:\n")
	for _, m := range e.fleet.Members {
		fmt.Fprintf(&b, "  - {id: %s, url: '%s', capacity_mb: 4096, token_file: '%s'}\n", m.ID, m.URL, m.TokenFile)
	}
	b.WriteString("tenants:\n" + tenants)
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// appAnswers fetches a tenant's app through tenement's subdomain router.
func (e *env) appAnswers(server, process, id string) (string, error) {
	m := e.member(server)
	req, _ := http.NewRequest("GET", m.URL+"/hello", nil)
	req.Host = id + "." + process + "." + server + ".fleet.test"
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	var out struct {
		Tenant string `json:"tenant"`
	}
	err = json.Unmarshal(body, &out)
	return out.Tenant, err
}

func figure(t *testing.T, what string, d time.Duration) {
	t.Logf("FIGURE %s: %.2fs", what, d.Seconds())
	fmt.Printf("e2e figure: %-55s %6.2fs\n", what, d.Seconds())
}

func TestRealFleet(t *testing.T) {
	fleet := harness.Fleet(t, 3, []localfleet.Service{{Name: "api"}})
	dir := t.TempDir()
	e := &env{t: t, fleet: fleet, dir: dir, db: filepath.Join(dir, "slum.db")}
	t.Cleanup(func() {
		e.stopRun(syscall.SIGTERM)
		if t.Failed() {
			for i := 1; i <= e.runs; i++ {
				b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("run-%d.log", i)))
				t.Logf("slum run log %d (tail):\n%s", i, tail(string(b), 40))
			}
		}
	})

	base := `  - {id: alice, domain: alice.example.com, instances: [{id: prod, process: api, server: s1}, {id: backup, process: api, server: s2}]}
  - {id: bob, domain: bob.example.com, instances: [{id: prod, process: api, server: s2}]}
  - {id: carol, domain: carol.example.com, instances: [{id: prod, process: api, server: s3}]}
`
	e.slum("apply", "-f", e.writeFleet("fleet.yaml", base))
	e.startRun()

	t.Run("converge from empty", func(t *testing.T) {
		took := e.converge(map[string][]string{
			"s1": {"api:alice--prod"}, "s2": {"api:alice--backup", "api:bob--prod"}, "s3": {"api:carol--prod"},
		}, 60*time.Second)
		figure(t, "converge from empty (4 instances, 3 servers)", took)
		deadline := time.Now().Add(20 * time.Second)
		for {
			who, err := e.appAnswers("s1", "api", "alice--prod")
			if err == nil && who == "alice--prod" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("alice's app through tenement: %q %v", who, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// Each tenant keeps its own SQLite file on its server.
		for _, c := range []struct{ server, id string }{{"s1", "alice--prod"}, {"s2", "alice--backup"}, {"s2", "bob--prod"}, {"s3", "carol--prod"}} {
			db := filepath.Join(e.member(c.server).Ten.Data, "tenants", c.id, "app.db")
			if _, err := os.Stat(db); err != nil {
				t.Errorf("%s's data on %s: %v", c.id, c.server, err)
			}
		}
	})

	t.Run("add, move and remove tenants", func(t *testing.T) {
		e.slum("tenant", "add", "dave", "--domain", "dave.example.com", "--process", "api", "--server", "s3")
		e.slum("tenant", "move", "bob", "--to", "s1")
		e.slum("tenant", "remove", "carol")
		took := e.converge(map[string][]string{
			"s1": {"api:alice--prod", "api:bob--prod"}, "s2": {"api:alice--backup"}, "s3": {"api:dave--prod"},
		}, 60*time.Second)
		figure(t, "add + move + remove", took)
	})

	t.Run("a restarted tenement server gets its instances back", func(t *testing.T) {
		if err := e.member("s2").Ten.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
		took := e.converge(map[string][]string{"s2": {"api:alice--backup"}}, 60*time.Second)
		figure(t, "respawn after a tenement restart", took)
	})

	// bulkOn is what s1 runs after the kill scenario.
	bulkOn := func(string) []string {
		out := []string{"api:alice--prod", "api:bob--prod"}
		for i := 0; i < 24; i += 3 {
			out = append(out, fmt.Sprintf("api:bulk%d--prod", i))
		}
		return out
	}
	t.Run("slum killed mid-convergence and restarted", func(t *testing.T) {
		var tenants strings.Builder
		want := map[string][]string{"s1": {"api:alice--prod", "api:bob--prod"}, "s2": {"api:alice--backup"}, "s3": {"api:dave--prod"}}
		for i := 0; i < 24; i++ {
			s := fmt.Sprintf("s%d", i%3+1)
			fmt.Fprintf(&tenants, "  - {id: bulk%d, domain: bulk%d.example.com, instances: [{id: prod, process: api, server: %s}]}\n", i, i, s)
			want[s] = append(want[s], fmt.Sprintf("api:bulk%d--prod", i))
		}
		now := `  - {id: alice, domain: alice.example.com, instances: [{id: prod, process: api, server: s1}, {id: backup, process: api, server: s2}]}
  - {id: bob, domain: bob.example.com, instances: [{id: prod, process: api, server: s1}]}
  - {id: dave, domain: dave.example.com, instances: [{id: prod, process: api, server: s3}]}
`
		if out := e.slum("diff", "-f", e.writeFleet("now.yaml", now), "--prune"); !strings.Contains(out, "no changes") {
			t.Fatalf("the fleet file does not describe the fleet: %s", out)
		}
		// One call at a time per server, so the kill lands mid-way.
		e.stopRun(syscall.SIGTERM)
		e.startRun("--per-server", "1")
		e.slum("apply", "-f", e.writeFleet("bulk.yaml", now+tenants.String()))
		// Wait for the first spawns, then kill -9.
		killedWith := 0
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, _ := e.running("s1")
			if len(got) > 2 || time.Now().After(deadline) {
				killedWith = len(got)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		e.stopRun(syscall.SIGKILL)
		if total := killedWith; total >= len(want["s1"]) {
			t.Fatalf("the kill came after convergence (s1 ran %d)", total)
		}
		e.startRun()
		took := e.converge(want, 90*time.Second)
		figure(t, "converge after SIGKILL and restart (24 more)", took)
		// Nothing lost: the ledger holds exactly what runs.
		out := e.slum("-o", "json", "status")
		if !strings.Contains(out, `"running": 28`) {
			t.Fatalf("status after restart: %s", out)
		}
	})

	t.Run("a wrong token is a clear status and locks nobody out", func(t *testing.T) {
		bad := filepath.Join(e.dir, "bad-token")
		os.WriteFile(bad, []byte("not-the-token"), 0o600)
		e.slum("server", "update", "s3", "--token-file", bad)
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(e.slum("status"), "unauthorized") {
			if time.Now().After(deadline) {
				t.Fatalf("no unauthorized status:\n%s", e.slum("status"))
			}
			time.Sleep(200 * time.Millisecond)
		}
		// Polls go on (every 500ms) but the bad token is not resent: the
		// server never locks its other clients out.
		time.Sleep(6 * time.Second)
		if _, err := e.running("s3"); err != nil {
			t.Fatalf("another client of s3 after slum's bad token: %v", err)
		}
		e.slum("tenant", "add", "erin", "--domain", "erin.example.com", "--process", "api", "--server", "s1")
		e.converge(map[string][]string{"s1": append(bulkOn("s1"), "api:erin--prod")}, 30*time.Second)
		e.slum("server", "update", "s3", "--token-file", e.member("s3").TokenFile)
	})

	onS1 := append(bulkOn("s1"), "api:erin--prod")
	stall := func(t *testing.T, name string, break_, heal func()) {
		break_()
		e.slum("tenant", "add", "f"+name, "--domain", "f"+name+".example.com", "--process", "api", "--server", "s1")
		onS1 = append(onS1, "api:f"+name+"--prod")
		want := slices.Clone(onS1)
		took := e.converge(map[string][]string{"s1": want}, 30*time.Second)
		figure(t, "healthy server converges while s3 is "+name, took)
		if took > 10*time.Second {
			t.Fatalf("the %s server held up the rest of the fleet: %v", name, took)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			st := e.slum("status")
			if strings.Contains(st, "s3      active  suspect") || strings.Contains(st, "s3      active  offline") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("s3 not suspect or offline:\n%s", st)
			}
			time.Sleep(200 * time.Millisecond)
		}
		heal()
		deadline = time.Now().Add(30 * time.Second)
		for !strings.Contains(e.slum("status"), "s3      active  online") {
			if time.Now().After(deadline) {
				t.Fatalf("s3 not back online:\n%s", e.slum("status"))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Run("a hung server does not stall the fleet", func(t *testing.T) {
		ten := e.member("s3").Ten
		stall(t, "hung", func() { ten.Signal(syscall.SIGSTOP) }, func() { ten.Signal(syscall.SIGCONT) })
	})
	t.Run("a cut link does not stall the fleet", func(t *testing.T) {
		h := e.member("s3").Host
		stall(t, "cut", func() { h.SetLink(false) }, func() { h.SetLink(true) })
	})

	t.Run("SIGTERM stops slum cleanly", func(t *testing.T) {
		cmd := e.run
		e.stopRun(syscall.SIGTERM)
		if cmd.ProcessState == nil || !cmd.ProcessState.Success() {
			t.Fatalf("slum run after SIGTERM: %v", cmd.ProcessState)
		}
	})
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
