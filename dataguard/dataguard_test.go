package dataguard

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/internal/replicamem"
	"github.com/slum-fleet/slum/replica"
	"github.com/slum-fleet/slum/replica/lease"
)

const aliceReplica = "s3://replicas/tenants/alice?endpoint=http://127.0.0.1:8333"

// fleet is a Source: the desired state and the controller's server
// health, as the store would give them, and the events written.
type fleet struct {
	mu       sync.Mutex
	snap     slum.Snapshot
	health   map[string]slum.Health
	events   []slum.Event
	revision int64
}

func newFleet(placedOn string, health map[string]slum.Health) *fleet {
	f := &fleet{health: health, revision: 1}
	for id := range health {
		f.snap.Servers = append(f.snap.Servers, slum.Server{ID: id})
	}
	f.snap.Tenants = []slum.Tenant{
		{ID: "alice", Data: slum.DataReplicated, Replica: aliceReplica},
		{ID: "bob", Data: slum.DataLocal},
	}
	f.snap.Instances = []slum.Instance{
		{TenantID: "alice", ID: "prod", ServerID: placedOn, DesiredState: slum.StateRunning},
		{TenantID: "bob", ID: "prod", ServerID: placedOn, DesiredState: slum.StateRunning},
	}
	return f
}

func (f *fleet) Revision(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.revision, nil
}

func (f *fleet) Snapshot(context.Context) (*slum.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.snap
	s.Revision = f.revision
	return &s, nil
}

func (f *fleet) ListServerStatus(context.Context) ([]slum.ServerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []slum.ServerStatus
	for id, h := range f.health {
		out = append(out, slum.ServerStatus{ServerID: id, Health: h})
	}
	return out, nil
}

func (f *fleet) WriteReport(_ context.Context, _ slum.Fence, r slum.Report) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, r.Events...)
	return nil
}

func (f *fleet) reasons() []slum.EventReason {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []slum.EventReason
	for _, e := range f.events {
		out = append(out, e.Reason)
	}
	return out
}

type rig struct {
	t     *testing.T
	clk   *fakeclock.Clock
	store *replicamem.Store
	loc   replica.Location
	fleet *fleet
	g     *Guard
	log   *bytes.Buffer
}

func newRig(t *testing.T, f *fleet) *rig {
	loc, err := replica.ParseLocation(aliceReplica)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, clk: fakeclock.New(t0), store: replicamem.New(), loc: loc, fleet: f, log: &bytes.Buffer{}}
	open := func(l replica.Location) (replica.Store, error) {
		if l.Canonical() != loc.Canonical() {
			t.Errorf("opened %s", l.Canonical())
		}
		return r.store, nil
	}
	r.g = New(f, open, Config{Clock: r.clk}, slog.New(slog.NewTextHandler(r.log, nil)))
	return r
}

// holder is a guard's lease holder for alice:prod on server.
func (r *rig) holder(server, pid string) *lease.Holder {
	h, err := lease.NewHolder(r.store, r.loc, "alice--prod@host/"+pid+"/x", lease.DefaultTiming, r.clk, r.t.Logf)
	if err != nil {
		r.t.Fatal(err)
	}
	h.OnServer(server)
	return h
}

