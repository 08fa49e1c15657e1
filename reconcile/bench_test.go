package reconcile

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/internal/fleettest"
	"github.com/slum-fleet/slum/observed/sim"
	"github.com/slum-fleet/slum/sqlite"
)

// benchFleet is a fleet of in-process simulators and a database whose
// desired state places n instances evenly over them.
func benchFleet(b testing.TB, servers, n int) *fixture {
	b.Helper()
	cfg := DefaultConfig()
	cfg.PollInterval = time.Hour
	cfg.Clock = clock.Real{}
	f := &fixture{t: b, ctx: context.Background(), sims: map[string]*sim.Server{}, cfg: cfg}
	f.path = filepath.Join(b.TempDir(), "bench.db")
	st, err := sqlite.Open(f.ctx, f.path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	f.store = st
	var text strings.Builder
	text.WriteString("version: 1\nservers:\n")
	for i := 0; i < servers; i++ {
		id := fmt.Sprintf("s%d", i)
		s := sim.New(sim.Config{Token: "tok", Processes: map[string]sim.Process{"api": {}}})
		url, err := s.Start("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Close)
		f.sims[id] = s
		fmt.Fprintf(&text, "  - {id: %s, url: '%s', capacity_mb: 10000000, token_env: TOK}\n", id, url)
	}
	text.WriteString("tenants:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&text, "  - id: t%d\n    domain: t%d.example.com\n    instances: [{id: prod, process: api, server: s%d, memory_mb: 1}]\n", i, i, i%servers)
	}
	file, err := desired.Parse("bench.yaml", []byte(text.String()))
	if err != nil {
		b.Fatal(err)
	}
	if err := file.ResolveTokens(func(string) (string, bool) { return "tok", true }, ""); err != nil {
		b.Fatal(err)
	}
	if _, err := st.Apply(f.ctx, fleettest.Source(b, file), slum.ApplyOptions{}); err != nil {
		b.Fatal(err)
	}
	if f.lease, err = st.AcquireLease(f.ctx, slum.ControllerLease, "bench/1/a", "", time.Hour); err != nil {
		b.Fatal(err)
	}
	return f
}

func rssMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkConverge converges n instances over 100 servers from empty,
// then times a pass with nothing to do. Figures: converge_s (from empty to
// a pass that finds nothing to do), placements/s, noop_pass_ms, and
// heap_MB (the live heap after convergence; the simulators' share is
// measured separately as sim_heap_MB).
func BenchmarkConverge(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				f := benchFleet(b, 100, n)
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				f.ctrl = f.newController()
				b.StartTimer()

				start := time.Now()
				passes := f.converge()
				converge := time.Since(start)
				noopStart := time.Now()
				p, err := f.ctrl.Sync(f.ctx, f.lease.Fence(), true)
				if err != nil || !p.Idle() {
					b.Fatalf("noop pass: %+v %v", p, err)
				}
				noop := time.Since(noopStart)
				b.StopTimer()

				total := 0
				for _, s := range f.sims {
					total += s.Len()
				}
				if total != n {
					b.Fatalf("%d instances run, want %d", total, n)
				}
				runtime.GC()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				b.ReportMetric(converge.Seconds(), "converge_s")
				b.ReportMetric(float64(n)/converge.Seconds(), "placements/s")
				b.ReportMetric(float64(noop.Microseconds())/1000, "noop_pass_ms")
				b.ReportMetric(float64(passes), "passes")
				b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap_MB")
				b.ReportMetric(rssMB(), "rss_MB")
				b.StartTimer()
			}
		})
	}
}

