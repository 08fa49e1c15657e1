package guard

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slum-fleet/slum/replica/lease"
)

// litestreamPID is the pid of the copy's running `litestream replicate`
// (0: none), read from the guard's log and checked alive.
func (c *tenantCopy) litestreamPID() int {
	m := regexp.MustCompile(`litestream: (?:replicating \S+|restarted) \(pid (\d+)`).FindAllStringSubmatch(c.log.String(), -1)
	if len(m) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(m[len(m)-1][1])
	if !pidAlive(pid) || isZombie(pid) {
		return 0
	}
	return pid
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

func TestCleanStopReleasesAndTheNextCopyTakesOverAtOnceWithEveryWrite(t *testing.T) {
	w := newWorld(t)
	a := w.newCopy("prod", w.srv.Endpoint)
	a.startInProcess(lease.DefaultTiming)
	a.waitServing(20 * time.Second)
	var ids []int
	for i := range 20 {
		ids = append(ids, a.mustWrite("x"+strconv.Itoa(i)))
	}
	stopped := time.Now()
	a.cancel() // as SIGTERM does
	if e := a.waitExit(10 * time.Second); e.Code != ExitStopped {
		t.Fatalf("exit %+v, want %d", e, ExitStopped)
	}
	released := time.Now()
	if o, err := w.watcher().Observe(context.Background()); err != nil || o.Record.State != lease.StateReleased {
		t.Fatalf("after a clean stop the lease is %+v (%v), want released", o.Record, err)
	}
	b := w.newCopy("backup", w.srv.Endpoint)
	b.startInProcess(lease.DefaultTiming)
	served := b.waitServing(20 * time.Second)
	has := b.ids()
	for _, id := range ids {
		if !has[id] {
			t.Fatalf("write %d, acknowledged before the clean stop, is not in the new copy: a clean move must lose nothing", id)
		}
	}
	if strings.Contains(b.log.String(), "waiting for it to stay unchanged") {
		t.Fatalf("the next copy waited for a released lease; its log:\n%s", b.log.String())
	}
	t.Logf("FIGURE clean stop → the next copy serves with every write: %s; of which release → next copy serving %s (%s)",
		served.Sub(stopped).Round(time.Millisecond), served.Sub(released).Round(time.Millisecond), restoreTime(b))
}

func TestRacingGuardsOnlyOneServes(t *testing.T) {
	w := newWorld(t)
	a, b := w.newCopy("prod", w.srv.Endpoint), w.newCopy("backup", w.srv.Endpoint)
	a.startInProcess(lease.DefaultTiming)
	b.startInProcess(lease.DefaultTiming)
	ok, _ := waitFor(20*time.Second, func() bool { return a.serving() || b.serving() })
	if !ok {
		t.Fatal("neither copy serves")
	}
	for range 10 { // over a second and a half: the other never starts
		if a.serving() == b.serving() {
			t.Fatalf("both copies serve, or neither: a %v, b %v", a.serving(), b.serving())
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func TestRevokedHolderStopsItsApp(t *testing.T) {
	w := newWorld(t)
	a := w.newCopy("prod", w.srv.Endpoint)
	a.startInProcess(lease.DefaultTiming)
	a.waitServing(20 * time.Second)
	wt := w.watcher()
	var err error
	for range 5 { // the holder renews under our feet; retry on a changed lease
		if _, err = wt.Observe(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err = wt.Revoke(context.Background(), "test", "moving alice"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	e := a.waitExit(10 * time.Second)
	if e.Code != ExitFenced || !strings.Contains(e.Reason, "revoked") {
		t.Fatalf("exit %+v, want fenced (revoked)", e)
	}
	if a.serving() {
		t.Fatal("the revoked copy's app still serves")
	}
	if a.litestreamPID() != 0 {
		t.Fatal("the revoked copy's litestream still runs")
	}
	stopped := time.Since(revoked)
	// Stopped, it says so in the lease: the next copy takes it at once,
	// not a TTL after the revocation.
	if o, err := w.watcher().Observe(context.Background()); err != nil || o.Record.State != lease.StateReleased || o.Record.By != "" {
		t.Fatalf("after the revoked copy stopped the lease is %+v (%v), want released by it; its log:\n%s", o.Record, err, a.log.String())
	}
	b := w.newCopy("backup", w.srv.Endpoint)
	b.startInProcess(lease.DefaultTiming)
	served := b.waitServing(20 * time.Second)
	if strings.Contains(b.log.String(), "waiting for it to stay unchanged") {
		t.Fatalf("the next copy waited for a lease its revoked holder had released; its log:\n%s", b.log.String())
	}
	t.Logf("FIGURE revoke → the holder's app stopped: %s; the next copy serving %s after the revocation",
		stopped.Round(time.Millisecond), served.Sub(revoked).Round(time.Millisecond))
}

// appPID is the pid of the copy's app as its guard logged it.
func (c *tenantCopy) appPID() int {
	m := regexp.MustCompile(`app: started \S+ \(pid (\d+)`).FindAllStringSubmatch(c.log.String(), -1)
	if len(m) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(m[len(m)-1][1])
	return pid
}

// processState is a process's state letter in /proc ("T": stopped).
func processState(pid int) string {
	st, _, _ := procStat(pid)
	return st
}

// quick is a client that gives up fast: a frozen app answers nothing.
var quick = &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}

// acked reports whether the copy acknowledged one write within quick's
// timeout.
func (c *tenantCopy) acked(body string) bool {
	resp, err := quick.Post(c.url("/writes"), "text/plain", strings.NewReader(body))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var r struct{ ID int }
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&r) == nil && r.ID != 0
}

func TestCutOffHolderFreezesItsAppByTheDeadlineAndResumes(t *testing.T) {
	w := newWorld(t)
	px := w.srv.Proxy(t)
	a := w.newCopy("prod", px.Endpoint)
	a.startInProcess(lease.DefaultTiming)
	a.waitServing(20 * time.Second)
	if ok, _ := waitFor(5*time.Second, func() bool { return a.litestreamPID() != 0 }); !ok {
		t.Fatal("litestream never started")
	}
	app := a.appPID()
	cut := time.Now()
	px.Cut()
	ok, took := waitFor(3*time.Second, func() bool { return a.litestreamPID() == 0 && processState(app) == "T" })
	if !ok {
		t.Fatalf("3 s after the store became unreachable: litestream pid %d, app state %q; log:\n%s", a.litestreamPID(), processState(app), a.log.String())
	}
	// the deadline counts from the last renewal sent, which was at most
	// TTL/4 before the cut
	if took > lease.DefaultTiming.RenewDeadline+100*time.Millisecond {
		t.Fatalf("litestream killed and the app frozen %s after the cut, later than the renew deadline %s", took, lease.DefaultTiming.RenewDeadline)
	}
	if a.acked("while frozen") {
		t.Fatal("a copy whose lease may lapse acknowledged a write")
	}
	time.Sleep(300 * time.Millisecond)
	px.Restore() // within the TTL of no one else: the lease is still ours
	if ok, _ := waitFor(5*time.Second, func() bool { return a.litestreamPID() != 0 && a.serving() }); !ok {
		t.Fatalf("the app did not resume and litestream restart once renewals succeeded again; log:\n%s", a.log.String())
	}
	if pid := a.appPID(); pid != app {
		t.Fatalf("the app was restarted (pid %d, was %d), want the same process resumed", pid, app)
	}
	a.mustWrite("after the cut healed")
	t.Logf("FIGURE store cut off → litestream killed and the app frozen after %s (deadline %s after the last renewal); resumed on reconnect (cut %s)",
		took.Round(time.Millisecond), lease.DefaultTiming.RenewDeadline, time.Since(cut).Round(time.Millisecond))
}

// TestStaleCopyNeverReplicatesOverTheNewHolder is the proof test: try to
// make two writers. The holder is cut off from the store and keeps taking
// writes; a second copy takes over and writes; the link comes back. The
// replica must hold the second copy's history only.
func TestStaleCopyNeverReplicatesOverTheNewHolder(t *testing.T) {
	w := newWorld(t)
	px := w.srv.Proxy(t)
	a := w.newCopy("prod", px.Endpoint)
	a.startInProcess(lease.DefaultTiming)
	a.waitServing(20 * time.Second)
	for i := range 5 {
		a.mustWrite("a-before-" + strconv.Itoa(i))
	}
	time.Sleep(1500 * time.Millisecond) // replicated
	px.Cut()
	var stale []string
	for i := range 5 { // until its renew deadline the cut-off copy still acknowledges writes: they are its own
		resp := a.mustWrite("a-after-" + strconv.Itoa(i))
		stale = append(stale, strconv.Itoa(resp))
	}
	b := w.newCopy("backup", w.srv.Endpoint)
	b.startInProcess(lease.DefaultTiming)
	b.waitServing(20 * time.Second)
	var bIDs []int
	for i := range 5 {
		bIDs = append(bIDs, b.mustWrite("b-"+strconv.Itoa(i)))
		// the attempt at a second writer: once b serves, a acknowledges nothing
		if a.acked("a-while-b-serves-" + strconv.Itoa(i)) {
			t.Fatalf("the cut-off copy acknowledged a write while the new holder serves: two writers")
		}
	}
	time.Sleep(1500 * time.Millisecond) // b's writes replicated
	px.Restore()
	e := a.waitExit(10 * time.Second)
	if e.Code != ExitFenced {
		t.Fatalf("the returning stale copy exited %+v, want fenced", e)
	}
	if strings.Contains(a.log.String(), "litestream: restarted") {
		t.Fatalf("the stale copy restarted litestream; its log:\n%s", a.log.String())
	}
	time.Sleep(1500 * time.Millisecond)
	rep := w.replicaIDs()
	for _, id := range bIDs {
		if !rep[id] {
			t.Errorf("the new holder's write %d is not in the replica", id)
		}
	}
	// a's stale writes got ids 6..10, as did b's first ones; the replica's
	// rows with those ids must be b's: check their count matches b's view
	bView := b.ids()
	if len(rep) != len(bView) {
		t.Fatalf("the replica has %d rows, the new holder %d: the stale copy wrote into it", len(rep), len(bView))
	}
	if got := bodies(t, w, rep); strings.Contains(got, "a-after") {
		t.Fatalf("the replica holds the stale copy's writes: %s", got)
	}
	t.Logf("stale copy's own writes (lost by design, never replicated): ids %v", stale)
}

// bodies reads every write's body from a fresh restore of the replica.
func bodies(t *testing.T, w *world, _ map[int]bool) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bodies.db")
	cmd := exec.Command(w.ls, "restore", "-o", out, w.loc(w.srv.Endpoint).String())
	cmd.Env = w.env(0)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, b)
	}
	b, err := exec.Command("python3", "-c", `import sqlite3,sys; print(" ".join(r[0] for r in sqlite3.connect(sys.argv[1]).execute("select body from writes")))`, out).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return string(b)
}

func TestParentDeathStopsTheAppAndReleases(t *testing.T) {
	w := newWorld(t)
	a := w.newCopy("prod", w.srv.Endpoint)
	// a shell in the guard's place of ten: its death orphans the guard
	sh := exec.Command("sh", "-c", `"$@" & echo $! ; wait`, "sh", slumBinary(t), "guard", "--instance", "alice--prod", "--db", a.db,
		"--replica", w.loc(w.srv.Endpoint).String(), "--litestream", w.ls, "--", "python3", appPy)
	sh.Env = w.env(a.port)
	sh.Stderr = a.log
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-sh.Process.Pid, syscall.SIGKILL); sh.Wait() })
	var pid int
	buf := make([]byte, 32)
	n, _ := out.Read(buf)
	pid, _ = strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	a.waitServing(20 * time.Second)
	died := time.Now()
	sh.Process.Kill() // the parent only (not waited for: its stderr stays open in the guard)
	if ok, _ := waitFor(10*time.Second, func() bool { return !pidAlive(pid) || isZombie(pid) }); !ok {
		t.Fatalf("the orphaned guard still runs; log:\n%s", a.log.String())
	}
	if a.serving() {
		t.Fatal("the orphaned copy's app still serves")
	}
	o, err := w.watcher().Observe(context.Background())
	if err != nil || o.Record.State != lease.StateReleased {
		t.Fatalf("after the parent's death the lease is %+v (%v), want released", o.Record, err)
	}
	t.Logf("FIGURE parent killed → orphaned guard stopped its app and released: %s", time.Since(died).Round(time.Millisecond))
}

