package reconcile

import (
	"slices"
	"testing"

	"github.com/slum-fleet/slum"
)

// A tenant's instances are listed in rank order, whether the snapshot
// holds them as one run (as the store reads them) or apart.
func TestFleetListsATenantsInstancesInRankOrder(t *testing.T) {
	in := func(tenant, id string, rank int64) slum.Instance {
		return slum.Instance{TenantID: tenant, ID: id, Process: "api", ServerID: "s1", Rank: rank}
	}
	for _, tc := range []struct {
		name      string
		instances []slum.Instance
	}{
		{"runs", []slum.Instance{in("alice", "a", 2), in("alice", "b", 1), in("alice", "c", 1), in("bob", "a", 0)}},
		{"apart", []slum.Instance{in("alice", "a", 2), in("bob", "a", 0), in("alice", "b", 1), in("alice", "c", 1)}},
	} {
		f := NewFleet(&slum.Snapshot{Servers: []slum.Server{{ID: "s1"}}, Instances: tc.instances})
		ids := func(tenant string) []string {
			var out []string
			for _, d := range f.InstancesOf(tenant) {
				out = append(out, d.ID)
			}
			return out
		}
		if got := ids("alice"); !slices.Equal(got, []string{"b", "c", "a"}) {
			t.Errorf("%s: alice's instances %v, want b, c (rank 1, by id), then a (rank 2)", tc.name, got)
		}
		if got := ids("bob"); !slices.Equal(got, []string{"a"}) {
			t.Errorf("%s: bob's instances %v", tc.name, got)
		}
		// Appending to one tenant's list leaves the next tenant's alone.
		_ = append(f.InstancesOf("alice"), &Desired{})
		if got := ids("bob"); !slices.Equal(got, []string{"a"}) {
			t.Errorf("%s: bob's instances %v after alice's list grew", tc.name, got)
		}
	}
}