// BenchmarkNoopPass times one pass over a converged fleet of 100,000
// instances on 100 servers: every server listed, everything planned,
// nothing to do. ms/plan is the plan and its report alone, without the
// lists (which the running controller makes in the background).
func BenchmarkNoopPass(b *testing.B) {
	f := benchFleet(b, 100, 100000)
	f.ctrl = f.newController()
	f.converge()
	var planning time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := f.ctrl.Sync(f.ctx, f.lease.Fence(), true)
		if err != nil || !p.Idle() {
			b.Fatalf("%+v %v", p, err)
		}
		start := time.Now()
		f.ctrl.step(f.ctx, true)
		if err := f.ctrl.run.rep.Flush(f.ctx); err != nil {
			b.Fatal(err)
		}
		planning += time.Since(start)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds()-planning.Microseconds())/1000/float64(b.N), "ms/pass")
	b.ReportMetric(float64(planning.Microseconds())/1000/float64(b.N), "ms/plan")
}

// BenchmarkReactToCommit measures how long a running controller takes to
// act on a commit made through another connection to the database (as the
// CLI makes it): from the commit to the spawn arriving at the server, with
// the resync interval far away. Figure: react_ms (mean).
func BenchmarkReactToCommit(b *testing.B) {
	cfg := testConfig()
	cfg.PollInterval = time.Hour
	f := newFixture(b, 1, cfg)
	// The fixture runs on a fake clock; this benchmark times the loop's
	// own pacing, on the real one.
	f.cfg.Clock, f.clock = clock.Real{}, nil
	f.ctrl = f.newController()
	ctx, stop := context.WithCancel(f.ctx)
	defer stop()
	go func() { _ = f.ctrl.Run(ctx, f.lease.Fence()) }()
	for !f.ctrl.Status().Ready {
		time.Sleep(time.Millisecond)
	}
	other, err := sqlite.Open(f.ctx, f.path)
	if err != nil {
		b.Fatal(err)
	}
	defer other.Close()
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, _, err := other.AddTenant(f.ctx, slum.Tenant{ID: fmt.Sprintf("t%d", i), Domain: fmt.Sprintf("t%d.example.com", i)}, spec("prod", "api", "s1")); err != nil {
			b.Fatal(err)
		}
		for f.sims["s1"].Calls("spawn") <= i {
			if time.Since(start) > 10*time.Second {
				b.Fatal("no reaction")
			}
			time.Sleep(100 * time.Microsecond)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "react_ms")
}

