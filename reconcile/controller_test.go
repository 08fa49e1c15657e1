package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/db"
	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/observed"
	"github.com/slum-fleet/slum/observed/sim"
	"github.com/slum-fleet/slum/routes"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// fixture is a fleet of in-process simulated servers and a database. The
// controller runs on a fake clock, driven by hand (Sync) or running (Run)
// while the test moves the clock on (until, pass).
type fixture struct {
	t     testing.TB
	ctx   context.Context
	path  string
	store *store.Store
	sims  map[string]*sim.Server
	ctrl  *Controller
	cfg   Config
	clock *fakeclock.Clock
	lease slum.Lease
	acts  actions
	urls  sync.Map // server URL → id
}

// actions logs every spawn and stop the fixture's controllers send, as
// "spawn s1 api:alice--prod", so tests assert the exact list.
type actions struct {
	mu   sync.Mutex
	list []string
}

// take returns the actions sent since the last take.
func (a *actions) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.list
	a.list = nil
	slices.Sort(out) // sent concurrently: their order is not the plan's
	return out
}

func (a *actions) add(kind, server, process, id string) {
	a.mu.Lock()
	a.list = append(a.list, kind+" "+server+" "+process+":"+id)
	a.mu.Unlock()
}

// logged wraps a client of the fixture's server id.
type logged struct {
	Client
	server string
	acts   *actions
}

func (l logged) Spawn(ctx context.Context, process, id string) (observed.SpawnResult, error) {
	l.acts.add("spawn", l.server, process, id)
	return l.Client.Spawn(ctx, process, id)
}

func (l logged) Stop(ctx context.Context, process, id string) error {
	l.acts.add("stop", l.server, process, id)
	return l.Client.Stop(ctx, process, id)
}

// clients makes HTTP clients that log their actions.
func (f *fixture) clients() ClientFactory {
	newClient := HTTPClientFactory(f.cfg.ActionTimeout)
	return func(url, token string) (Client, error) {
		c, err := newClient(url, token)
		if err != nil {
			return nil, err
		}
		if id, ok := f.urls.Load(url); ok {
			return logged{c, id.(string), &f.acts}, nil
		}
		return c, nil
	}
}

func testConfig() Config {
	return Config{PollInterval: time.Hour, PollTimeout: 500 * time.Millisecond, ActionTimeout: 500 * time.Millisecond,
		FlushInterval: 20 * time.Millisecond, RevisionPoll: 10 * time.Millisecond,
		Backoff: BackoffPolicy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}, Guard: Guard{Fraction: 0.5, Floor: 3}}
}

func newFixture(t testing.TB, servers int, cfg Config) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	path := filepath.Join(t.TempDir(), "slum.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, ctx: ctx, path: path, store: st, sims: map[string]*sim.Server{}, cfg: cfg,
		// Ahead of the database's clock, which stamps commits (an instance
		// moved by a failover) in real time: those come before what the
		// controller sees next, however slowly a loaded machine runs the
		// test's steps.
		clock: fakeclock.New(time.Now().Add(time.Minute))}
	f.cfg.Clock = f.clock
	set := slum.DefaultSettings()
	set.ProbeTimeout = 300 * time.Millisecond
	if _, err := st.SetSettings(ctx, set); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= servers; i++ {
		f.addServer(fmt.Sprintf("s%d", i), "")
	}
	if f.lease, err = st.AcquireLease(ctx, slum.ControllerLease, "test/1/a", "", time.Hour); err != nil {
		t.Fatal(err)
	}
	f.ctrl = f.newController()
	return f
}

