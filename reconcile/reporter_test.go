package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/internal/fakeclock"
)

// slowStore takes writeTook of the fake clock for every report.
type slowStore struct {
	clock     *fakeclock.Clock
	writeTook time.Duration
	writes    chan slum.Report
}

func (s *slowStore) WriteReport(_ context.Context, _ slum.Fence, r slum.Report) error {
	s.clock.Advance(s.writeTook)
	s.writes <- kept(r)
	return nil
}

// kept is a copy of a report that a store may keep: the reporter reuses
// the arrays of the report it wrote.
func kept(r slum.Report) slum.Report {
	r.Instances, r.Tenants = slices.Clone(r.Instances), slices.Clone(r.Tenants)
	return r
}

func (s *slowStore) SyncHolds(context.Context, slum.Fence, []slum.HoldSpec) ([]slum.Hold, error) {
	return nil, nil
}

func (s *slowStore) FinishHold(context.Context, slum.Fence, int64) error { return nil }

func TestReporterRestsAfterASlowWrite(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := &slowStore{clock: clk, writeTook: 2 * time.Second, writes: make(chan slum.Report, 4)}
	r := NewReporter(st, slum.Fence{}, clk, slog.New(slog.DiscardHandler), time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	event := func(msg string) Update {
		return Update{Events: eventLog{events: []slum.Event{{At: clk.Now(), Object: "fleet", Reason: slum.ReasonServingChanged, Message: msg}}}}
	}
	waitWrite := func(what string) slum.Report {
		t.Helper()
		select {
		case rep := <-st.writes:
			return rep
		case <-time.After(5 * time.Second):
			t.Fatalf("no write of %s", what)
			return slum.Report{}
		}
	}

	r.Submit(event("first"), true)
	if rep := waitWrite("the first update"); len(rep.Events) != 1 || rep.Events[0].Message != "first" {
		t.Fatalf("first write %+v", rep.Events)
	}
	// The write took 2s: an urgent update now waits as long, on a timer.
	r.Submit(event("second"), true)
	if !clk.WaitForWaiters(2, 5*time.Second) { // its ticker and the rest
		t.Fatal("the reporter did not rest after a slow write")
	}
	select {
	case rep := <-st.writes:
		t.Fatalf("wrote %+v at once after a 2s write", rep.Events)
	default:
	}
	r.Submit(event("third"), true) // merged into the same write
	clk.Advance(2 * time.Second)
	rep := waitWrite("the updates after the rest")
	if len(rep.Events) != 2 || rep.Events[0].Message != "second" || rep.Events[1].Message != "third" {
		t.Fatalf("after the rest wrote %+v, want second and third together", rep.Events)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A tenant gets a status row once something serves it (a fleet
// converging from empty writes each tenant once), and a restarted
// controller rewrites only the tenants whose serving copies changed.
func TestReporterWritesTenantsThatChanged(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := &slowStore{clock: clk, writes: make(chan slum.Report, 8)}
	r := NewReporter(st, slum.Fence{}, clk, slog.New(slog.DiscardHandler), time.Hour)
	ctx := context.Background()
	on := func(server string) []slum.CopyRef { return []slum.CopyRef{{Instance: "prod", Server: server}} }
	// What the last controller wrote: carol served on s1, dave on s2.
	r.SeedTenants([]slum.TenantStatus{{TenantID: "carol", Serving: on("s1")}, {TenantID: "dave", Serving: on("s2")}})
	f := NewFleet(&slum.Snapshot{Revision: 1, Tenants: []slum.Tenant{{ID: "alice"}, {ID: "bob"}, {ID: "carol"}, {ID: "dave"}, {ID: "erin"}}})
	flush := func(serving ...Serving) slum.Report {
		t.Helper()
		r.Merge(Update{Fleet: f, Plan: &Plan{Revision: 1, Serving: ChunkedOf(serving)}})
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		return <-st.writes
	}
	tenants := func(rep slum.Report) []string {
		var ids []string
		for _, ts := range rep.Tenants {
			ids = append(ids, ts.TenantID)
		}
		return ids
	}
	erin := Serving{Tenant: "erin", Reason: "its server s9 is dead"}
	rep := flush(Serving{Tenant: "alice", Reason: reasonNoCopyYet}, NewServing("bob", on("s1"), nil, time.Time{}),
		NewServing("carol", on("s1"), nil, time.Time{}), NewServing("dave", on("s3"), nil, time.Time{}), erin)
	if got := tenants(rep); !slices.Equal(got, []string{"bob", "dave", "erin"}) {
		t.Fatalf("first write after a restart wrote tenants %v, want bob (newly served), dave (moved) and erin (why nothing serves her); alice's copy is on its way and she has no row yet", got)
	}
	if len(rep.Events) != 1 || rep.Events[0].Object != "tenant/dave" {
		t.Fatalf("events %+v, want dave's move only", rep.Events)
	}
	rep = flush(NewServing("alice", on("s2"), nil, time.Time{}), NewServing("bob", on("s1"), nil, time.Time{}),
		Serving{Tenant: "carol", Reason: "s1 is dead"}, NewServing("dave", on("s3"), nil, time.Time{}), erin)
	if got := tenants(rep); !slices.Equal(got, []string{"alice", "carol"}) {
		t.Fatalf("second write wrote tenants %v, want alice (served now) and carol (served by nothing now)", got)
	}
	if len(rep.Events) != 1 || rep.Events[0].Object != "tenant/carol" {
		t.Fatalf("events %+v, want carol's loss only", rep.Events)
	}
}

// partStore records every report and fails the writes it is told to.
type partStore struct {
	slowStore
	reports []slum.Report
	writes  int
	failAt  map[int]bool // by write number, from 0
}

func (s *partStore) WriteReport(_ context.Context, _ slum.Fence, r slum.Report) error {
	n := s.writes
	s.writes++
	s.reports = append(s.reports, kept(r))
	if s.failAt[n] {
		return errors.New("database is locked")
	}
	return nil
}

// A large fleet's status is written in parts of at most reportRows rows,
// each row once; a part that fails is written again at the next flush,
// and what the parts before it wrote is not.
func TestReporterWritesALargeFleetInParts(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	const n = 2*reportRows + 100
	f := oneCopyEach(n, "s1")
	var obs []Observation
	var serving []Serving
	for i := range f.Desired {
		d := &f.Desired[i]
		obs = append(obs, observation(d, slum.PhaseRunning, "", "", true))
		serving = append(serving, NewServing(d.TenantID, []slum.CopyRef{{Instance: "prod", Server: "s1"}}, nil, time.Time{}))
	}
	plan := &Plan{Revision: 1, Observations: ChunkedOf(obs), Serving: ChunkedOf(serving)}
	st := &partStore{failAt: map[int]bool{2: true}}
	r := NewReporter(st, slum.Fence{}, clk, slog.New(slog.DiscardHandler), time.Hour)
	r.Merge(Update{Fleet: f, Plan: plan, Events: eventLog{events: []slum.Event{{At: clk.Now(), Object: "fleet", Message: "one"}}}})
	if err := r.Flush(context.Background()); err == nil {
		t.Fatal("a flush whose third part failed returned no error")
	}
	if len(st.reports) != 3 {
		t.Fatalf("%d writes, want 3: two parts, then the one that failed", len(st.reports))
	}
	for i, rep := range st.reports {
		if rows := len(rep.Instances) + len(rep.Tenants); rows > reportRows {
			t.Fatalf("part %d holds %d rows, more than %d", i, rows, reportRows)
		}
		if want := map[bool]int{true: 1, false: 0}[i == 0]; len(rep.Events) != want {
			t.Fatalf("part %d holds %d events, want %d (the events go with the first part)", i, len(rep.Events), want)
		}
	}
	// The next flush writes what the failed part held and what followed,
	// and nothing the first two wrote.
	st.reports = nil
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	instances, tenants := map[slum.InstanceKey]int{}, map[string]int{}
	for _, rep := range st.reports {
		for _, s := range rep.Instances {
			instances[s.Key()]++
		}
		for _, s := range rep.Tenants {
			tenants[s.TenantID]++
		}
	}
	if want := n - 2*reportRows; len(tenants) != want {
		t.Fatalf("the retry wrote %d tenant rows, want the %d the first flush did not (tenants go first)", len(tenants), want)
	}
	if len(instances) != n {
		t.Fatalf("the retry wrote %d instance rows, want all %d (none was written before)", len(instances), n)
	}
	for k, c := range instances {
		if c != 1 {
			t.Fatalf("%s written %d times", k, c)
		}
	}
	st.reports = nil
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(st.reports) != 1 || !st.reports[0].Empty() {
		t.Fatalf("a flush of the same plan wrote %+v, want one empty report", st.reports)
	}
}

// A flush that failed after writing some parts leaves rows that match
// neither the plan written whole before nor the one it was writing: a
// later plan like the first one writes them back.
func TestReporterRewritesWhatAFailedFlushLeftBehind(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	const n = reportRows + 100
	f := oneCopyEach(n, "s1", "s2")
	planOf := func(health slum.InstanceHealth, server string) *Plan {
		var obs []Observation
		var serving []Serving
		for i := range f.Desired {
			d := &f.Desired[i]
			obs = append(obs, observation(d, slum.PhaseRunning, health, "", true))
			serving = append(serving, NewServing(d.TenantID, []slum.CopyRef{{Instance: "prod", Server: server}}, nil, time.Time{}))
		}
		return &Plan{Revision: 1, Observations: ChunkedOf(obs), Serving: ChunkedOf(serving)}
	}
	st := &partStore{failAt: map[int]bool{}}
	r := NewReporter(st, slum.Fence{}, clk, slog.New(slog.DiscardHandler), time.Hour)
	flush := func(p *Plan) error {
		r.Merge(Update{Fleet: f, Plan: p})
		st.reports = nil
		return r.Flush(context.Background())
	}
	if err := flush(planOf(slum.InstanceHealthy, "s1")); err != nil {
		t.Fatal(err)
	}
	// The next plan moves every tenant and degrades every copy; its
	// second part fails: the first part's tenant rows are written.
	st.failAt[st.writes+1] = true
	if err := flush(planOf(slum.InstanceDegraded, "s2")); err == nil {
		t.Fatal("a flush whose second part failed returned no error")
	}
	// Back to the first plan's state, in a plan of its own.
	if err := flush(planOf(slum.InstanceHealthy, "s1")); err != nil {
		t.Fatal(err)
	}
	tenants := 0
	for _, rep := range st.reports {
		for _, ts := range rep.Tenants {
			if len(ts.Serving) != 1 || ts.Serving[0].Server != "s1" {
				t.Fatalf("tenant %s written as served by %v", ts.TenantID, ts.Serving)
			}
			tenants++
		}
	}
	if tenants != reportRows {
		t.Fatalf("%d tenant rows written back to s1, want the %d the failed flush moved to s2", tenants, reportRows)
	}
}

// The reporter does not keep the plan it last wrote alive: once the
// controller has let go of it, the next plan is compared with what the
// memo says was written, and only what changed is written.
func TestReporterLetsGoOfTheLastPlanWritten(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f := oneCopyEach(100, "s1", "s2")
	// planOf is every copy healthy and on s1 but tenant odd's, degraded
	// and served from s2.
	planOf := func(odd int) *Plan {
		var obs []Observation
		var serving []Serving
		for i := range f.Desired {
			d := &f.Desired[i]
			health, server := slum.InstanceHealthy, "s1"
			if i == odd {
				health, server = slum.InstanceDegraded, "s2"
			}
			obs = append(obs, observation(d, slum.PhaseRunning, health, "", true))
			serving = append(serving, NewServing(d.TenantID, []slum.CopyRef{{Instance: "prod", Server: server}}, nil, time.Time{}))
		}
		return &Plan{Revision: 1, Observations: ChunkedOf(obs), Serving: ChunkedOf(serving)}
	}
	st := &partStore{failAt: map[int]bool{}}
	r := NewReporter(st, slum.Fence{}, clk, slog.New(slog.DiscardHandler), time.Hour)
	r.Merge(Update{Fleet: f, Plan: planOf(-1)})
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The next plan replaces it in the reporter; nothing else holds the
	// first plan's arrays.
	r.Merge(Update{Fleet: f, Plan: planOf(7)})
	runtime.GC()
	if r.written.observations.arrays[0].Value() != nil || r.written.serving.arrays[0].Value() != nil {
		t.Fatal("the reporter keeps the arrays of a plan nobody else holds")
	}
	st.reports = nil
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var instances, tenants []string
	for _, rep := range st.reports {
		for _, s := range rep.Instances {
			instances = append(instances, s.TenantID)
		}
		for _, s := range rep.Tenants {
			tenants = append(tenants, s.TenantID)
		}
	}
	if !slices.Equal(instances, []string{"t00007"}) || !slices.Equal(tenants, []string{"t00007"}) {
		t.Fatalf("wrote instances %v and tenants %v, want t00007's only", instances, tenants)
	}
}

// oneCopyEach is a fleet of n tenants (t00000, t00001, ...) of one running
// instance, prod, each on the first of servers.
func oneCopyEach(n int, servers ...string) *Fleet {
	snap := &slum.Snapshot{Revision: 1}
	for _, id := range servers {
		snap.Servers = append(snap.Servers, slum.Server{ID: id})
	}
	for i := range n {
		id := fmt.Sprintf("t%05d", i)
		snap.Tenants = append(snap.Tenants, slum.Tenant{ID: id})
		snap.Instances = append(snap.Instances, slum.Instance{TenantID: id, ID: "prod", Process: "api", ServerID: servers[0], DesiredState: slum.StateRunning})
	}
	return NewFleet(snap)
}

// A plan that shares arrays with the plan last written has only its own
// arrays' records compared and written: each changed row once, over
// parts whose cursor resumes mid-array, whether or not the arrays it
// replaced are still alive.
func TestReporterWritesOnlyWhatAPlanDoesNotShare(t *testing.T) {
	for _, collected := range []bool{false, true} {
		t.Run(fmt.Sprintf("replaced arrays collected %v", collected), func(t *testing.T) {
			clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			const n = 2*reportRows + 100
			f := oneCopyEach(n, "s1", "s2")
			on := func(server string) []slum.CopyRef { return []slum.CopyRef{{Instance: "prod", Server: server}} }
			var obs []Observation
			var serving []Serving
			for i := range f.Desired {
				d := &f.Desired[i]
				obs = append(obs, observation(d, slum.PhaseRunning, slum.InstanceHealthy, "", true))
				serving = append(serving, NewServing(d.TenantID, on("s1"), nil, time.Time{}))
			}
			first := &Plan{Revision: 1, Observations: ChunkedOf(obs), Serving: ChunkedOf(serving)}
			st := &partStore{failAt: map[int]bool{}}
			r := NewReporter(st, slum.Fence{}, clk, slog.New(slog.DiscardHandler), time.Hour)
			r.Merge(Update{Fleet: f, Plan: first})
			if err := r.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The next plan: arrays 0 to 4 changed whole, one record in
			// each of arrays 6 (its first) and 7, the rest shared.
			ow, sw := sharingChunked(first.Observations), sharingChunked(first.Serving)
			changed := map[string]bool{}
			for i := range n {
				if i < 5*chunkLen || i == 6*chunkLen || i == 7*chunkLen+9 {
					d := &f.Desired[i]
					*ow.at(i) = observation(d, slum.PhaseRunning, slum.InstanceDegraded, "", true)
					*sw.at(i) = NewServing(d.TenantID, on("s2"), nil, time.Time{})
					changed[d.TenantID] = true
				}
			}
			next := &Plan{Revision: 1, Observations: ow.done(), Serving: sw.done()}
			r.Merge(Update{Fleet: f, Plan: next})
			if collected {
				first = nil
				runtime.GC()
				if r.written.observations.array(next.Observations, 0) != nil {
					t.Fatal("the first plan's replaced array is still alive")
				}
			}
			st.reports = nil
			if err := r.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			instances, tenants := map[string]int{}, map[string]int{}
			for _, rep := range st.reports {
				for _, s := range rep.Instances {
					instances[s.TenantID]++
				}
				for _, s := range rep.Tenants {
					tenants[s.TenantID]++
				}
			}
			if len(st.reports) < 3 {
				t.Fatalf("%d parts, want the rows over three at least", len(st.reports))
			}
			for what, rows := range map[string]map[string]int{"instance": instances, "tenant": tenants} {
				if len(rows) != len(changed) {
					t.Errorf("%d %s rows written, want the %d changed", len(rows), what, len(changed))
				}
				for id, k := range rows {
					if !changed[id] || k != 1 {
						t.Fatalf("%s %s written %d times (changed: %v)", what, id, k, changed[id])
					}
				}
			}
			runtime.KeepAlive(first)
		})
	}
}

// A flush writes its events in the order they happened: a serving change
// it finds is written after the controller's event that caused it (a
// server declared dead a moment before), so their ids follow time.
func TestReporterWritesEventsInTheOrderTheyHappened(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := &slowStore{clock: clk, writes: make(chan slum.Report, 8)}
	r := NewReporter(st, slum.Fence{}, clk, slog.New(slog.DiscardHandler), time.Hour)
	on := func(server string) []slum.CopyRef { return []slum.CopyRef{{Instance: "prod", Server: server}} }
	r.SeedTenants([]slum.TenantStatus{{TenantID: "alice", Serving: on("s1")}})
	f := NewFleet(&slum.Snapshot{Revision: 1, Tenants: []slum.Tenant{{ID: "alice"}}})
	dead := slum.Event{At: clk.Now().Add(-time.Millisecond), Object: slum.ServerRef("s1"), Reason: slum.ReasonServerDead, Message: "server is dead"}
	r.Merge(Update{Fleet: f, Plan: &Plan{Revision: 1, Serving: ChunkedOf([]Serving{NewServing("alice", on("s2"), nil, time.Time{})})},
		Events: eventLog{events: []slum.Event{dead}}})
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep := <-st.writes
	var reasons []slum.EventReason
	for _, e := range rep.Events {
		reasons = append(reasons, e.Reason)
	}
	if !slices.Equal(reasons, []slum.EventReason{slum.ReasonServerDead, slum.ReasonServingChanged}) {
		t.Fatalf("events written in the order %v, want the server's death, then the serving change it caused", reasons)
	}
}
