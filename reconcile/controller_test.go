package reconcile

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/observed/sim"
)

type fixture struct {
	t     testing.TB
	ctx   context.Context
	path  string
	store *desired.Store
	sims  map[string]*sim.Server
	ctrl  *Controller
	cfg   Config
}

func testConfig() Config {
	return Config{PollInterval: time.Hour, PollTimeout: 500 * time.Millisecond, PollWait: 300 * time.Millisecond,
		ActionTimeout: 500 * time.Millisecond, Backoff: BackoffPolicy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		Health: HealthPolicy{SuspectAfter: 2, OfflineAfter: time.Second}, MaxStopFraction: 0.5, MaxStopFloor: 3}
}

func newFixture(t testing.TB, servers int, cfg Config) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	path := filepath.Join(t.TempDir(), "slum.db")
	st, err := desired.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, ctx: ctx, path: path, store: st, sims: map[string]*sim.Server{}, cfg: cfg}
	for i := 1; i <= servers; i++ {
		id := fmt.Sprintf("s%d", i)
		s := sim.New(sim.Config{Token: "tok-" + id, Processes: map[string]sim.Process{"api": {}, "idle": {IdleTimeout: time.Hour}}})
		url, err := s.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		f.sims[id] = s
		if _, err := st.AddServer(ctx, desired.Server{ID: id, URL: url, CapacityMB: 1 << 30, Token: "tok-" + id}); err != nil {
			t.Fatal(err)
		}
	}
	f.ctrl = f.newController()
	return f
}

func (f *fixture) newController() *Controller {
	return New(f.store, HTTPClientFactory(f.cfg.ActionTimeout), f.cfg, nil, nil)
}

func (f *fixture) tenant(id string, instances ...desired.InstanceSpec) {
	f.t.Helper()
	if _, _, err := f.store.AddTenant(f.ctx, desired.Tenant{ID: id, Domain: id + ".example.com"}, instances...); err != nil {
		f.t.Fatal(err)
	}
}

func spec(id, process, server string) desired.InstanceSpec {
	return desired.InstanceSpec{ID: id, Process: process, ServerID: server, MemoryMB: 1}
}