func (f *fixture) addServer(id, region string) {
	f.t.Helper()
	s := sim.New(sim.Config{Token: "tok-" + id, Processes: map[string]sim.Process{"api": {}, "idle": {IdleTimeout: time.Hour}}})
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(s.Close)
	f.sims[id] = s
	f.urls.Store(url, id)
	if _, err := f.store.AddServer(f.ctx, slum.Server{ID: id, URL: url, Region: region, CapacityMB: 1 << 30, Token: "tok-" + id}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) newController() *Controller {
	var log *slog.Logger
	if os.Getenv("SLUM_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return New(f.store, f.clients(), f.cfg, log, nil)
}

func (f *fixture) tenant(id string, instances ...slum.InstanceSpec) {
	f.t.Helper()
	if _, _, err := f.store.AddTenant(f.ctx, slum.Tenant{ID: id, Domain: id + ".example.com"}, instances...); err != nil {
		f.t.Fatal(err)
	}
}

func spec(id, process, server string) slum.InstanceSpec {
	return slum.InstanceSpec{ID: id, Process: process, ServerID: server, MemoryMB: 1}
}

// sync observes every server, plans, acts, and waits for the actions.
func (f *fixture) sync() *Plan {
	f.t.Helper()
	p, err := f.ctrl.Sync(f.ctx, f.lease.Fence(), true)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.ctrl.waitIdle(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// converge syncs until a plan has nothing to do, letting backoffs run out
// on the fake clock in between.
func (f *fixture) converge() int {
	f.t.Helper()
	for i := 1; i <= 20; i++ {
		p := f.sync()
		if len(p.Spawns)+len(p.Stops)+len(p.Reschedules)+len(p.Waits) == 0 {
			return i
		}
		if f.clock != nil { // nil: a benchmark's fleet, on the real clock
			f.clock.Advance(time.Second)
		}
	}
	f.t.Fatal("no convergence in 20 plans")
	return 0
}

func (f *fixture) running(server string) []string { return f.sims[server].Names() }

func (f *fixture) status(key slum.InstanceKey) slum.InstanceStatus {
	f.t.Helper()
	st, err := f.store.InstanceStatus(f.ctx, key)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *fixture) serverStatus(id string) slum.ServerStatus {
	f.t.Helper()
	sts, err := f.store.ListServerStatus(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, s := range sts {
		if s.ServerID == id {
			return s
		}
	}
	f.t.Fatalf("no status for server %s", id)
	return slum.ServerStatus{}
}

func (f *fixture) events(reason slum.EventReason) []slum.Event {
	evs, err := f.store.RecentEvents(f.ctx, 10000)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []slum.Event
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
	f.tenant("carol", slum.InstanceSpec{ID: "prod", Process: "idle", ServerID: "s2", Mode: slum.ModeOnDemand, MemoryMB: 1})

	f.converge()
	if got := f.running("s1"); !slices.Equal(got, []string{"api:alice--prod", "api:bob--prod"}) {
		t.Fatalf("s1 runs %v", got)
	}
	if got := f.running("s2"); !slices.Equal(got, []string{"api:alice--backup"}) {
		t.Fatalf("s2 runs %v (on-demand carol must not be spawned)", got)
	}
	st := f.status("alice:prod")
	if st.Phase != slum.PhaseRunning || st.Health != "healthy" || st.ObservedGeneration != 1 {
		t.Fatalf("alice:prod status %+v", st)
	}
	if st := f.status("carol:prod"); st.Phase != slum.PhaseIdle {
		t.Fatalf("carol:prod status %+v", st)
	}
	// A converged fleet: a plan does nothing, and spawns nothing twice.
	spawns := f.sims["s1"].Calls("spawn")
	if p := f.sync(); !p.Idle() || f.sims["s1"].Calls("spawn") != spawns {
		t.Fatalf("a converged fleet's plan acted: %+v", p)
	}
	if evs := f.events(slum.ReasonSpawned); len(evs) != 3 {
		t.Fatalf("spawn events: %v", evs)
	}
	// Who serves each tenant is recorded for every reader.
	ts, err := f.store.ListTenantStatus(f.ctx)
	if err != nil || len(ts) != 3 || !slices.Equal(ts[0].Serving, []slum.CopyRef{{Instance: "prod", Server: "s1"}}) ||
		!slices.Equal(ts[0].Spares, []slum.CopyRef{{Instance: "backup", Server: "s2"}}) {
		t.Fatalf("tenant status %+v %v", ts, err)
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
	f.sync()
	if _, tracked := f.ctrl.servers.byID["s2"]; tracked {
		t.Fatal("removed server still tracked")
	}
	if sts, _ := f.store.ListServerStatus(f.ctx); len(sts) != 1 {
		t.Fatalf("status of a removed server kept: %+v", sts)
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
	if st := f.serverStatus("s1"); st.Unmanaged != 3 {
		t.Fatalf("unmanaged %d, want 3", st.Unmanaged)
	}
	if len(f.events(slum.ReasonUnmanaged)) != 3 {
		t.Fatalf("unmanaged events: %v", f.events(slum.ReasonUnmanaged))
	}
	// Removing a tenant stops the copy slum placed, and nothing else.
	if err := f.store.RemoveTenant(f.ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	f.converge()
	f.sync()
	if got := f.running("s1"); slices.Contains(got, "api:alice--prod") || len(got) != 3 {
		t.Fatalf("after removing alice s1 runs %v", got)
	}
	if ps, _ := f.store.ListPlacements(f.ctx); len(ps) != 0 {
		t.Fatalf("ledger after the stop: %v", ps)
	}
	if len(f.events(slum.ReasonStopped)) != 1 {
		t.Fatalf("stopped events: %v", f.events(slum.ReasonStopped))
	}
	// A just-stopped copy is not mistaken for an unmanaged one.
	if len(f.events(slum.ReasonUnmanaged)) != 3 {
		t.Fatalf("unmanaged events after the stop: %v", f.events(slum.ReasonUnmanaged))
	}
}

// An emptied database must not empty the fleet: the stops are held, the
// hold is visible everywhere, and approving that exact plan lets it
// through once.
func TestMassStopIsHeldVisiblyUntilApproved(t *testing.T) {
	f := newFixture(t, 2, testConfig())
	for i := 0; i < 10; i++ {
		f.tenant(fmt.Sprintf("t%d", i), spec("prod", "api", []string{"s1", "s2"}[i%2]))
	}
	f.converge()
	// Instances vanish without a removal (as with a wrong database file).
	vanish(t, f, "t")
	for i := 0; i < 3; i++ {
		if p := f.sync(); len(p.Stops) != 0 || len(p.Held) != 1 || p.Held[0].Kind != slum.HoldMassStop {
			t.Fatalf("plan %d: stops %d, held %+v", i, len(p.Stops), p.Held)
		}
	}
	if n := len(f.running("s1")) + len(f.running("s2")); n != 10 {
		t.Fatalf("%d instances left, want all 10", n)
	}
	holds, err := f.store.OpenHolds(f.ctx)
	if err != nil || len(holds) != 1 || !strings.Contains(holds[0].Summary, "refused to stop 10 of the 10") ||
		!strings.Contains(holds[0].Detail, "stop api:t0--prod on s1") {
		t.Fatalf("open holds %+v %v", holds, err)
	}
	if evs := f.events(slum.ReasonHeld); len(evs) != 1 || !strings.Contains(evs[0].Message, fmt.Sprintf("slum approve %d", holds[0].ID)) {
		t.Fatalf("held events: %v", evs)
	}
	if st := f.ctrl.Status(); st.Holds != 1 || !strings.Contains(st.Reason, "mass-stop held") {
		t.Fatalf("controller status %+v", st)
	}
	if got := gauge(t, f.ctrl.Metrics(), "slum_held_plans", "mass-stop"); got != 1 {
		t.Fatalf("held metric %v", got)
	}
	// Approve it once: the stops go through, and the approval is spent.
	if _, err := f.store.ApproveHold(f.ctx, holds[0].ID, "test"); err != nil {
		t.Fatal(err)
	}
	f.converge()
	if n := len(f.running("s1")) + len(f.running("s2")); n != 0 {
		t.Fatalf("%d instances left after the approved stop", n)
	}
	if h, _ := f.store.RecentHolds(f.ctx, 1); h[0].State != slum.HoldDone {
		t.Fatalf("approval not spent: %+v", h[0])
	}
	// The guard stays as strict: the next emptied database is held again.
	for i := 0; i < 10; i++ {
		f.tenant(fmt.Sprintf("u%d", i), spec("prod", "api", []string{"s1", "s2"}[i%2]))
	}
	f.converge()
	vanish(t, f, "u")
	if p := f.sync(); len(p.Stops) != 0 || len(p.Held) != 1 {
		t.Fatalf("after an approval, the guard let %d stops through", len(p.Stops))
	}
}

// vanish deletes tenants whose id starts with prefix straight from the
// database, bypassing slum (no removal is recorded): what an emptied or
// wrong database looks like to the controller.
func vanish(t *testing.T, f *fixture, prefix string) {
	t.Helper()
	raw, err := sqlite.OpenEngine(f.ctx, f.path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	err = raw.InTx(f.ctx, func(q db.Querier) error {
		ts, err := q.ListTenants(f.ctx)
		if err != nil {
			return err
		}
		for _, tn := range ts {
			if !strings.HasPrefix(tn.ID, prefix) {
				continue
			}
			if _, err := q.DeleteInstancesOfTenant(f.ctx, tn.ID); err != nil {
				return err
			}
			if _, err := q.DeleteTenant(f.ctx, tn.ID); err != nil {
				return err
			}
		}
		return q.BumpRevision(f.ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func gauge(t *testing.T, m *Metrics, name, label string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mm := range mf.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetValue() == label {
					return mm.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

func TestRemovingManyTenantsIsNotAMassStop(t *testing.T) {
	f := newFixture(t, 2, testConfig())
	for i := 0; i < 10; i++ {
		f.tenant(fmt.Sprintf("t%d", i), spec("prod", "api", []string{"s1", "s2"}[i%2]))
	}
	f.converge()
	for i := 0; i < 10; i++ {
		if err := f.store.RemoveTenant(f.ctx, fmt.Sprintf("t%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	f.converge()
	if n := len(f.running("s1")) + len(f.running("s2")); n != 0 {
		t.Fatalf("%d copies of removed tenants left", n)
	}
}

func TestCrashAndRestartConverges(t *testing.T) {
	f := newFixture(t, 3, testConfig())
	for i := 0; i < 30; i++ {
		f.tenant(fmt.Sprintf("t%d", i), spec("prod", "api", fmt.Sprintf("s%d", i%3+1)))
	}
	for _, s := range f.sims {
		s.SetLatency(20 * time.Millisecond)
	}
	// Crash mid-convergence: the first controller's context ends while
	// spawns are in flight, and it never writes its final state.
	ctx, crash := context.WithCancel(f.ctx)
	began := make(chan struct{}, 1)
	first := New(f.store, spawnSignal(f.clients(), began), f.cfg, nil, nil)
	if _, err := first.Sync(ctx, f.lease.Fence(), true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-began:
	case <-time.After(10 * time.Second):
		t.Fatal("no spawn sent")
	}
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
	if ps, _ := f.store.ListPlacements(f.ctx); len(ps) != 30 {
		t.Fatalf("ledger has %d entries, want 30", len(ps))
	}
	for id, s := range f.sims {
		if n := s.Calls("stop"); n != 0 {
			t.Fatalf("%s got %d stops", id, n)
		}
	}
}

// spawnSignal makes clients that signal began as each spawn is sent.
func spawnSignal(newClient ClientFactory, began chan struct{}) ClientFactory {
	return func(url, token string) (Client, error) {
		c, err := newClient(url, token)
		return signalling{c, began}, err
	}
}

type signalling struct {
	Client
	began chan struct{}
}

func (s signalling) Spawn(ctx context.Context, process, id string) (observed.SpawnResult, error) {
	select {
	case s.began <- struct{}{}:
	default:
	}
	return s.Client.Spawn(ctx, process, id)
}

func TestParkedUntilDesiredChanges(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	f.tenant("alice", spec("prod", "nope", "s1")) // s1 has no such service
	for i := 0; i < 3; i++ {
		f.sync()
		f.clock.Advance(time.Minute) // past any backoff
	}
	if n := f.sims["s1"].Calls("spawn"); n != 1 {
		t.Fatalf("a permanent failure was tried %d times", n)
	}
	st := f.status("alice:prod")
	if st.Phase != slum.PhaseFailed || !strings.Contains(st.LastError, "Unknown process") || st.Attempts != 1 {
		t.Fatalf("status %+v", st)
	}
	if len(f.events(slum.ReasonParked)) != 1 {
		t.Fatalf("parked events %v", f.events(slum.ReasonParked))
	}
	// A new generation (stop and start again) gets a new try.
	if _, err := f.store.StopInstance(f.ctx, "alice:prod"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.SpawnInstance(f.ctx, slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "nope"}); err != nil {
		t.Fatal(err)
	}
	f.sync()
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
	// s2 fails every call: the new copy cannot start, so the old one stays.
	f.sims["s2"].SetErrorRate(1)
	for i := 0; i < 3; i++ {
		if p := f.sync(); len(p.Stops) != 0 || len(p.Waits) != 1 {
			t.Fatalf("stopped the only copy while the new one was not running: %+v", p.Stops)
		}
		f.clock.Advance(time.Second)
	}
	if got := f.running("s1"); !slices.Equal(got, []string{"api:alice--prod"}) {
		t.Fatalf("s1 runs %v", got)
	}
	f.sims["s2"].SetErrorRate(0)
	f.converge()
	if len(f.running("s1")) != 0 || !slices.Equal(f.running("s2"), []string{"api:alice--prod"}) {
		t.Fatalf("after the move: s1 %v s2 %v", f.running("s1"), f.running("s2"))
	}
}

func TestFaultsAreIsolated(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  func(f *fixture)
		health slum.Health
		errHas string
	}{
		{"down", func(f *fixture) { f.sims["s1"].SetDown(true) }, slum.HealthDead, "connection refused"},
		{"hung", func(f *fixture) { f.sims["s1"].SetHang(true) }, slum.HealthDead, "timed out"},
		{"5xx", func(f *fixture) { f.sims["s1"].SetErrorRate(1) }, slum.HealthOnline, "simulated failure"},
		{"malformed JSON", func(f *fixture) { f.sims["s1"].SetMalformed(true) }, slum.HealthOnline, "malformed"},
		{"bad token", func(f *fixture) {
			tok := "wrong"
			if _, err := f.store.UpdateServer(f.ctx, "s1", slum.ServerUpdate{Token: &tok}); err != nil {
				f.t.Fatal(err)
			}
		}, slum.HealthUnauthorized, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 2, testConfig())
			f.tenant("alice", spec("prod", "api", "s1"))
			f.tenant("bob", spec("prod", "api", "s2"))
			if _, err := f.store.UpdateTenant(f.ctx, "alice", slum.TenantUpdate{Failover: ptr(slum.FailoverNone)}); err != nil {
				t.Fatal(err)
			}
			f.converge()
			tc.fault(f)
			f.tenant("carol", spec("prod", "api", "s2"))
			f.tenant("dave", spec("prod", "api", "s1"))
			if _, err := f.store.UpdateTenant(f.ctx, "dave", slum.TenantUpdate{Failover: ptr(slum.FailoverNone)}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				f.sync()
				f.clock.Advance(time.Second)
			}
			// The healthy server converged regardless.
			if got := f.running("s2"); !slices.Equal(got, []string{"api:bob--prod", "api:carol--prod"}) {
				t.Fatalf("s2 runs %v", got)
			}
			s1 := f.serverStatus("s1")
			msg := s1.LastError + " " + f.status("dave:prod").Message
			if s1.Health != tc.health || !strings.Contains(msg, tc.errHas) || s1.Listed {
				t.Fatalf("s1 status %+v (dave: %q), want %s with %q", s1, f.status("dave:prod").Message, tc.health, tc.errHas)
			}
			// What is not known shows as unknown (or down with its
			// dead server), never as running.
			if st := f.status("dave:prod"); st.Phase != slum.PhaseUnknown && st.Phase != slum.PhaseDown {
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

func ptr[T any](v T) *T { return &v }

func TestBadTokenDoesNotLockOthersOut(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"))
	f.converge()
	tok := "wrong"
	if _, err := f.store.UpdateServer(f.ctx, "s1", slum.ServerUpdate{Token: &tok}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 15; i++ {
		f.sync()
	}
	// tenement locks everyone out after 10 bad tokens; slum sent one.
	good := f.sims["s1"]
	before := good.Calls("list")
	cl, _ := HTTPClientFactory(time.Second)(good.URL(), "tok-s1")
	if _, _, err := cl.ListNames(f.ctx, nil); err != nil {
		t.Fatalf("another client of the server after slum's bad token: %v", err)
	}
	if good.Calls("list") != before+1 {
		t.Fatal("list not counted")
	}
	// Fixing the token heals the server.
	tok = "tok-s1"
	if _, err := f.store.UpdateServer(f.ctx, "s1", slum.ServerUpdate{Token: &tok}); err != nil {
		t.Fatal(err)
	}
	f.sync()
	if st := f.status("alice:prod"); st.Phase != slum.PhaseRunning {
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
	f.sync()
	if st := f.status("alice:prod"); st.Phase != slum.PhasePending || st.Attempts != 1 || !strings.Contains(st.LastError, "simulated failure") {
		t.Fatalf("after one failure: %+v", st)
	}
	f.clock.Advance(time.Second)
	f.converge()
	if n := f.sims["s1"].Calls("spawn"); n != 3 {
		t.Fatalf("%d spawn calls, want 3 (two failures, one success)", n)
	}
	if st := f.status("alice:prod"); st.Phase != slum.PhaseRunning || st.Attempts != 0 || st.LastError != "" {
		t.Fatalf("after recovery: %+v", st)
	}
	if len(f.events(slum.ReasonRetrying)) != 1 {
		t.Fatal("the failure left no event")
	}
}

// A status the reporter remembers writing must be in the table: an
// instance removed and added again between two plans, and a write that
// failed, are written (again).
func TestStatusIsNeverStale(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"))
	f.converge()
	if err := f.store.RemoveInstance(f.ctx, "alice:prod"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.SpawnInstance(f.ctx, spec2("alice", "prod", "api", "s1")); err != nil {
		t.Fatal(err)
	}
	f.converge()
	if st := f.status("alice:prod"); st.Phase != slum.PhaseRunning {
		t.Fatalf("removed and added again: %+v", st)
	}
	// A write that fails is retried, not remembered as written.
	failing := &failingStore{Store: f.store}
	failing.fail.Store(true)
	f.ctrl = New(failing, f.clients(), f.cfg, nil, nil)
	f.tenant("bob", spec("prod", "api", "s1"))
	if _, err := f.ctrl.Sync(f.ctx, f.lease.Fence(), true); err != nil {
		t.Fatal(err)
	}
	if err := f.ctrl.waitIdle(f.ctx); err == nil {
		t.Fatal("the failing write reported success")
	}
	failing.fail.Store(false)
	f.converge()
	if st := f.status("bob:prod"); st.Phase != slum.PhaseRunning {
		t.Fatalf("after a failed write: %+v", st)
	}
}

func spec2(tenant, id, process, server string) slum.InstanceSpec {
	s := spec(id, process, server)
	s.TenantID = tenant
	return s
}

type failingStore struct {
	*store.Store
	fail atomic.Bool
}

func (s *failingStore) WriteReport(ctx context.Context, f slum.Fence, r slum.Report) error {
	if s.fail.Load() {
		return errors.New("disk full")
	}
	return s.Store.WriteReport(ctx, f, r)
}

// A controller whose lease was taken cannot write: not status, not the
// ledger, not failover moves.
func TestStaleEpochCannotWrite(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"))
	old := f.lease.Fence()
	if _, err := f.store.AcquireLease(f.ctx, slum.ControllerLease, "test/2/b", "test/1/a", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ctrl.Sync(f.ctx, old, true); err != nil {
		t.Fatal(err)
	}
	if err := f.ctrl.waitIdle(f.ctx); !errors.Is(err, slum.ErrFenced) {
		t.Fatalf("a fenced status write: %v", err)
	}
	if n := f.sims["s1"].Calls("spawn"); n != 0 {
		t.Fatalf("a fenced controller spawned %d (its ledger write must fail first)", n)
	}
	if ps, _ := f.store.ListPlacements(f.ctx); len(ps) != 0 {
		t.Fatalf("a fenced controller wrote the ledger: %v", ps)
	}
	if _, err := f.store.Reschedule(f.ctx, old, []slum.Reschedule{{TenantID: "alice", InstanceID: "prod", From: "s1", To: "s1", Generation: 1}}); !errors.Is(err, slum.ErrFenced) {
		t.Fatalf("a fenced reschedule: %v", err)
	}
}

func TestRunReactsToCommitsAndStopsCleanly(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	ctx, stop := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- f.ctrl.Run(ctx, f.lease.Fence()) }()
	f.until(5*time.Second, "ready", func() bool { return f.ctrl.Status().Ready })
	// Another process's commit: a second connection to the same file.
	other, err := sqlite.Open(f.ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, _, err := other.AddTenant(f.ctx, slum.Tenant{ID: "alice", Domain: "alice.example.com"}, spec("prod", "api", "s1")); err != nil {
		t.Fatal(err)
	}
	// Well before the resync (an hour): the revision poll saw the commit.
	f.until(5*time.Second, "the controller reacted to the commit", func() bool { return len(f.running("s1")) == 1 })
	// SIGTERM with a call in flight: it finishes, then Run returns.
	f.sims["s1"].SetLatency(200 * time.Millisecond)
	if _, err := other.SpawnInstance(f.ctx, slum.InstanceSpec{TenantID: "alice", ID: "worker", Process: "idle", ServerID: "s1"}); err != nil {
		t.Fatal(err)
	}
	f.until(5*time.Second, "the second spawn arrived", func() bool { return f.sims["s1"].Calls("spawn") >= 2 })
	stop() // the spawn is in flight: it arrived and waits out its latency
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got := f.running("s1"); !slices.Equal(got, []string{"api:alice--prod", "idle:alice--worker"}) {
		t.Fatalf("the in-flight spawn did not finish: s1 runs %v", got)
	}
	wantActions(t, &f.acts, "spawn s1 api:alice--prod", "spawn s1 idle:alice--worker")
}

// wantActions checks the actions sent since the last check, in order of
// their text.
func wantActions(t *testing.T, acts *actions, want ...string) {
	t.Helper()
	if got := acts.take(); !slices.Equal(got, want) {
		t.Fatalf("actions sent:\n got  %q\n want %q", got, want)
	}
}

// A controller whose leader may no longer act (its renew deadline passed)
// sends nothing, though its plan wants the spawn; once it may, it does.
func TestNothingIsSentWhenTheLeaderMayNotAct(t *testing.T) {
	cfg := testConfig()
	var refuse atomic.Bool
	refuse.Store(true)
	cfg.MayAct = func() error {
		if refuse.Load() {
			return errors.New("not renewed for 10s (renew deadline)")
		}
		return nil
	}
	f := newFixture(t, 1, cfg)
	f.tenant("alice", spec("prod", "api", "s1"))
	if p := f.sync(); len(p.Spawns) != 1 {
		t.Fatalf("plan %+v", p)
	}
	wantActions(t, &f.acts)
	if got := f.running("s1"); len(got) != 0 {
		t.Fatalf("s1 runs %v", got)
	}
	refuse.Store(false)
	f.converge()
	wantActions(t, &f.acts, "spawn s1 api:alice--prod")
}

func TestDryRunActsOnNothing(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"))
	p, err := f.ctrl.Sync(f.ctx, slum.Fence{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Spawns) != 1 || p.Spawns[0].Name != "api:alice--prod" {
		t.Fatalf("plan %+v", p)
	}
	if f.sims["s1"].Calls("spawn") != 0 {
		t.Fatal("a dry run spawned")
	}
	if ps, _ := f.store.ListPlacements(f.ctx); len(ps) != 0 {
		t.Fatal("a dry run wrote the ledger")
	}
}

// run starts the controller's loop and returns a stop function.
func (f *fixture) run() func() {
	f.t.Helper()
	ctx, stop := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- f.ctrl.Run(ctx, f.lease.Fence()) }()
	return func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				f.t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			f.t.Error("Run did not return after its context ended")
		}
	}
}

// step is how far until and pass move the fake clock at a time.
const step = 10 * time.Millisecond

// until moves the fake clock on, a step at a time, until ok holds, and
// returns the fake time that took; it fails after limit of fake time.
func (f *fixture) until(limit time.Duration, what string, ok func() bool) time.Duration {
	f.t.Helper()
	var passed time.Duration
	for !ok() {
		if passed >= limit {
			f.t.Fatalf("%s: not within %v", what, limit)
		}
		f.settle(f.clock.Advance(step))
		passed += step
	}
	return passed
}

// pass moves the fake clock on by d, in a hundred steps or steps of
// step, whichever are longer.
func (f *fixture) pass(d time.Duration) {
	by := max(step, d/100)
	for passed := time.Duration(0); passed < d; passed += by {
		f.settle(f.clock.Advance(by))
	}
}

// settle lets what a step woke act before the next: it returns once each
// goroutine the clock woke waits on it again (a watcher between probes,
// the loop waiting to plan), yielding for at most a few milliseconds per
// goroutine that does not (one that waits on a channel instead). How long
// anything takes is told by the fake clock alone.
func (f *fixture) settle(fired int) {
	for range max(fired, 1) {
		select {
		case <-f.clock.Parked():
		case <-time.After(5 * time.Millisecond):
			return
		}
	}
}

// Tenants added and removed in quick succession, while the controller
// runs, leave nothing behind: a spawn queued before a removal is not sent,
// and one that lands after it is cleaned up.
func TestQuickAddAndRemoveLeavesNothing(t *testing.T) {
	cfg := testConfig()
	cfg.PerServer, cfg.PollInterval = 2, 200*time.Millisecond
	f := newFixture(t, 3, cfg)
	for _, s := range f.sims {
		s.SetLatency(15 * time.Millisecond) // spawns queue up behind each other
	}
	defer f.run()()
	for round := 0; round < 20; round++ { // the 20 rounds of add-30/remove-30
		for i := 0; i < 30; i++ {
			f.tenant(fmt.Sprintf("r%dt%d", round, i), spec("prod", "api", fmt.Sprintf("s%d", i%3+1)))
		}
		f.pass(time.Duration(round%5*20) * time.Millisecond)
		for i := 0; i < 30; i++ {
			if err := f.store.RemoveTenant(f.ctx, fmt.Sprintf("r%dt%d", round, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.until(20*time.Second, "every copy gone", func() bool {
		n := 0
		for _, s := range f.sims {
			n += s.Len()
		}
		ps, _ := f.store.ListPlacements(f.ctx)
		return n == 0 && len(ps) == 0
	})
	for id := range f.sims {
		if st := f.serverStatus(id); st.Unmanaged != 0 {
			t.Fatalf("%s reports %d unmanaged copies", id, st.Unmanaged)
		}
	}
	if n := len(f.events(slum.ReasonUnmanaged)); n != 0 {
		t.Fatalf("%d unmanaged events", n)
	}
}

func fastFailover(t *testing.T, f *fixture) {
	t.Helper()
	set := slum.DefaultSettings()
	set.ProbeInterval, set.ProbeTimeout, set.StableAfter = 100*time.Millisecond, 100*time.Millisecond, 0
	if _, err := f.store.SetSettings(f.ctx, set); err != nil {
		t.Fatal(err)
	}
}

// A killed server's instances run elsewhere; its stale copies are fenced
// when it comes back; the route table follows.
func TestFailoverAndFencing(t *testing.T) {
	cfg := testConfig()
	cfg.PollInterval, cfg.ProbeRetry = 200*time.Millisecond, 30*time.Millisecond
	var table atomic.Pointer[routes.Table]
	cfg.OnRoutes = func(t *routes.Table) { table.Store(t) }
	f := newFixture(t, 3, cfg)
	fastFailover(t, f)
	f.tenant("alice", spec("prod", "api", "s1"), spec("backup", "api", "s2"))
	f.tenant("bob", spec("prod", "api", "s1"))
	defer f.run()()
	served := func(tenant string) string {
		r, ok := table.Load().Lookup(tenant + ".example.com")
		if !ok || len(r.Backends) == 0 {
			return ""
		}
		return string(r.Backends[0].Instance) + "@" + r.Backends[0].Server
	}
	f.until(10*time.Second, "converged", func() bool {
		return len(f.events(slum.ReasonSpawned)) == 3 && served("alice") == "alice:prod@s1" // every spawn answered
	})
	wantActions(t, &f.acts, "spawn s1 api:alice--prod", "spawn s1 api:bob--prod", "spawn s2 api:alice--backup")
	// s1 is cut off but keeps running its copies (as a cut link does).
	if err := f.sims["s1"].SetDown(true); err != nil {
		t.Fatal(err)
	}
	f.until(10*time.Second, "alice served by her spare", func() bool { return served("alice") == "alice:backup@s2" })
	// alice:prod cannot join her backup on s2; bob goes to the least used.
	f.until(10*time.Second, "bob and alice:prod running elsewhere", func() bool {
		return slices.Contains(f.running("s3"), "api:alice--prod") && slices.Contains(f.running("s2"), "api:bob--prod")
	})
	f.until(time.Second, "bob served on s2", func() bool { return served("bob") == "bob:prod@s2" })
	wantActions(t, &f.acts, "spawn s2 api:bob--prod", "spawn s3 api:alice--prod")
	in, _ := f.store.GetInstance(f.ctx, "bob:prod")
	if in.ServerID != "s2" || in.HomeServerID != "s1" {
		t.Fatalf("bob:prod after failover: %+v", in)
	}
	f.until(time.Second, "failover events", func() bool { return len(f.events(slum.ReasonFailoverStarted)) == 1 })
	if e := f.events(slum.ReasonFailoverStarted)[0]; e.Message != "server is dead: 2 of its instances placed elsewhere" {
		t.Fatalf("failover event %q", e.Message)
	}
	if len(f.events(slum.ReasonRescheduled)) != 2 {
		t.Fatalf("events: %v %v", f.events(slum.ReasonFailoverStarted), f.events(slum.ReasonRescheduled))
	}
	defer func() {
		if t.Failed() {
			for _, e := range f.events(slum.ReasonFenced) {
				t.Log("fenced:", e.Object, e.Message)
			}
		}
	}()
	// s1 comes back with its stale copies: they are fenced at once.
	if err := f.sims["s1"].SetDown(false); err != nil {
		t.Fatal(err)
	}
	f.until(10*time.Second, "stale copies fenced", func() bool { return len(f.running("s1")) == 0 })
	// One event for the server, one per stale copy.
	f.until(time.Second, "fenced events", func() bool { return len(f.events(slum.ReasonFenced)) == 3 })
	// Nothing moves back by itself (failback stay): seconds of probes,
	// lists and plans later.
	f.pass(5 * time.Second)
	if in, _ := f.store.GetInstance(f.ctx, "bob:prod"); in.ServerID != "s2" {
		t.Fatalf("bob:prod moved back: %+v", in)
	}
	wantActions(t, &f.acts, "stop s1 api:alice--prod", "stop s1 api:bob--prod")
	// s2 dies too: bob:prod fails over a second time, and the event names
	// the server that died, not its home.
	if err := f.sims["s2"].SetDown(true); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			evs, _ := f.store.RecentEvents(f.ctx, 100)
			for _, e := range evs {
				t.Log(e.Object, e.Reason, e.Message)
			}
		}
	}()
	f.until(10*time.Second, "bob:prod replaced again", func() bool {
		for _, e := range f.events(slum.ReasonReplaced) {
			if e.Object == "instance/bob:prod" && strings.Contains(e.Message, "after s2 was declared dead") {
				return true
			}
		}
		return false
	})
	// A failover of its own, told once, with what it moved.
	f.until(time.Second, "the second failover told", func() bool { return len(f.events(slum.ReasonFailoverStarted)) == 2 })
	f.pass(time.Second)
	wantActions(t, &f.acts, "spawn s1 api:alice--backup", "spawn s1 api:bob--prod")
	started := f.events(slum.ReasonFailoverStarted)
	if len(started) != 2 || started[1].Object != "server/s2" || started[1].Message != "server is dead: 2 of its instances placed elsewhere" {
		t.Fatalf("failover events %+v", started)
	}
}

// A controller killed right after its spawns did not record them; the
// next records what it finds running of what the last left pending.
func TestSpawnsOfAKilledControllerAreRecorded(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"))
	killed := f.newController()
	if _, err := killed.Sync(f.ctx, f.lease.Fence(), true); err != nil {
		t.Fatal(err)
	}
	// Its reporter wrote the plan (alice pending: no row), and the spawn
	// landed; then it was killed, before hearing back.
	if err := killed.run.rep.Flush(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.until(time.Second, "the spawn landed", func() bool { return len(f.running("s1")) == 1 })
	if n := len(f.events(slum.ReasonSpawned)); n != 0 {
		t.Fatalf("%d spawn events before the restart", n)
	}
	f.ctrl = f.newController()
	f.sync()
	evs := f.events(slum.ReasonSpawned)
	if len(evs) != 1 || evs[0].Object != "instance/alice:prod" || !strings.Contains(evs[0].Message, "spawned by the last controller") {
		t.Fatalf("spawn events %+v", evs)
	}
	f.sync()
	if n := len(f.events(slum.ReasonSpawned)); n != 1 {
		t.Fatalf("%d spawn events after another plan", n)
	}
}

// When most servers look dead at once, the controller assumes it is cut
// off and moves nothing.
func TestPartitionMovesNothing(t *testing.T) {
	cfg := testConfig()
	cfg.PollInterval, cfg.ProbeRetry = 200*time.Millisecond, 30*time.Millisecond
	f := newFixture(t, 3, cfg)
	fastFailover(t, f)
	f.tenant("alice", spec("prod", "api", "s1"))
	f.tenant("bob", spec("prod", "api", "s2"))
	defer f.run()()
	// Converged as the controller sees it: both spawns answered. A server
	// cut off before its spawn's answer arrives leaves that spawn failed
	// and retried on its own server, which is not a move.
	f.until(10*time.Second, "converged", func() bool { return len(f.events(slum.ReasonSpawned)) == 2 })
	wantActions(t, &f.acts, "spawn s1 api:alice--prod", "spawn s2 api:bob--prod")
	f.sims["s1"].SetDown(true)
	f.sims["s2"].SetDown(true)
	f.until(10*time.Second, "the partition held", func() bool {
		h, _ := f.store.OpenHolds(f.ctx)
		return len(h) == 1 && h[0].Kind == slum.HoldPartition
	})
	// Held for as long as it lasts: seconds of probes and plans later,
	// nothing moved.
	f.pass(5 * time.Second)
	wantActions(t, &f.acts) // nothing at all
	for _, k := range []slum.InstanceKey{"alice:prod", "bob:prod"} {
		if in, _ := f.store.GetInstance(f.ctx, k); in.FailedOver() {
			t.Fatalf("%s moved during a partition: %+v", k, in)
		}
	}
	if st := f.ctrl.Status(); !strings.Contains(st.Reason, "partition held") {
		t.Fatalf("status %+v", st)
	}
}

// recordFails is a Store whose placements cannot be recorded while fail
// is set.
type recordFails struct {
	*store.Store
	fail atomic.Bool
}

func (s *recordFails) RecordPlacements(ctx context.Context, f slum.Fence, ps []slum.Placement) error {
	if s.fail.Load() && len(ps) > 0 {
		return errors.New("disk I/O error")
	}
	return s.Store.RecordPlacements(ctx, f, ps)
}

// A spawn goes out only once its placement is recorded: when recording
// fails, copies slum already owns are still respawned, new ones wait.
func TestSpawnsWaitForTheirPlacements(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	st := &recordFails{Store: f.store}
	f.ctrl = New(st, f.clients(), f.cfg, nil, nil)
	f.tenant("alice", spec("prod", "api", "s1"))
	f.converge()
	f.sims["s1"].Crash() // alice's copy is gone; slum placed it
	f.tenant("bob", spec("prod", "api", "s1"))
	st.fail.Store(true)
	f.sync()
	if got := f.running("s1"); !slices.Equal(got, []string{"api:alice--prod"}) {
		t.Fatalf("with placements failing to record, s1 runs %v; want alice's copy back and bob's unsent", got)
	}
	st.fail.Store(false)
	f.converge()
	if got := f.running("s1"); len(got) != 2 {
		t.Fatalf("once placements record again, s1 runs %v", got)
	}
}

// recordingStore keeps every report written.
type recordingStore struct {
	*store.Store
	mu      sync.Mutex
	reports []slum.Report
	wrote   chan struct{} // signalled after each write
}

func (s *recordingStore) WriteReport(ctx context.Context, f slum.Fence, r slum.Report) error {
	s.mu.Lock()
	s.reports = append(s.reports, kept(r))
	s.mu.Unlock()
	err := s.Store.WriteReport(ctx, f, r)
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return err
}

// A restarted controller whose servers are slow to list makes its first
// plan from their lists, not before: it does not report their instances
// unknown for a moment (and rewrite every row twice).
func TestFirstPlanWaitsForTheFirstLists(t *testing.T) {
	f := newFixture(t, 2, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"))
	f.tenant("bob", spec("prod", "api", "s2"))
	f.converge()
	for _, s := range f.sims {
		s.SetLatency(150 * time.Millisecond)
	}
	rec := &recordingStore{Store: f.store, wrote: make(chan struct{}, 1)}
	f.ctrl = New(rec, f.clients(), f.cfg, nil, nil)
	stop := f.run()
	// The first plan changes the routes, so its report is written at once:
	// with the fake clock still, the plan waited for the lists, not for
	// firstListWait.
	select {
	case <-rec.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("no report written")
	}
	if !f.ctrl.Status().Ready {
		t.Fatal("a report written before the first plan")
	}
	f.pass(5 * f.cfg.FlushInterval)
	stop()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.reports {
		for _, st := range r.Instances {
			if st.Phase != slum.PhaseRunning {
				t.Errorf("%s reported %s (%s) after a restart, though it ran throughout", st.Key(), st.Phase, st.Message)
			}
		}
	}
	for _, key := range []slum.InstanceKey{"alice:prod", "bob:prod"} {
		if st := f.status(key); st.Phase != slum.PhaseRunning {
			t.Errorf("%s is %s", key, st.Phase)
		}
	}
}

// A server whose list hangs holds the first plan back for firstListWait at
// most, not for the list's whole timeout: a controller taking over
// mid-failover plans at once.
func TestFirstPlanWaitsForASlowListBriefly(t *testing.T) {
	cfg := testConfig()
	cfg.PollTimeout = 10 * time.Second
	f := newFixture(t, 2, cfg)
	f.tenant("alice", spec("prod", "api", "s1"))
	f.converge()
	f.sims["s2"].SetLatency(8 * time.Second)
	f.ctrl = New(f.store, f.clients(), f.cfg, nil, nil)
	defer f.run()()
	if took := f.until(2*firstListWait, "ready", func() bool { return f.ctrl.Status().Ready }); took < firstListWait {
		t.Fatalf("the first plan came after %v, before s2's list or firstListWait", took)
	}
}

// Spawns past maxSpawnEvents are counted, not described one by one: every
// spawn is accounted for in the events.
func TestSpawnEventsPastTheCapAreCounted(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	const n = maxSpawnEvents + 17
	for i := 0; i < n; i++ {
		f.tenant(fmt.Sprintf("t%d", i), spec("prod", "api", "s1"))
	}
	f.converge()
	described, counted := 0, 0
	for _, e := range f.events(slum.ReasonSpawned) {
		var more int
		if _, err := fmt.Sscanf(e.Message, "spawned %d more instances", &more); err == nil {
			counted += more
			continue
		}
		if !strings.HasPrefix(string(e.Object), "instance/t") || !strings.HasPrefix(e.Message, "spawned api:t") {
			t.Errorf("spawn event %+v", e)
		}
		described++
	}
	if described == 0 || described > maxSpawnEvents || described+counted != n {
		t.Fatalf("%d spawns described and %d counted, want at most %d described and %d in all", described, counted, maxSpawnEvents, n)
	}
}

// Desired hands out the snapshot the controller works from, the one its
// plans use, and follows the controller's own commits.
func TestDesiredIsTheControllersSnapshot(t *testing.T) {
	f := newFixture(t, 2, testConfig())
	if f.ctrl.Desired() != nil {
		t.Fatal("a snapshot before the controller read one")
	}
	f.tenant("alice", spec("prod", "api", "s1"))
	f.converge()
	snap := f.ctrl.Desired()
	if snap == nil || snap != f.ctrl.fleet().Snapshot || len(snap.Instances) != 1 || snap.Instances[0].ServerID != "s1" {
		t.Fatalf("Desired: %+v, want the fleet's snapshot with alice:prod on s1", snap)
	}
	f.tenant("bob", spec("prod", "api", "s2"))
	f.converge()
	if next := f.ctrl.Desired(); next == snap || len(next.Instances) != 2 || next.Revision <= snap.Revision {
		t.Fatalf("after a commit: %+v", next)
	}
}

// Once a plan is carried out, what the controller keeps of it (the next
// plan's Prev, the plan events and routes compare with, the reporter's)
// holds none of its actions: the executor has them. The plan returned
// still tells what was done.
func TestControllerKeepsNoActionsOfAPlanCarriedOut(t *testing.T) {
	f := newFixture(t, 1, testConfig())
	f.tenant("alice", spec("prod", "api", "s1"))
	p := f.sync()
	if len(p.Spawns) != 1 || len(p.Record) != 1 {
		t.Fatalf("the plan returned has %d spawns and %d placements, want 1 and 1", len(p.Spawns), len(p.Record))
	}
	for what, kept := range map[string]*Plan{"last": f.ctrl.plans.last, "reported": f.ctrl.plans.reported} {
		if kept == nil || kept.Spawns != nil || kept.Record != nil || kept.Stops != nil {
			t.Fatalf("the %s plan kept holds actions: %+v", what, kept)
		}
		if kept.Revision != p.Revision || kept.Observations.Len() != 1 || kept.Serving.Len() != 1 {
			t.Fatalf("the %s plan kept lost more than its actions: %+v", what, kept)
		}
	}
	f.converge()
	wantActions(t, &f.acts, "spawn s1 api:alice--prod")
}
