package store

import (
	"fmt"
	"slices"
	"testing"

	"github.com/slum-fleet/slum"
)

func TestSplitReport(t *testing.T) {
	insts := func(n int) []slum.InstanceStatus {
		out := make([]slum.InstanceStatus, n)
		for i := range out {
			out[i] = slum.InstanceStatus{TenantID: fmt.Sprintf("t%d", i), InstanceID: "prod"}
		}
		return out
	}
	tenants := func(n int) []slum.TenantStatus {
		out := make([]slum.TenantStatus, n)
		for i := range out {
			out[i] = slum.TenantStatus{TenantID: fmt.Sprintf("t%d", i)}
		}
		return out
	}
	for _, c := range []struct {
		name               string
		instances, tenants int
		want               [][2]int // instance and tenant rows of each part
	}{
		{"empty", 0, 0, [][2]int{{0, 0}}},
		{"small: one part", 3, 2, [][2]int{{3, 2}}},
		{"exactly a batch", 4, 6, [][2]int{{4, 6}}},
		{"instances spill over", 25, 0, [][2]int{{10, 0}, {10, 0}, {5, 0}}},
		{"instances then tenants share a part", 15, 12, [][2]int{{10, 0}, {5, 5}, {0, 7}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := slum.Report{Instances: insts(c.instances), Tenants: tenants(c.tenants),
				Events: []slum.Event{{Object: "fleet"}}, Forget: []slum.Placement{{Name: "x"}}, DropServers: []string{"s9"}}
			parts := splitReport(r, 10)
			var got [][2]int
			var seenI, seenT []string
			for i, p := range parts {
				got = append(got, [2]int{len(p.Instances), len(p.Tenants)})
				for _, st := range p.Instances {
					seenI = append(seenI, st.TenantID)
				}
				for _, st := range p.Tenants {
					seenT = append(seenT, st.TenantID)
				}
				last := i == len(parts)-1
				if carries := len(p.Events) > 0 && len(p.Forget) > 0 && len(p.DropServers) > 0; carries != last {
					t.Errorf("part %d of %d carries events, forgets and drops: %v", i, len(parts), carries)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("parts %v, want %v", got, c.want)
			}
			for i, id := range seenI {
				if id != fmt.Sprintf("t%d", i) {
					t.Fatalf("instance rows out of order or lost: %v", seenI)
				}
			}
			if len(seenI) != c.instances || len(seenT) != c.tenants {
				t.Errorf("%d instance and %d tenant rows written, want %d and %d", len(seenI), len(seenT), c.instances, c.tenants)
			}
		})
	}
}
