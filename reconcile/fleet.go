package reconcile

import (
	"slices"
	"sort"

	"github.com/slum-fleet/slum"
)

// Fleet is a desired-state snapshot indexed for planning. It is built once
// per revision and never modified, so plans and the executor's send-time
// checks can share it. Servers, tenants and instances have positions
// (their index in the snapshot's slices), which plans use in place of
// string-keyed lookups on the hot path.
type Fleet struct {
	*slum.Snapshot
	Servers     map[string]*slum.Server
	ServerIndex map[string]int // position in Snapshot.Servers
	Tenants     map[string]*slum.Tenant
	// Desired holds every instance, in the snapshot's order; Desired[i]
	// has Index i.
	Desired  []Desired
	OnServer [][]int32 // by server position: positions in Desired, in order
	ByKey    map[slum.InstanceKey]*Desired
	ByName   map[string]*Desired   // by tenement name (process:tenant--instance)
	ByTenant map[string][]*Desired // by tenant, in rank order
	// Removed holds the keys of instances removed on purpose whose copies
	// may still run.
	Removed map[slum.InstanceKey]bool
}

// NewFleet indexes a snapshot.
func NewFleet(s *slum.Snapshot) *Fleet {
	n := len(s.Instances)
	f := &Fleet{Snapshot: s, Servers: make(map[string]*slum.Server, len(s.Servers)),
		ServerIndex: make(map[string]int, len(s.Servers)), Tenants: make(map[string]*slum.Tenant, len(s.Tenants)),
		Desired: make([]Desired, n), OnServer: make([][]int32, len(s.Servers)),
		ByKey: make(map[slum.InstanceKey]*Desired, n), ByName: make(map[string]*Desired, n),
		ByTenant: make(map[string][]*Desired, len(s.Tenants)), Removed: make(map[slum.InstanceKey]bool, len(s.Removed))}
	for i := range s.Servers {
		f.Servers[s.Servers[i].ID] = &s.Servers[i]
		f.ServerIndex[s.Servers[i].ID] = i
	}
	for i := range s.Tenants {
		f.Tenants[s.Tenants[i].ID] = &s.Tenants[i]
	}
	count := make([]int, len(s.Servers))
	for i := range s.Instances {
		count[f.ServerIndex[s.Instances[i].ServerID]]++
	}
	for i, c := range count {
		f.OnServer[i] = make([]int32, 0, c)
	}
	all := make([]*Desired, n)
	for i := range s.Instances {
		in := &s.Instances[i]
		d := &f.Desired[i]
		*d = NewDesired(in)
		d.Index, d.Srv = i, f.ServerIndex[in.ServerID]
		f.OnServer[d.Srv] = append(f.OnServer[d.Srv], int32(i))
		f.ByKey[d.Key] = d
		f.ByName[d.Name] = d
		all[i] = d
	}
	// A tenant's instances are a run of the snapshot's (by tenant): its
	// list is that run of one shared array, not an array of its own per
	// tenant (100,000 of them at 100,000 tenants).
	for start := 0; start < n; {
		t := all[start].TenantID
		end := start + 1
		for end < n && all[end].TenantID == t {
			end++
		}
		if prev, ok := f.ByTenant[t]; ok { // not in the snapshot's order
			f.ByTenant[t] = append(slices.Clip(prev), all[start:end]...)
		} else {
			f.ByTenant[t] = all[start:end:end]
		}
		start = end
	}
	for _, ds := range f.ByTenant {
		sort.Slice(ds, func(i, j int) bool {
			if ds[i].Rank != ds[j].Rank {
				return ds[i].Rank < ds[j].Rank
			}
			return ds[i].ID < ds[j].ID
		})
	}
	for _, k := range s.Removed {
		f.Removed[k] = true
	}
	return f
}

// Approved returns the id of the approved hold of kind with fingerprint,
// or 0.
func (f *Fleet) Approved(kind slum.HoldKind, fingerprint string) int64 {
	for _, h := range f.Holds {
		if h.Kind == kind && h.Fingerprint == fingerprint && h.State == slum.HoldApproved {
			return h.ID
		}
	}
	return 0
}
