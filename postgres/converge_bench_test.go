package postgres

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/internal/fleettest"
	"github.com/slum-fleet/slum/observed/sim"
	"github.com/slum-fleet/slum/reconcile"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// BenchmarkConvergeEngines converges 10,000 instances over 10 simulated
// servers from empty, then times a pass with nothing to do, on SQLite and
// on Postgres in one run (each iteration runs both, one after the other,
// so the machine's load falls on both alike). Figures per engine:
// converge_s and noop_pass_ms; scripts/bench.sh prints Postgres' against
// SQLite's beside the target (within 1.5×).
func BenchmarkConvergeEngines(b *testing.B) {
	const servers, n = 10, 10000
	engines := []struct {
		name string
		open func(testing.TB) *store.Store
	}{
		{"sqlite", func(t testing.TB) *store.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "bench.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"postgres", func(t testing.TB) *store.Store { return openStoreWithClock(t, nil) }},
	}
	for _, e := range engines {
		b.Run("engine="+e.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				converge, noop := convergeOnce(b, e.open(b), servers, n)
				b.ReportMetric(converge.Seconds(), "converge_s")
				b.ReportMetric(float64(noop.Microseconds())/1000, "noop_pass_ms")
				b.StartTimer()
			}
		})
	}
}

// convergeOnce places n instances over servers new simulators in st and
// converges them, returning how long that took and how long a pass with
// nothing to do took then.
func convergeOnce(b *testing.B, st *store.Store, servers, n int) (converge, noop time.Duration) {
	ctx := context.Background()
	var text strings.Builder
	text.WriteString("version: 1\nservers:\n")
	sims := make([]*sim.Server, servers)
	for i := range servers {
		s := sim.New(sim.Config{Token: "tok", Processes: map[string]sim.Process{"api": {}}})
		url, err := s.Start("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Close)
		sims[i] = s
		fmt.Fprintf(&text, "  - {id: s%d, url: '%s', capacity_mb: 10000000, token_env: TOK}\n", i, url)
	}
	text.WriteString("tenants:\n")
	for i := range n {
		fmt.Fprintf(&text, "  - id: t%d\n    domain: t%d.example.com\n    instances: [{id: prod, process: api, server: s%d, memory_mb: 1}]\n", i, i, i%servers)
	}
	file, err := desired.Parse("bench.yaml", []byte(text.String()))
	if err != nil {
		b.Fatal(err)
	}
	if err := file.ResolveTokens(func(string) (string, bool) { return "tok", true }, ""); err != nil {
		b.Fatal(err)
	}
	if _, err := st.Apply(ctx, fleettest.Source(b, file), slum.ApplyOptions{}); err != nil {
		b.Fatal(err)
	}
	lease, err := st.AcquireLease(ctx, slum.ControllerLease, "bench/1/a", "", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	cfg := reconcile.DefaultConfig()
	cfg.PollInterval, cfg.Clock = time.Hour, clock.Real{}
	c := reconcile.New(st, reconcile.HTTPClientFactory(cfg.ActionTimeout), cfg, nil, nil)
	start := time.Now()
	for {
		p, err := c.Sync(ctx, lease.Fence(), true)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Spawns)+len(p.Stops)+len(p.Reschedules)+len(p.Waits) == 0 {
			break
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("no convergence in 5 minutes: %d spawns, %d stops, %d reschedules, %d waits left", len(p.Spawns), len(p.Stops), len(p.Reschedules), len(p.Waits))
		}
	}
	converge = time.Since(start)
	start = time.Now()
	if p, err := c.Sync(ctx, lease.Fence(), true); err != nil || !p.Idle() {
		b.Fatalf("noop pass: %+v %v", p, err)
	}
	noop = time.Since(start)
	total := 0
	for _, s := range sims {
		total += s.Len()
	}
	if total != n {
		b.Fatalf("%d instances run, want %d", total, n)
	}
	return converge, noop
}
