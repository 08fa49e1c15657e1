// Package e2e drives slum against real tenement servers: three `ten serve`
// processes, each in a network namespace of its own, and `slum run` on the
// host, checking the fleet's real state through tenement's own API. Each
// test starts from clean servers and a new database, so tests stand alone.
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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/e2e/harness"
	"github.com/slum-fleet/slum/localfleet"
	"github.com/slum-fleet/slum/observed"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

var (
	slumBin   string
	fleetOnce sync.Once
	fleet     *localfleet.Fleet
	fleetErr  error
	fleetDir  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slum-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	slumBin = filepath.Join(dir, "slum")
	args := []string{"build", "-o", slumBin}
	if raceEnabled {
		args = append(args, "-race") // the controller under test is race-checked too
	}
	if out, err := exec.Command("go", append(args, "../cmd/slum")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build slum: %v\n%s", err, out)
		os.Exit(1)
	}
	fleetDir = filepath.Join(dir, "fleet")
	code := m.Run()
	if fleet != nil {
		fleet.Close()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// sharedFleet starts the three real tenement servers once for all tests.
func sharedFleet(t *testing.T) *localfleet.Fleet {
	t.Helper()
	harness.RequireTen(t)
	harness.RequireNetns(t)
	fleetOnce.Do(func() {
		fleet, fleetErr = localfleet.Start(context.Background(), localfleet.Options{Servers: 3, Dir: fleetDir,
			Backend: localfleet.BackendTenement, Services: []localfleet.Service{{Name: "api"}, {Name: "idle", IdleTimeout: 60}}})
	})
	if fleetErr != nil {
		t.Fatal(fleetErr)
	}
	return fleet
}

type env struct {
	t     *testing.T
	fleet *localfleet.Fleet
	dir   string
	db    string
	run   *runProc
	runs  int
}

// newEnv gives a test clean servers (every link up, every server running
// with no instances) and a new database.
func newEnv(t *testing.T) *env {
	t.Helper()
	f := sharedFleet(t)
	var wg sync.WaitGroup
	errs := make([]error, len(f.Members))
	for i, m := range f.Members {
		wg.Add(1)
		go func(i int, m *localfleet.Member) {
			defer wg.Done()
			_ = m.Host.SetLink(true)
			_ = m.Ten.Signal(syscall.SIGCONT)
			// A restarted tenement kills whatever its last run left.
			errs[i] = m.Ten.Restart(context.Background())
		}(i, m)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	e := &env{t: t, fleet: f, dir: dir, db: filepath.Join(dir, "slum.db")}
	t.Cleanup(func() {
		e.stopRun(syscall.SIGTERM)
		if t.Failed() {
			for i := 1; i <= e.runs; i++ {
				b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("run-%d.log", i)))
				t.Logf("slum run log %d (tail):\n%s", i, tail(string(b), 60))
			}
		}
	})
	return e
}

func (e *env) slum(args ...string) string {
	e.t.Helper()
	out, err := e.try(args...)
	if err != nil {
		e.t.Fatalf("slum %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e *env) try(args ...string) (string, error) {
	cmd := exec.Command(slumBin, append([]string{"--db", e.db}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// startRun starts the controller as users do, logging to a file.
func (e *env) startRun(extra ...string) {
	e.t.Helper()
	e.runs++
	e.run = startRunProc(e.t, filepath.Join(e.dir, fmt.Sprintf("run-%d.log", e.runs)), nil,
		append([]string{"--db", e.db, "run", "--metrics-addr", "", "--log-level", "debug", "--backoff-max", "2s"}, extra...)...)
}

func (e *env) stopRun(sig syscall.Signal) *os.ProcessState {
	if e.run == nil {
		return nil
	}
	st := e.run.stop(sig)
	e.run = nil
	return st
}

// runProc is a started slum process, logging to a file.
type runProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startRunProc starts slum with args (and env added to this process's),
// its output in the file log.
func startRunProc(t testing.TB, log string, env []string, args ...string) *runProc {
	t.Helper()
	logf, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(slumBin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &runProc{cmd: cmd, log: log, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p
}

// stop sends sig and waits for the process, killing it after 15 s.
func (p *runProc) stop(sig syscall.Signal) *os.ProcessState {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return p.cmd.ProcessState
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
	names := []string{}
	for _, in := range list {
		names = append(names, in.Name)
	}
	sort.Strings(names)
	return names, nil
}

// converge waits until every listed server runs exactly want.
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

// fleetFile writes a fleet file of the three servers and the tenants.
func (e *env) fleetFile(name, tenants string) string {
	e.t.Helper()
	var b strings.Builder
	b.WriteString("version: 1\nservers:\n")
	for _, m := range e.fleet.Members {
		fmt.Fprintf(&b, "  - {id: %s, url: '%s', domain: %s, capacity_mb: 4096, token_file: '%s'}\n", m.ID, m.URL, m.Domain, m.TokenFile)
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

// store opens the database read-only, for what the CLI shows as a table.
func (e *env) store() *store.Store {
	e.t.Helper()
	st, err := sqlite.Open(context.Background(), e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	return st
}

func figure(t *testing.T, what string, d time.Duration) {
	t.Logf("FIGURE %s: %.2fs", what, d.Seconds())
	fmt.Printf("e2e figure: %-60s %6.2fs\n", what, d.Seconds())
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func eventually(t *testing.T, limit time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

const base = `  - {id: alice, domain: alice.example.com, instances: [{id: prod, process: api, server: s1}, {id: backup, process: api, server: s2}]}
  - {id: bob, domain: bob.example.com, instances: [{id: prod, process: api, server: s2}]}
  - {id: carol, domain: carol.example.com, instances: [{id: prod, process: api, server: s3}]}
`

func TestConvergeAndChange(t *testing.T) {
	e := newEnv(t)
	e.slum("apply", "-f", e.fleetFile("fleet.yaml", base))
	e.startRun()
	took := e.converge(map[string][]string{
		"s1": {"api:alice--prod"}, "s2": {"api:alice--backup", "api:bob--prod"}, "s3": {"api:carol--prod"},
	}, 60*time.Second)
	figure(t, "converge from empty (4 instances, 3 servers)", took)
	eventually(t, 20*time.Second, "alice's app through tenement", func() bool {
		who, err := e.appAnswers("s1", "api", "alice--prod")
		return err == nil && who == "alice--prod"
	})
	// Each tenant keeps its own SQLite file on its server.
	for _, c := range []struct{ server, id string }{{"s1", "alice--prod"}, {"s2", "alice--backup"}, {"s2", "bob--prod"}, {"s3", "carol--prod"}} {
		if _, err := os.Stat(filepath.Join(e.member(c.server).Ten.Data, "tenants", c.id, "app.db")); err != nil {
			t.Errorf("%s's data on %s: %v", c.id, c.server, err)
		}
	}

	e.slum("tenant", "add", "dave", "--domain", "dave.example.com", "--process", "api", "--server", "s3")
	e.slum("tenant", "move", "bob", "--to", "s1")
	e.slum("tenant", "remove", "carol")
	took = e.converge(map[string][]string{
		"s1": {"api:alice--prod", "api:bob--prod"}, "s2": {"api:alice--backup"}, "s3": {"api:dave--prod"},
	}, 60*time.Second)
	figure(t, "add + move + remove", took)

	// A restarted tenement server has no instances. Refusing connections
	// for a moment, it may also be declared dead: its instances then fail
	// over. Either way each runs again, exactly once.
	if err := e.member("s2").Ten.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, 60*time.Second, "alice:backup runs again, once", func() bool {
		n := 0
		for _, id := range []string{"s1", "s2", "s3"} {
			names, _ := e.running(id)
			if slices.Contains(names, "api:alice--backup") {
				n++
			}
		}
		return n == 1
	})
	figure(t, "alice:backup back after a tenement restart", took)

	if st := e.stopRun(syscall.SIGTERM); st == nil || !st.Success() {
		t.Fatalf("slum run after SIGTERM: %v", st)
	}
}

func TestControllerKilledMidConvergence(t *testing.T) {
	e := newEnv(t)
	var tenants strings.Builder
	want := map[string][]string{"s1": {}, "s2": {}, "s3": {}}
	for i := 0; i < 24; i++ {
		s := fmt.Sprintf("s%d", i%3+1)
		fmt.Fprintf(&tenants, "  - {id: bulk%d, domain: bulk%d.example.com, instances: [{id: prod, process: api, server: %s}]}\n", i, i, s)
		want[s] = append(want[s], fmt.Sprintf("api:bulk%d--prod", i))
	}
	e.slum("apply", "-f", e.fleetFile("bulk.yaml", tenants.String()))
	// One call at a time per server, so the kill lands mid-way.
	e.startRun("--per-server", "1")
	killedWith := 0
	deadline := time.Now().Add(30 * time.Second)
	for killedWith == 0 && time.Now().Before(deadline) {
		got, _ := e.running("s1")
		if len(got) > 0 {
			killedWith = len(got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.stopRun(syscall.SIGKILL)
	if killedWith == 0 || killedWith >= len(want["s1"]) {
		t.Fatalf("the kill did not land mid-convergence (s1 ran %d)", killedWith)
	}
	e.startRun()
	took := e.converge(want, 90*time.Second)
	figure(t, "converge after SIGKILL and restart (24 instances)", took)
	// Nothing lost or doubled: the ledger holds exactly what runs.
	ps, err := e.store().ListPlacements(context.Background())
	if err != nil || len(ps) != 24 {
		t.Fatalf("ledger after the restart: %d entries (%v)", len(ps), err)
	}
}

// Tenants added and removed in quick succession leave nothing behind on
// real servers: no copy, no unmanaged instance, no ledger entry.
func TestQuickAddAndRemoveLeavesNothing(t *testing.T) {
	e := newEnv(t)
	e.slum("apply", "-f", e.fleetFile("fleet.yaml", "  - {id: keep, domain: keep.example.com, instances: [{id: prod, process: api, server: s1}]}\n"))
	e.startRun()
	e.converge(map[string][]string{"s1": {"api:keep--prod"}}, 60*time.Second)
	st := e.store()
	ctx := context.Background()
	start := time.Now()
	for round := 0; round < 20; round++ {
		var tenants strings.Builder
		tenants.WriteString("  - {id: keep, domain: keep.example.com, instances: [{id: prod, process: api, server: s1}]}\n")
		for i := 0; i < 30; i++ {
			fmt.Fprintf(&tenants, "  - {id: r%dt%d, domain: r%dt%d.example.com, instances: [{id: prod, process: api}]}\n", round, i, round, i)
		}
		e.slum("apply", "-f", e.fleetFile("round.yaml", tenants.String()))
		time.Sleep(time.Duration(round%4) * 400 * time.Millisecond)
		for i := 0; i < 30; i++ {
			if err := st.RemoveTenant(ctx, fmt.Sprintf("r%dt%d", round, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	took := e.converge(map[string][]string{"s1": {"api:keep--prod"}, "s2": {}, "s3": {}}, 120*time.Second)
	figure(t, "20 rounds of add-30/remove-30: all gone", time.Since(start))
	_ = took
	eventually(t, 10*time.Second, "the ledger and status settle", func() bool {
		ps, _ := st.ListPlacements(ctx)
		sts, _ := st.ListServerStatus(ctx)
		unmanaged := int64(0)
		for _, s := range sts {
			unmanaged += s.Unmanaged
		}
		return len(ps) == 1 && unmanaged == 0
	})
	evs, _ := st.RecentEvents(ctx, 10000)
	for _, ev := range evs {
		if ev.Reason == slum.ReasonUnmanaged {
			t.Fatalf("an unmanaged copy was seen: %v", ev)
		}
	}
}

func TestWrongTokenLocksNobodyOut(t *testing.T) {
	e := newEnv(t)
	e.slum("apply", "-f", e.fleetFile("fleet.yaml", base))
	e.startRun()
	e.converge(map[string][]string{"s3": {"api:carol--prod"}}, 60*time.Second)
	bad := filepath.Join(e.dir, "bad-token")
	if err := os.WriteFile(bad, []byte("not-the-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.slum("server", "update", "s3", "--token-file", bad)
	st := e.store()
	eventually(t, 20*time.Second, "s3 unauthorized", func() bool {
		sts, _ := st.ListServerStatus(context.Background())
		for _, s := range sts {
			if s.ServerID == "s3" && s.Health == slum.HealthUnauthorized {
				return true
			}
		}
		return false
	})
	// Polls go on, but the bad token is not resent: the server never locks
	// its other clients out (tenement does after 10 bad tokens).
	time.Sleep(6 * time.Second)
	if _, err := e.running("s3"); err != nil {
		t.Fatalf("another client of s3 after slum's bad token: %v", err)
	}
	// Nothing moved off the server: it is alive, only the token is wrong.
	if in, _ := st.GetInstance(context.Background(), "carol:prod"); in.ServerID != "s3" {
		t.Fatalf("carol:prod moved off an unauthorized server: %+v", in)
	}
	e.slum("server", "update", "s3", "--token-file", e.member("s3").TokenFile)
	eventually(t, 20*time.Second, "s3 online again", func() bool {
		sts, _ := st.ListServerStatus(context.Background())
		for _, s := range sts {
			if s.ServerID == "s3" && s.Health == slum.HealthOnline {
				return true
			}
		}
		return false
	})
}