// pass runs one pass and waits for its actions.
func (f *fixture) pass() *PassResult {
	f.t.Helper()
	res, err := f.ctrl.Pass(f.ctx, true)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.ctrl.WaitIdle(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return res
}

// converge runs passes until one has nothing to do.
func (f *fixture) converge() int {
	f.t.Helper()
	for i := 1; i <= 20; i++ {
		res := f.pass()
		if len(res.Spawns)+len(res.Stops) == 0 {
			return i
		}
		time.Sleep(10 * time.Millisecond) // let backoffs run out
	}
	f.t.Fatal("no convergence in 20 passes")
	return 0
}

func (f *fixture) running(server string) []string { return f.sims[server].Names() }

func (f *fixture) status(key string) desired.InstanceStatus {
	f.t.Helper()
	st, err := f.store.InstanceStatus(f.ctx, key)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *fixture) events(reason string) []desired.Event {
	evs, err := f.store.RecentEvents(f.ctx, 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []desired.Event
	for _, e := range evs {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

func TestConvergeFromEmpty(t *testing.T) {
	f := newFixture(t, 2, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"), spec("backup", "api", "s2"))
	f.tenant("bob", spec("prod", "api", "s1"))
	f.tenant("carol", desired.InstanceSpec{ID: "prod", Process: "idle", ServerID: "s2", Mode: desired.ModeOnDemand, MemoryMB: 1})

	f.converge()
	if got := f.running("s1"); !slices.Equal(got, []string{"api:alice--prod", "api:bob--prod"}) {
		t.Fatalf("s1 runs %v", got)
	}
	if got := f.running("s2"); !slices.Equal(got, []string{"api:alice--backup"}) {
		t.Fatalf("s2 runs %v (on-demand carol must not be spawned)", got)
	}
	st := f.status("alice:prod")
	if st.Phase != PhaseRunning || st.Health != "healthy" || st.ObservedGeneration != 1 {
		t.Fatalf("alice:prod status %+v", st)
	}
	if st := f.status("carol:prod"); st.Phase != PhaseIdle {
		t.Fatalf("carol:prod status %+v", st)
	}
	// A converged fleet: a pass does nothing, and spawns nothing twice.
	spawns := f.sims["s1"].Calls("spawn")
	res := f.pass()
	if len(res.Spawns)+len(res.Stops) != 0 || f.sims["s1"].Calls("spawn") != spawns {
		t.Fatalf("converged pass acted: %+v", res)
	}
	if lists := f.sims["s1"].Calls("list"); lists < 2 {
		t.Fatalf("server polled %d times", lists)
	}
	if evs := f.events("Spawned"); len(evs) != 3 {
		t.Fatalf("spawn events: %v", evs)
	}
}

func TestRemovedServerIsForgotten(t *testing.T) {
	f := newFixture(t, 2, testConfig())
	f.tenant("alice", spec("prod", "api", "s2"))
	f.converge()
	if err := f.store.RemoveTenant(f.ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	f.converge() // stops alice:prod, clearing the ledger
	if err := f.store.RemoveServer(f.ctx, "s2", false); err != nil {
		t.Fatalf("remove s2 once its copies are stopped: %v", err)
	}
	f.pass()
	f.ctrl.q.mu.Lock()
	_, queued := f.ctrl.q.servers["s2"]
	f.ctrl.q.mu.Unlock()
	f.ctrl.mu.Lock()
	_, tracked := f.ctrl.servers["s2"]
	f.ctrl.mu.Unlock()
	if queued || tracked {
		t.Fatalf("removed server still tracked (queue %v, servers %v)", queued, tracked)
	}
}

func TestStopsOnlyWhatSlumPlaced(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"))
	f.sims["s1"].Put("api", "bob--prod") // slum's naming, but not slum's
	f.sims["s1"].Put("api", "hand-made") // not slum's naming at all
	f.sims["s1"].Put("web", "x.y")       // a name slum could never make
	f.converge()
	if got := f.running("s1"); !slices.Equal(got, []string{"api:alice--prod", "api:bob--prod", "api:hand-made", "web:x.y"}) {
		t.Fatalf("s1 runs %v", got)
	}
	res := f.pass()
	if res.Unmanaged != 3 {
		t.Fatalf("unmanaged %d, want 3", res.Unmanaged)
	}
	if len(f.events("Unmanaged")) != 3 {
		t.Fatalf("unmanaged events: %v", f.events("Unmanaged"))
	}
	// Removing a tenant stops the copy slum placed.
	if err := f.store.RemoveTenant(f.ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	f.converge()
	if got := f.running("s1"); slices.Contains(got, "api:alice--prod") || len(got) != 3 {
		t.Fatalf("after removing alice s1 runs %v", got)
	}
	ps, _ := f.store.ListPlacements(f.ctx)
	if len(ps) != 0 {
		t.Fatalf("ledger after the stop: %v", ps)
	}
	if len(f.events("Stopped")) != 1 {
		t.Fatalf("stopped events: %v", f.events("Stopped"))
	}
}

func TestMassStopGuard(t *testing.T) {
	f := newFixture(t, 2, testConfig())
	for i := 0; i < 10; i++ {
		f.tenant(fmt.Sprintf("t%d", i), spec("prod", "api", []string{"s1", "s2"}[i%2]))
	}
	f.converge()
	// An emptied database: every copy would go.
	for i := 0; i < 10; i++ {
		if err := f.store.RemoveTenant(f.ctx, fmt.Sprintf("t%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		res := f.pass()
		if !res.Refused || len(res.Stops) != 10 {
			t.Fatalf("pass %d: refused=%v stops=%d", i, res.Refused, len(res.Stops))
		}
	}
	if n := len(f.running("s1")) + len(f.running("s2")); n != 10 {
		t.Fatalf("%d instances left, want all 10", n)
	}
	if evs := f.events("MassStopRefused"); len(evs) != 1 || !strings.Contains(evs[0].Message, "refused to stop 10 of the 10") {
		t.Fatalf("refusal events: %v", evs)
	}
	// Stops within the allowance go through: a permissive controller
	// stops them all.
	f.cfg.MaxStopFraction = 1
	f.ctrl = f.newController()
	f.converge()
	if n := len(f.running("s1")) + len(f.running("s2")); n != 0 {
		t.Fatalf("%d instances left after an allowed stop", n)
	}
}

func TestCrashAndRestartConverges(t *testing.T) {
	cfg := testConfig()
	f := newFixture(t, 3, cfg)
	for i := 0; i < 30; i++ {
		f.tenant(fmt.Sprintf("t%d", i), spec("prod", "api", fmt.Sprintf("s%d", i%3+1)))
	}
	for _, s := range f.sims {
		s.SetLatency(20 * time.Millisecond)
	}
	// Crash mid-convergence: the first controller's context ends while
	// spawns are in flight, and it never writes its final state.
	ctx, crash := context.WithCancel(f.ctx)
	first := f.newController()
	if _, err := first.Pass(ctx, true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	crash()
	// One server restarts too, losing what it ran.
	f.sims["s2"].Crash()
	for _, s := range f.sims {
		s.SetLatency(0)
	}
	f.ctrl = f.newController()
	f.converge()
	total := 0
	for id, s := range f.sims {
		names := s.Names()
		total += len(names)
		for _, n := range names {
			if !strings.HasPrefix(n, "api:t") {
				t.Fatalf("%s runs %s", id, n)
			}
		}
	}
	if total != 30 {
		t.Fatalf("%d instances run after crash and restart, want 30", total)
	}
	ps, _ := f.store.ListPlacements(f.ctx)
	if len(ps) != 30 {
		t.Fatalf("ledger has %d entries, want 30", len(ps))
	}
	// No stop was ever sent: nothing was duplicated, so nothing needed it.
	for id, s := range f.sims {
		if n := s.Calls("stop"); n != 0 {
			t.Fatalf("%s got %d stops", id, n)
		}
	}
}

func TestParkedUntilDesiredChanges(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	f.tenant("alice", spec("prod", "nope", "s1")) // s1 has no such service
	for i := 0; i < 3; i++ {
		f.pass()
		time.Sleep(60 * time.Millisecond) // past any backoff
	}
	if n := f.sims["s1"].Calls("spawn"); n != 1 {
		t.Fatalf("a permanent failure was tried %d times", n)
	}
	st := f.status("alice:prod")
	if st.Phase != PhaseFailed || !strings.Contains(st.LastError, "Unknown process") || st.Attempts != 1 {
		t.Fatalf("status %+v", st)
	}
	if len(f.events("Parked")) != 1 {
		t.Fatalf("parked events %v", f.events("Parked"))
	}
	// A new generation (stop and start again) gets a new try.
	if _, err := f.store.StopInstance(f.ctx, "alice:prod"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.SpawnInstance(f.ctx, desired.InstanceSpec{TenantID: "alice", ID: "prod", Process: "nope"}); err != nil {
		t.Fatal(err)
	}
	f.pass()
	if n := f.sims["s1"].Calls("spawn"); n != 2 {
		t.Fatalf("after a desired change: %d spawns", n)
	}
}

func TestMoveIsMakeBeforeBreak(t *testing.T) {
	f := newFixture(t, 2, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"))
	f.converge()
	if _, err := f.store.MoveInstance(f.ctx, "alice:prod", "s2"); err != nil {
		t.Fatal(err)
	}
	// s2 is hung: the new copy cannot start, so the old one must stay.
	f.sims["s2"].SetHang(true)
	for i := 0; i < 3; i++ {
		res := f.pass()
		if len(res.Stops) != 0 {
			t.Fatalf("stopped the only copy while the new one was not running: %+v", res)
		}
	}
	if got := f.running("s1"); !slices.Equal(got, []string{"api:alice--prod"}) {
		t.Fatalf("s1 runs %v", got)
	}
	f.sims["s2"].SetHang(false)
	time.Sleep(cfgWait(f.cfg))
	f.converge()
	if len(f.running("s1")) != 0 || !slices.Equal(f.running("s2"), []string{"api:alice--prod"}) {
		t.Fatalf("after the move: s1 %v s2 %v", f.running("s1"), f.running("s2"))
	}
}

func cfgWait(c Config) time.Duration { return c.PollTimeout + 100*time.Millisecond }

func TestFaultsAreIsolated(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  func(f *fixture)
		health Health
		errHas string
	}{
		{"down", func(f *fixture) { f.sims["s1"].SetDown(true) }, HealthOffline, "connection refused"},
		{"hung", func(f *fixture) { f.sims["s1"].SetHang(true) }, HealthOffline, "timed out"},
		{"5xx", func(f *fixture) { f.sims["s1"].SetErrorRate(1) }, HealthOffline, "simulated failure"},
		{"malformed JSON", func(f *fixture) { f.sims["s1"].SetMalformed(true) }, HealthOffline, "malformed"},
		{"bad token", func(f *fixture) {
			tok := "wrong"
			if _, err := f.store.UpdateServer(f.ctx, "s1", desired.ServerUpdate{Token: &tok}); err != nil {
				f.t.Fatal(err)
			}
		}, HealthUnauthorized, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 2, testConfig())
			f.tenant("alice", spec("prod", "api", "s1"))
			f.tenant("bob", spec("prod", "api", "s2"))
			f.converge()
			tc.fault(f)
			f.tenant("carol", spec("prod", "api", "s2"))
			f.tenant("dave", spec("prod", "api", "s1"))
			start := time.Now()
			for i := 0; i < 3; i++ {
				f.pass()
				time.Sleep(cfgWait(f.cfg) / 3)
			}
			// The healthy server converged regardless.
			if got := f.running("s2"); !slices.Equal(got, []string{"api:bob--prod", "api:carol--prod"}) {
				t.Fatalf("s2 runs %v", got)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Fatalf("the faulty server held things up: %v", took)
			}
			sts, _ := f.store.ListServerStatus(f.ctx)
			var s1 desired.ServerStatus
			for _, s := range sts {
				if s.ServerID == "s1" {
					s1 = s
				}
			}
			// Three missed polls over more than a second: suspect, and
			// offline once OfflineAfter (1s here) has passed.
			ok := Health(s1.Health) == tc.health || tc.health == HealthOffline && Health(s1.Health) == HealthSuspect
			if !ok || !strings.Contains(s1.LastError, tc.errHas) {
				t.Fatalf("s1 status %+v, want %s with %q", s1, tc.health, tc.errHas)
			}
			if st := f.status("dave:prod"); st.Phase != PhaseUnknown {
				t.Fatalf("dave:prod on the faulty server: %+v", st)
			}
			if tc.name == "bad token" && f.sims["s1"].Calls("list") > 2 {
				// Calls counts authenticated calls only; a bad token was
				// sent once, never in a loop.
				t.Fatalf("lists after the bad token: %d", f.sims["s1"].Calls("list"))
			}
		})
	}
}

func TestBadTokenDoesNotLockOthersOut(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"))
	f.converge()
	tok := "wrong"
	if _, err := f.store.UpdateServer(f.ctx, "s1", desired.ServerUpdate{Token: &tok}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 15; i++ {
		f.pass()
	}
	// tenement locks everyone out after 10 bad tokens; slum sent one.
	good := f.sims["s1"]
	before := good.Calls("list")
	c := HTTPClientFactory(time.Second)
	cl, _ := c(good.URL(), "tok-s1")
	if _, err := cl.List(f.ctx); err != nil {
		t.Fatalf("another client of the server after slum's bad token: %v", err)
	}
	if good.Calls("list") != before+1 {
		t.Fatal("list not counted")
	}
	// Fixing the token heals the server.
	tok = "tok-s1"
	if _, err := f.store.UpdateServer(f.ctx, "s1", desired.ServerUpdate{Token: &tok}); err != nil {
		t.Fatal(err)
	}
	f.pass()
	if st := f.status("alice:prod"); st.Phase != PhaseRunning {
		t.Fatalf("after fixing the token: %+v", st)
	}
}

func TestServerRestartIsRespawned(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"))
	f.tenant("bob", spec("prod", "api", "s1"))
	f.converge()
	f.sims["s1"].Crash()
	f.converge()
	if got := f.running("s1"); len(got) != 2 {
		t.Fatalf("after a server restart s1 runs %v", got)
	}
}

func TestRetriesTransientFailures(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"))
	f.sims["s1"].FailNext("spawn", 2)
	f.pass()
	if st := f.status("alice:prod"); st.Phase != PhasePending || st.Attempts != 1 || !strings.Contains(st.LastError, "simulated failure") {
		t.Fatalf("after one failure: %+v", st)
	}
	time.Sleep(60 * time.Millisecond)
	f.converge()
	if n := f.sims["s1"].Calls("spawn"); n != 3 {
		t.Fatalf("%d spawn calls, want 3 (two failures, one success)", n)
	}
	if st := f.status("alice:prod"); st.Phase != PhaseRunning || st.Attempts != 0 || st.LastError != "" {
		t.Fatalf("after recovery: %+v", st)
	}
	if len(f.events("Retrying")) != 1 {
		t.Fatal("the failure left no event")
	}
}

func TestRunReactsToCommitsAndStopsCleanly(t *testing.T) {
	cfg := testConfig()
	cfg.PollInterval = time.Minute // only a commit can explain a quick reaction
	f := newFixture(t, 1, cfg)
	ctx, stop := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- f.ctrl.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for !f.ctrl.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Another process's commit: a second connection to the same file.
	other, err := desired.Open(f.ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, _, err := other.AddTenant(f.ctx, desired.Tenant{ID: "alice", Domain: "alice.example.com"}, spec("prod", "api", "s1")); err != nil {
		t.Fatal(err)
	}
	for len(f.running("s1")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the controller did not react to the commit before its resync")
		}
		time.Sleep(2 * time.Millisecond)
	}
	// SIGTERM with a call in flight: it finishes, then Run returns.
	f.sims["s1"].SetLatency(200 * time.Millisecond)
	if _, err := other.SpawnInstance(f.ctx, desired.InstanceSpec{TenantID: "alice", ID: "worker", Process: "idle", ServerID: "s1"}); err != nil {
		t.Fatal(err)
	}
	for f.sims["s1"].Calls("spawn") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second spawn never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	stop() // the spawn is in flight: it arrived and waits out its latency
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got := f.running("s1"); !slices.Contains(got, "idle:alice--worker") {
		t.Fatalf("the in-flight spawn did not finish: %v", got)
	}
}

func TestDryRunActsOnNothing(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"))
	res, err := f.ctrl.Pass(f.ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Spawns) != 1 || res.Spawns[0].Name != "api:alice--prod" {
		t.Fatalf("plan %+v", res)
	}
	time.Sleep(50 * time.Millisecond)
	if f.sims["s1"].Calls("spawn") != 0 {
		t.Fatal("a dry run spawned")
	}
	if ps, _ := f.store.ListPlacements(f.ctx); len(ps) != 0 {
		t.Fatal("a dry run wrote the ledger")
	}
}
