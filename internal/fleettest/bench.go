package fleettest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/store"
)

// Bench measures, on one engine, what the controller does most when it
// converges a fleet of n instances over 10 servers: status reports,
// ledger entries and snapshots. open opens a new, empty store.
func Bench(b *testing.B, n int, open func(testing.TB) *store.Store) {
	ctx := context.Background()
	s := open(b)
	if _, err := s.Apply(ctx, benchFleet(b, 10, n), slum.ApplyOptions{}); err != nil {
		b.Fatal(err)
	}
	lease, err := s.AcquireLease(ctx, "controller", "bench", "", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	insts, err := s.ListInstances(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("WriteReport", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := s.WriteReport(ctx, lease.Fence(), benchReport(insts, i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(len(insts)), "µs/instance")
	})
	b.Run("RecordPlacements", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			ps := make([]slum.Placement, len(insts))
			for j, in := range insts {
				ps[j] = slum.Placement{ServerID: in.ServerID, Name: fmt.Sprintf("%s--%s-%d", in.TenantID, in.ID, i), TenantID: in.TenantID, InstanceID: in.ID}
			}
			if err := s.RecordPlacements(ctx, lease.Fence(), ps); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(len(insts)), "µs/instance")
	})
	b.Run("Snapshot", func(b *testing.B) {
		for b.Loop() {
			snap, err := s.Snapshot(ctx)
			if err != nil || len(snap.Instances) != len(insts) {
				b.Fatalf("snapshot of %d instances: %v", len(snap.Instances), err)
			}
		}
	})
}

// benchReport is a converging controller's report on every instance and
// tenant, its phases changing with i.
func benchReport(insts []slum.Instance, i int) slum.Report {
	phase := []slum.Phase{slum.PhasePending, slum.PhaseRunning}[i%2]
	now := time.Now()
	var r slum.Report
	tenants := map[string]bool{}
	for _, in := range insts {
		r.Instances = append(r.Instances, slum.InstanceStatus{TenantID: in.TenantID, InstanceID: in.ID, ServerID: in.ServerID,
			Phase: phase, Health: slum.InstanceHealthy, ObservedGeneration: in.Generation, UpdatedAt: now})
		if !tenants[in.TenantID] {
			tenants[in.TenantID] = true
			r.Tenants = append(r.Tenants, slum.TenantStatus{TenantID: in.TenantID,
				Serving: []slum.CopyRef{{Instance: in.ID, Server: in.ServerID}}, UpdatedAt: now})
		}
	}
	r.Events = []slum.Event{{At: now, Object: "fleet", Reason: slum.ReasonSpawned, Message: "bench"}}
	return r
}

// benchFleet is a fleet file of servers servers and n instances: n/2
// tenants with a prod and a backup each, placed by slum.
func benchFleet(tb testing.TB, servers, n int) slum.FileSource {
	var b strings.Builder
	b.WriteString("version: 1\nservers:\n")
	for i := range servers {
		fmt.Fprintf(&b, "  - {id: s%d, url: 'http://s%d.test:8080', capacity_mb: 1000000, no_token: true}\n", i, i)
	}
	b.WriteString("tenants:\n")
	for i := range n / 2 {
		fmt.Fprintf(&b, "  - id: t%d\n    domain: t%d.example.com\n    instances:\n", i, i)
		b.WriteString("      - {id: prod, process: api, memory_mb: 128}\n      - {id: backup, process: api, memory_mb: 128}\n")
	}
	f, err := desired.Parse("bench.yaml", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.ResolveTokens(func(string) (string, bool) { return "", false }, tb.TempDir()); err != nil {
		tb.Fatal(err)
	}
	return Source(tb, f)
}