// BenchmarkFailover converges 100,000 instances over 100 simulated
// servers with the controller running as 'slum run' does (default fleet
// settings), kills one server (1,000 instances), and measures the time
// from the kill to its detection and from the detection to all of its
// instances running elsewhere. Then 60 of the 100 servers die at once:
// nothing may move, and the hold must be reported.
func BenchmarkFailover(b *testing.B) {
	n := 100000
	if testing.Short() {
		n = 10000
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f := benchFleet(b, 100, n)
		f.cfg.PollInterval = DefaultConfig().PollInterval // as slum run polls
		f.ctrl = f.newController()
		ctx, stop := context.WithCancel(f.ctx)
		done := make(chan error, 1)
		go func() { done <- f.ctrl.Run(ctx, f.lease.Fence()) }()
		total := func() int {
			t := 0
			for _, s := range f.sims {
				t += s.Len()
			}
			return t
		}
		for total() < n {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(2 * time.Second) // settle: statuses written, lists current
		b.StartTimer()

		victim := f.sims["s0"]
		moving := victim.Len()
		kill := time.Now()
		if err := victim.Kill(); err != nil {
			b.Fatal(err)
		}
		var detected time.Time
		for {
			if st, err := f.store.ListServerStatus(f.ctx); err == nil {
				for _, s := range st {
					if s.ServerID == "s0" && s.Health == slum.HealthDead {
						detected = s.HealthSince
					}
				}
			}
			if !detected.IsZero() && total() >= n {
				break
			}
			if time.Since(kill) > 2*time.Minute {
				b.Fatalf("no failover in 2 minutes: %d of %d running", total(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		replaced := time.Now()
		b.StopTimer()
		b.ReportMetric(detected.Sub(kill).Seconds(), "detect_s")
		b.ReportMetric(replaced.Sub(detected).Seconds(), "replace_s")
		b.ReportMetric(float64(moving), "moved")

		// A partition: 60 servers die at once. Nothing moves.
		for j := 1; j <= 60; j++ {
			_ = f.sims[fmt.Sprintf("s%d", j)].SetDown(true)
		}
		held := time.Now()
		for {
			hs, _ := f.store.OpenHolds(f.ctx)
			if len(hs) == 1 && hs[0].Kind == slum.HoldPartition {
				break
			}
			if time.Since(held) > time.Minute {
				b.Fatal("the partition was not held")
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(3 * time.Second)
		ins, _ := f.store.ListInstances(f.ctx)
		movedDuring := 0
		for _, in := range ins {
			if in.FailedOver() && in.HomeServerID != "s0" {
				movedDuring++
			}
		}
		if movedDuring != 0 {
			b.Fatalf("%d instances moved during a partition of 60 servers", movedDuring)
		}
		b.ReportMetric(time.Since(held).Seconds()-3, "partition_held_s")
		stop()
		<-done
	}
}

// BenchmarkPlanFresh plans a converged fleet of 100,000 instances on 100
// servers with no server's share reusable from the previous plan (each
// server's ledger changed): the cost of a plan while a fleet converges.
func BenchmarkPlanFresh(b *testing.B) {
	f := benchFleet(b, 100, 100000)
	f.ctrl = f.newController()
	f.converge()
	c := f.ctrl
	in := c.input(time.Now())
	in.Prev = nil // nothing reused
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := (Planner{}).Plan(in)
		if !p.Idle() {
			b.Fatalf("a converged fleet planned work: %d spawns, %d stops", len(p.Spawns), len(p.Stops))
		}
	}
}

// BenchmarkPlanFromEmpty plans 100,000 instances on 100 servers that run
// none of them yet: the first plan of a fleet converging from empty.
func BenchmarkPlanFromEmpty(b *testing.B) {
	f := benchFleet(b, 100, 100000)
	f.ctrl = f.newController()
	if _, err := f.ctrl.Sync(f.ctx, f.lease.Fence(), false); err != nil {
		b.Fatal(err)
	}
	c := f.ctrl
	in := c.input(time.Now())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if p := (Planner{}).Plan(in); len(p.Spawns) != 100000 {
			b.Fatalf("%d spawns, want 100000", len(p.Spawns))
		}
	}
}

// BenchmarkPlanServerDies plans a converged fleet of 100,000 instances on
// 100 servers the moment one of them (1,000 instances) is declared dead:
// the plan that places its instances elsewhere, reusing the previous
// plan's shares of the other servers as the running controller does.
func BenchmarkPlanServerDies(b *testing.B) {
	f := benchFleet(b, 100, 100000)
	f.ctrl = f.newController()
	f.converge()
	c := f.ctrl
	obs := maps.Clone(c.servers.observed)
	dead := *obs["s0"]
	dead.Health = slum.HealthState{Health: slum.HealthDead, Since: time.Now(), LastDead: time.Now()}
	dead.Seq++
	obs["s0"] = &dead
	in := c.input(time.Now())
	in.Observed = obs
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if p := (Planner{}).Plan(in); len(p.Reschedules) != 1000 {
			b.Fatalf("%d instances placed elsewhere, want 1000", len(p.Reschedules))
		}
	}
}

// BenchmarkNewFleet indexes a snapshot of 100,000 tenants of one instance
// each on 100 servers, as the controller does at every revision. Figure:
// held_MB, what the index keeps beyond the snapshot.
func BenchmarkNewFleet(b *testing.B) {
	snap := &slum.Snapshot{}
	for i := 0; i < 100; i++ {
		snap.Servers = append(snap.Servers, slum.Server{ID: fmt.Sprintf("s%d", i)})
	}
	for i := 0; i < 100000; i++ {
		id := fmt.Sprintf("t%d", i)
		snap.Tenants = append(snap.Tenants, slum.Tenant{ID: id, Domain: id + ".example.com"})
		snap.Instances = append(snap.Instances, slum.Instance{TenantID: id, ID: "prod", Process: "api", ServerID: snap.Servers[i%100].ID})
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f := NewFleet(snap)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(f)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		NewFleet(snap)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "held_MB")
}
