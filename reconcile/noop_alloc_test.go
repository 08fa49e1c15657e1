package reconcile

import (
	"fmt"
	"runtime"
	"testing"
)

// A plan where nothing changed, made from the previous one, allocates a
// small fixed amount, not a record per instance or tenant: at 100,000
// instances every plan of a quiet fleet would otherwise cost megabytes.
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
		})
	}
}
