package reconcile

import (
	"fmt"
	"maps"
	"runtime"
	"testing"
	"unsafe"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/observed"
)

// A plan where nothing changed, made from the previous one, allocates a
// small fixed amount, not a record per instance or tenant: at 100,000
// instances every plan of a quiet fleet would otherwise cost megabytes.
// One where one copy's health changed allocates for that copy's server
// and the arrays of records it changes, not for the whole fleet.
func TestNoopPlanAllocatesLittle(t *testing.T) {
	for _, n := range []int{1000, 8000} {
		t.Run(fmt.Sprintf("instances=%d", n), func(t *testing.T) {
			var sc scenario
			servers := []string{"s1", "s2", "s3", "s4"}
			runs := map[string][]string{}
			for i := range n {
				key, s := fmt.Sprintf("t%05d:prod", i), servers[i%len(servers)]
				sc.instances = append(sc.instances, ins{key: key, server: s})
				runs[s] = append(runs[s], name(key, ""))
				sc.ledger = append(sc.ledger, s+"/"+name(key, ""))
			}
			for _, s := range servers {
				sc.servers = append(sc.servers, srv{id: s, runs: runs[s]})
			}
			in := sc.input()
			in.Prev = Planner{}.Plan(in)
			in.Prev = Planner{}.Plan(in)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			const plans = 10
			for range plans {
				in.Prev = Planner{}.Plan(in)
			}
			runtime.ReadMemStats(&after)
			perPlan := (after.TotalAlloc - before.TotalAlloc) / plans
			t.Logf("a no-op plan of %d instances allocates %d bytes", n, perPlan)
			if limit := uint64(16 << 10); perPlan > limit+uint64(n)/8*2 {
				t.Fatalf("a no-op plan of %d instances allocates %d bytes, more than %d", n, perPlan, limit+uint64(n)/8*2)
			}
			if n < 4*chunkLen {
				return // a fleet of one or two arrays changes them whole
			}
			s1 := in.Observed["s1"]
			listed := maps.Clone(s1.Instances)
			listed[name(sc.instances[0].key, "")] = slum.InstanceDegraded
			in.Observed["s1"] = &observed.Snapshot{Server: "s1", Health: s1.Health, Listed: true, ListedAt: s1.ListedAt, Content: s1.Content + 1, Instances: listed}
			runtime.ReadMemStats(&before)
			changed := Planner{}.Plan(in)
			runtime.ReadMemStats(&after)
			if got := changed.Observations.At(0).Health; got != slum.InstanceDegraded {
				t.Fatalf("the changed copy is %q", got)
			}
			whole := uint64(n) * uint64(unsafe.Sizeof(Observation{})+unsafe.Sizeof(Serving{}))
			took := after.TotalAlloc - before.TotalAlloc
			t.Logf("a plan of %d instances with one copy's health changed allocates %d bytes (a whole set of records: %d)", n, took, whole)
			if took > whole/2 {
				t.Fatalf("a plan with one change allocates %d bytes, more than half a whole set of records (%d)", took, whole)
			}
		})
	}
}