func (r *rig) tick() {
	r.t.Helper()
	if err := r.g.Tick(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) lease() lease.Record {
	r.t.Helper()
	o, err := lease.NewWatcher(r.store, r.loc, r.clk).Observe(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return o.Record
}

func acquire(h *lease.Holder) chan error {
	done := make(chan error, 1)
	go func() { _, err := h.Acquire(context.Background()); done <- err }()
	return done
}

// A server dies with its copy holding the lease: the guard revokes it (an
// orphan of a killed 'ten', or a hung copy, would stop at its next
// renewal), and once the lease has stayed unchanged for the TTL since the
// dead copy's last renewal, as the guard saw it, it is released, so the
// new copy takes it then rather than a whole TTL after the revocation.
func TestDeadServersCopyIsRevokedThenReleasedForTheNewCopy(t *testing.T) {
	ctx := context.Background()
	f := newFleet("s2", map[string]slum.Health{"s2": slum.HealthOnline, "s3": slum.HealthOnline})
	r := newRig(t, f)
	old := r.holder("s2", "pid1")
	if _, err := old.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	r.tick() // the writer where its instance is: nothing to do
	// s2 dies: its copy renews no more, and the controller takes a second
	// to declare it dead and fail prod over to s3.
	for range 4 {
		r.clk.Advance(250 * time.Millisecond)
		r.tick()
	}
	f.mu.Lock()
	f.health["s2"] = slum.HealthDead
	f.snap.Instances[0].ServerID = "s3"
	f.revision++
	f.mu.Unlock()
	r.tick()
	if rec := r.lease(); rec.State != lease.StateRevoked || !strings.Contains(rec.Reason, "s2 is dead") {
		t.Fatalf("after the failover: %+v", rec)
	}
	if got := metric(t, r.g, "slum_replicated_waiting_for_writer"); got != 1 {
		t.Fatalf("waiting gauge %v", got)
	}
	if err := old.Renew(ctx); !errors.Is(err, lease.ErrFenced) {
		t.Fatalf("the old copy's renewal after the revoke: %v", err)
	}
	next := r.holder("s3", "pid2")
	done := acquire(next)
	var took time.Duration
	for took = 0; took < 5*time.Second; took += 250 * time.Millisecond {
		r.clk.WaitForWaiters(1, time.Second)
		r.clk.Advance(250 * time.Millisecond)
		r.tick()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			goto took
		default:
		}
	}
	t.Fatal("the new copy never took the lease")
took:
	if took > 1750*time.Millisecond {
		t.Fatalf("the new copy took the lease %s after the revoke, want about 1 s (2 s since the last renewal)", took)
	}
	r.tick()
	want := []slum.EventReason{slum.ReasonLeaseRevoked, slum.ReasonLeaseReleased, slum.ReasonWriterTookOver}
	if got := r.fleet.reasons(); !equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if got := metric(t, r.g, "slum_replicated_waiting_for_writer"); got != 0 {
		t.Fatalf("waiting gauge %v after the take-over", got)
	}
	if n := metric(t, r.g, "slum_replica_writer_wait_seconds"); n != 1 {
		t.Fatalf("%v waits observed", n)
	}
}

// A planned move off a live server: the old copy is asked to hand over,
// releases once it has stopped cleanly, and the new copy takes the lease
// at once.
func TestMovedCopyIsAskedToHandOver(t *testing.T) {
	ctx := context.Background()
	f := newFleet("s3", map[string]slum.Health{"s1": slum.HealthOnline, "s3": slum.HealthOnline})
	r := newRig(t, f)
	old := r.holder("s1", "pid1")
	if _, err := old.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	r.tick()
	if rec := r.lease(); rec.State != lease.StateHandover {
		t.Fatalf("after the tick: %+v", rec)
	}
	r.tick() // waiting for the handover: no second request
	if err := old.Renew(ctx); !errors.Is(err, lease.ErrHandover) {
		t.Fatalf("the old copy's renewal: %v", err)
	}
	if err := old.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.holder("s3", "pid2").Acquire(ctx); err != nil { // no clock advance: at once
		t.Fatal(err)
	}
	r.tick()
	want := []slum.EventReason{slum.ReasonHandoverAsked, slum.ReasonWriterTookOver}
	if got := r.fleet.reasons(); !equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if got := metric(t, r.g, "slum_replica_lease_actions_total"); got != 1 {
		t.Fatalf("%v handovers asked", got)
	}
}

// The writer where its instance is placed is never written to, and a
// store that cannot be reached is logged once and retried, not fatal.
func TestWriterInPlaceIsLeftAloneAndAnUnreachableStoreIsRetried(t *testing.T) {
	ctx := context.Background()
	f := newFleet("s3", map[string]slum.Health{"s3": slum.HealthOnline})
	r := newRig(t, f)
	if _, err := r.holder("s3", "pid1").Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	before := r.lease()
	for range 4 {
		r.tick()
	}
	if after := r.lease(); after != before {
		t.Fatalf("the writer's lease was written: %+v", after)
	}
	r.store.Fail(errors.New("connection refused"))
	for range 3 {
		r.tick()
	}
	if n := strings.Count(r.log.String(), "connection refused"); n != 1 {
		t.Fatalf("the failure was logged %d times:\n%s", n, r.log)
	}
	if len(r.fleet.reasons()) != 0 {
		t.Fatalf("events %v", r.fleet.reasons())
	}
}

func equal(a, b []slum.EventReason) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// metric is a gauge's or counter's value, or a histogram's count.
func metric(t *testing.T, g *Guard, name string) float64 {
	t.Helper()
	mfs, err := g.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		total := 0.0
		for _, m := range mf.GetMetric() {
			switch {
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Histogram != nil:
				total += float64(m.Histogram.GetSampleCount())
			}
		}
		return total
	}
	return 0
}