// restoreTime is the restore as the copy's guard logged it.
func restoreTime(c *tenantCopy) string {
	m := regexp.MustCompile(`database: restored \S+ from the replica in (\S+)`).FindStringSubmatch(c.log.String())
	if m == nil {
		return "no restore"
	}
	return "restore " + m[1]
}

// TestHandoverMovesTheTenantWithEveryWrite is a planned move, make before
// break: the new copy starts and waits; slum asks the old one to hand over;
// it stops cleanly, sends the rest and releases; the new one takes over at
// once with every write.
func TestHandoverMovesTheTenantWithEveryWrite(t *testing.T) {
	w := newWorld(t)
	a, b := w.newCopy("prod", w.srv.Endpoint), w.newCopy("backup", w.srv.Endpoint)
	a.startInProcess(lease.DefaultTiming)
	a.waitServing(20 * time.Second)
	b.startInProcess(lease.DefaultTiming)
	var ids []int
	for i := range 20 {
		ids = append(ids, a.mustWrite("m"+strconv.Itoa(i)))
	}
	wt := w.watcher()
	var err error
	for range 5 {
		if _, err = wt.Observe(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err = wt.RequestHandover(context.Background(), "test", "moving alice"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	asked := time.Now()
	if e := a.waitExit(10 * time.Second); e.Code != ExitStopped || !strings.Contains(e.Reason, "handing the lease over") {
		t.Fatalf("the old copy exited %+v, want a clean stop for the handover", e)
	}
	served := b.waitServing(20 * time.Second)
	has := b.ids()
	for _, id := range ids {
		if !has[id] {
			t.Fatalf("write %d is lost in a planned move", id)
		}
	}
	t.Logf("FIGURE handover asked → the new copy serves with every write: %s (%s)", served.Sub(asked).Round(time.Millisecond), restoreTime(b))
}
