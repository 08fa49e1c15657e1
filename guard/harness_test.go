package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/internal/replicastore"
	"github.com/slum-fleet/slum/litestream"
	"github.com/slum-fleet/slum/replica"
	"github.com/slum-fleet/slum/replica/lease"
)

// The guard's tests run real Litestream, the recipe's app and a real
// replica store (SeaweedFS). Each test has a replica path of its own on
// the one store the test binary shares.

var appPy = func() string { p, _ := filepath.Abs("../examples/replicated/app.py"); return p }()

var slumBuild struct {
	once sync.Once
	path string
	err  error
	dir  string
}

func TestMain(m *testing.M) {
	replicastore.Main(m)
	if slumBuild.dir != "" {
		os.RemoveAll(slumBuild.dir)
	}
}

// slumBinary builds the slum command once (with -race when the tests run
// with it), for the tests that kill a guard process.
func slumBinary(t *testing.T) string {
	t.Helper()
	slumBuild.once.Do(func() {
		slumBuild.dir, slumBuild.err = os.MkdirTemp("", "slum-guard-test")
		if slumBuild.err != nil {
			return
		}
		slumBuild.path = filepath.Join(slumBuild.dir, "slum")
		args := []string{"build", "-o", slumBuild.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "../cmd/slum")...).CombinedOutput()
		if err != nil {
			slumBuild.err = fmt.Errorf("build slum: %v\n%s", err, out)
		}
	})
	if slumBuild.err != nil {
		t.Fatal(slumBuild.err)
	}
	return slumBuild.path
}

// world is one test's store, Litestream and replica path.
type world struct {
	t    *testing.T
	srv  *replicastore.Server
	ls   string
	path string // the replica's path in the bucket
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ls := replicastore.RequireLitestream(t)
	if _, err := exec.LookPath("python3"); err != nil {
		replicastore.Missing(t, "python3", err)
	}
	return &world{t: t, srv: replicastore.Shared(t), ls: ls, path: "tenants/" + strings.ReplaceAll(t.Name(), "/", "-") + "/alice"}
}

func (w *world) loc(endpoint string) replica.Location {
	l, err := replica.ParseLocation(replicastore.URLAt(endpoint, w.path))
	if err != nil {
		w.t.Fatal(err)
	}
	return l
}

// watcher observes the world's lease directly (not through any proxy).
func (w *world) watcher() *lease.Watcher {
	return lease.NewWatcher(w.srv.Store(w.t, w.srv.Endpoint), w.loc(w.srv.Endpoint), clock.Real{})
}

// tenantCopy is one copy of the tenant: a guard over the app, with a data
// directory of its own.
type tenantCopy struct {
	w        *world
	name     string
	db       string
	port     int
	endpoint string
	log      *syncBuffer
	exited   chan *Exit // in-process copies
	cancel   context.CancelFunc
	proc     *exec.Cmd // process copies
}

func (w *world) newCopy(name, endpoint string) *tenantCopy {
	dir := filepath.Join(w.t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.t.Fatal(err)
	}
	return &tenantCopy{w: w, name: name, db: filepath.Join(dir, "app.db"), port: freePort(w.t), endpoint: endpoint, log: &syncBuffer{}}
}

func (w *world) env(port int) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "PORT=") {
			env = append(env, kv)
		}
	}
	return append(append(env, w.srv.Env()...), fmt.Sprintf("PORT=%d", port))
}

// startInProcess runs the guard in this test process (so the race
// detector sees the supervisor).
func (c *tenantCopy) startInProcess(timing lease.Timing) {
	t := c.w.t
	loc := c.w.loc(c.endpoint)
	env := c.w.env(c.port)
	cfg := Config{
		InstanceID: "alice--" + c.name,
		DB:         c.db,
		Replica:    loc,
		Store:      c.w.srv.Store(t, c.endpoint),
		Litestream: litestream.Runner{Bin: c.w.ls, DB: c.db, Replica: loc, Env: env},
		App:        []string{"python3", appPy},
		AppEnv:     litestream.ChildEnv(env, c.db, loc),
		Timing:     timing,
		Grace:      2 * time.Second,
		Log:        c.log,
		Output:     c.log,
		Clock:      clock.Real{},
		ParentPID:  os.Getppid(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.exited = cancel, make(chan *Exit, 1)
	go func() { c.exited <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.exited:
		case <-time.After(15 * time.Second):
			t.Errorf("%s: the guard did not stop", c.name)
		}
		if t.Failed() {
			t.Logf("%s's log:\n%s", c.name, c.log.String())
		}
	})
}