// The guard keeps only replicated tenants, with the instances that should
// run: a fleet of local tenants costs it nothing per instance.
func TestViewKeepsReplicatedTenantsOnly(t *testing.T) {
	snap := &slum.Snapshot{
		Servers: []slum.Server{{ID: "s1"}, {ID: "s2"}},
		Tenants: []slum.Tenant{
			{ID: "alice", Data: slum.DataReplicated, Replica: aliceReplica},
			{ID: "bob", Data: slum.DataLocal},
		},
		Instances: []slum.Instance{
			{TenantID: "alice", ID: "backup", ServerID: "s2", DesiredState: slum.StateStopped},
			{TenantID: "alice", ID: "prod", ServerID: "s1", DesiredState: slum.StateRunning},
			{TenantID: "bob", ID: "prod", ServerID: "s1", DesiredState: slum.StateRunning},
		},
	}
	v := viewOf(snap)
	if !slices.Equal(v.servers, []string{"s1", "s2"}) {
		t.Errorf("servers: %v", v.servers)
	}
	if len(v.replicated) != 1 || v.replicated[0].tenant.ID != "alice" || !maps.Equal(v.replicated[0].placed, map[string]string{"prod": "s1"}) {
		t.Errorf("replicated: %+v, want alice with prod on s1 alone", v.replicated)
	}
	snap.Tenants[0].Data = slum.DataLocal
	if v := viewOf(snap); len(v.replicated) != 0 {
		t.Errorf("no replicated tenant: %+v", v.replicated)
	}
}

// With no replicated tenant, a tick reads nothing but the revision.
func TestTickWithoutReplicatedTenantsReadsNoStatus(t *testing.T) {
	f := newFleet("s1", map[string]slum.Health{"s1": slum.HealthOnline})
	f.snap.Tenants[0].Data = slum.DataLocal
	src := &countingSource{fleet: f}
	g := New(src, func(replica.Location) (replica.Store, error) {
		t.Fatal("a replica opened with no replicated tenant")
		return nil, nil
	}, Config{Clock: fakeclock.New(time.Unix(0, 0))}, slog.New(slog.DiscardHandler))
	for range 3 {
		if err := g.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if src.snapshots != 1 || src.statuses != 0 {
		t.Errorf("%d snapshots and %d status reads over three ticks at one revision, want 1 and 0", src.snapshots, src.statuses)
	}
}

type countingSource struct {
	*fleet
	snapshots, statuses int
}

func (c *countingSource) Snapshot(ctx context.Context) (*slum.Snapshot, error) {
	c.snapshots++
	return c.fleet.Snapshot(ctx)
}

func (c *countingSource) ListServerStatus(ctx context.Context) ([]slum.ServerStatus, error) {
	c.statuses++
	return c.fleet.ListServerStatus(ctx)
}

// A source with no desired state yet is waited for without a word.
func TestRunWaitsQuietlyForTheDesiredState(t *testing.T) {
	var logged bytes.Buffer
	clk := fakeclock.New(time.Unix(0, 0))
	g := New(notReady{}, nil, Config{Clock: clk}, slog.New(slog.NewTextHandler(&logged, nil)))
	if err := g.Tick(t.Context()); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Tick: %v, want ErrNotReady", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Run(ctx, slum.Fence{}) }()
	for range 3 {
		if !clk.WaitForWaiters(1, 5*time.Second) {
			t.Fatal("the guard did not wait on its clock")
		}
		clk.Advance(time.Second)
	}
	cancel()
	<-done
	if logged.Len() != 0 || errorsCounted(t, g) != 0 {
		t.Errorf("waiting for the desired state was logged or counted as an error: %q", logged.String())
	}
}

type notReady struct{ *fleet }

func (notReady) Revision(context.Context) (int64, error)          { return 0, ErrNotReady }
func (notReady) Snapshot(context.Context) (*slum.Snapshot, error) { return nil, ErrNotReady }

func errorsCounted(t *testing.T, g *Guard) float64 {
	t.Helper()
	families, err := g.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "slum_replica_lease_errors_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no slum_replica_lease_errors_total")
	return 0
}
