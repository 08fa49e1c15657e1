package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/internal/fleettest"
	"github.com/slum-fleet/slum/store"
)

// fleetText is a fleet file of servers servers and n instances: n/2
// tenants with a prod and a backup each, placed by slum.
func fleetText(servers, n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nservers:\n")
	for i := 0; i < servers; i++ {
		fmt.Fprintf(&b, "  - {id: s%d, url: 'http://10.%d.%d.%d:8080', region: r%d, capacity_mb: 65536, token_env: TOK}\n",
			i, i/65536%256, i/256%256, i%256, i%4)
	}
	b.WriteString("tenants:\n")
	for i := 0; i < n/2; i++ {
		fmt.Fprintf(&b, "  - id: t%d\n    domain: t%d.example.com\n    region: r%d\n    instances:\n", i, i, i%4)
		b.WriteString("      - {id: prod, process: api, memory_mb: 128}\n      - {id: backup, process: api, memory_mb: 128}\n")
	}
	return []byte(b.String())
}

// loadFleet reads a fleet file as 'slum apply -f' does: parsed, its
// tokens read, packed for the fleet.
func loadFleet(b *testing.B, path string) slum.FileSource {
	f, err := desired.LoadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	src, err := desired.Send(f)
	if err != nil {
		b.Fatal(err)
	}
	return src
}

// BenchmarkApply applies a fleet file of n instances over 1,000 servers to
// an empty database, then again unchanged. Figures: first_apply_s and
// reapply_s (each from reading the file to commit), db_MB.
func BenchmarkApply(b *testing.B) {
	b.Setenv("TOK", "bench-token")
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, "fleet.yaml")
			if err := os.WriteFile(path, fleetText(1000, n), 0o644); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dbPath := filepath.Join(dir, fmt.Sprintf("bench-%d.db", i))
				s, err := Open(ctx, dbPath)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				plan, err := s.Apply(ctx, loadFleet(b, path), slum.ApplyOptions{})
				first := time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				start = time.Now()
				again, err := s.Apply(ctx, loadFleet(b, path), slum.ApplyOptions{})
				reapply := time.Since(start)
				b.StopTimer()
				if err != nil || !again.Empty() {
					b.Fatalf("re-apply: %v, %d changes", err, len(again.Changes))
				}
				if c, _, _ := plan.Counts(); c != 1000+n+n/2 {
					b.Fatalf("created %d", c)
				}
				s.Close()
				size := int64(0)
				for _, suffix := range []string{"", "-wal"} {
					if fi, err := os.Stat(dbPath + suffix); err == nil {
						size += fi.Size()
					}
				}
				b.ReportMetric(first.Seconds(), "first_apply_s")
				b.ReportMetric(reapply.Seconds(), "reapply_s")
				b.ReportMetric(float64(size)/(1<<20), "db_MB")
				b.StartTimer()
			}
		})
	}
}

// BenchmarkStore is the controller's writes and reads on SQLite; the same
// on Postgres is postgres' BenchmarkStore.
func BenchmarkStore(b *testing.B) {
	fleettest.Bench(b, 10000, func(t testing.TB) *store.Store { return openStore(t) })
}

// BenchmarkSnapshot reads the whole desired state of 100,000 instances on
// 1,000 servers, as the controller does at start and on every change of
// revision. Figures: ms per read; retained_MB, what the snapshot holds
// once read.
func BenchmarkSnapshot(b *testing.B) {
	b.Setenv("TOK", "bench-token")
	dir := b.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(path, fleetText(1000, 100000), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Apply(ctx, loadFleet(b, path), slum.ApplyOptions{}); err != nil {
		b.Fatal(err)
	}
	var snap *slum.Snapshot
	b.ReportAllocs()
	for b.Loop() {
		snap = nil
		if snap, err = s.Snapshot(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	var with runtime.MemStats
	runtime.ReadMemStats(&with)
	runtime.KeepAlive(snap)
	snap = nil
	runtime.GC()
	var without runtime.MemStats
	runtime.ReadMemStats(&without)
	b.ReportMetric(float64(with.HeapAlloc-without.HeapAlloc)/(1<<20), "retained_MB")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/read")
}