// startProcess runs `slum guard` as a process in a process group of its
// own (as tenement runs an instance), unless parent is set: then parent
// is a shell that starts the guard and whose death the test causes.
func (c *tenantCopy) startProcess(extra ...string) {
	t := c.w.t
	args := append([]string{"guard", "--instance", "alice--" + c.name, "--db", c.db,
		"--replica", replicastore.URLAt(c.endpoint, strings.TrimSuffix(c.w.path, "alice")+"{tenant}"),
		"--litestream", c.w.ls, "--grace", "2s"}, extra...)
	args = append(args, "--", "python3", appPy)
	c.proc = exec.Command(slumBinary(t), args...)
	c.proc.Env = c.w.env(c.port)
	c.proc.Stdout, c.proc.Stderr = c.log, c.log
	c.proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.proc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-c.proc.Process.Pid, syscall.SIGKILL)
		c.proc.Wait()
		if t.Failed() {
			t.Logf("%s's log:\n%s", c.name, c.log.String())
		}
	})
}

func (c *tenantCopy) url(p string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", c.port, p) }

var client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// serving reports whether the copy's app answers its health path.
func (c *tenantCopy) serving() bool {
	resp, err := client.Get(c.url("/health"))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitServing waits until the app answers; it returns when it did.
func (c *tenantCopy) waitServing(limit time.Duration) time.Time {
	c.w.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c.serving() {
			return time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.w.t.Fatalf("%s does not serve after %s; its log:\n%s", c.name, limit, c.log.String())
	return time.Time{}
}

// write stores one write and returns its id once the app acknowledged it.
func (c *tenantCopy) write(body string) (int, error) {
	resp, err := client.Post(c.url("/writes"), "text/plain", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct{ ID int }
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("write: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&r)
	return r.ID, err
}

func (c *tenantCopy) mustWrite(body string) int {
	c.w.t.Helper()
	resp, err := client.Post(c.url("/writes"), "text/plain", strings.NewReader(body))
	if err != nil {
		c.w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ ID int }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.ID == 0 {
		c.w.t.Fatalf("write: %s %v", resp.Status, err)
	}
	return r.ID
}

func (c *tenantCopy) ids() map[int]bool {
	c.w.t.Helper()
	resp, err := client.Get(c.url("/writes"))
	if err != nil {
		c.w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ IDs []int }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		c.w.t.Fatal(err)
	}
	m := map[int]bool{}
	for _, id := range r.IDs {
		m[id] = true
	}
	return m
}

// waitExit waits for an in-process guard to stop.
func (c *tenantCopy) waitExit(limit time.Duration) *Exit {
	c.w.t.Helper()
	select {
	case e := <-c.exited:
		c.exited <- e // for the cleanup
		return e
	case <-time.After(limit):
		c.w.t.Fatalf("%s's guard did not stop within %s; its log:\n%s", c.name, limit, c.log.String())
		return nil
	}
}

// replicaIDs restores the replica into a fresh file and reads its ids.
func (w *world) replicaIDs() map[int]bool {
	w.t.Helper()
	out := filepath.Join(w.t.TempDir(), "check.db")
	cmd := exec.Command(w.ls, "restore", "-if-replica-exists", "-o", out, replicastore.URLAt(w.srv.Endpoint, w.path))
	cmd.Env = litestream.ChildEnv(w.env(0), out, w.loc(w.srv.Endpoint))
	if b, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("restore the replica to check it: %v\n%s", err, b)
	}
	q := exec.Command("python3", "-c", `import sqlite3,sys; print(" ".join(str(r[0]) for r in sqlite3.connect(sys.argv[1]).execute("select id from writes")))`, out)
	b, err := q.CombinedOutput()
	if err != nil {
		w.t.Fatalf("read the restored replica: %v\n%s", err, b)
	}
	m := map[int]bool{}
	for _, f := range strings.Fields(string(b)) {
		var id int
		fmt.Sscan(f, &id)
		m[id] = true
	}
	return m
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a guard's output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond every 10 ms for at most limit; it reports whether
// cond became true and how long that took.
func waitFor(limit time.Duration, cond func() bool) (bool, time.Duration) {
	start := time.Now()
	for time.Since(start) < limit {
		if cond() {
			return true, time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond(), time.Since(start)
}
