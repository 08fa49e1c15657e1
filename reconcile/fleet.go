package reconcile

import (
	"sort"

	"github.com/slum-fleet/slum/desired"
)

// Fleet is a desired-state snapshot indexed for planning. It is built once
// per revision and never modified, so plans and the executor's send-time
// checks can share it.
type Fleet struct {
	*desired.Snapshot
	Servers   map[string]*desired.Server
	Tenants   map[string]*desired.Tenant
	ByServer  map[string][]Desired  // instances by current server
	ByKey     map[string]*Desired   // by tenant:instance, into ByServer
	ByTenant  map[string][]*Desired // by tenant, in rank order
	Instances int
	// Removed holds the keys of instances removed on purpose whose copies
	// may still run.
	Removed map[string]bool
}

// NewFleet indexes a snapshot.
func NewFleet(s *desired.Snapshot) *Fleet {
	f := &Fleet{Snapshot: s, Servers: make(map[string]*desired.Server, len(s.Servers)),
		Tenants: make(map[string]*desired.Tenant, len(s.Tenants)), ByServer: make(map[string][]Desired, len(s.Servers)),
		ByKey: make(map[string]*Desired, len(s.Instances)), ByTenant: make(map[string][]*Desired, len(s.Tenants)),
		Instances: len(s.Instances), Removed: make(map[string]bool, len(s.Removed))}
	for _, r := range s.Removed {
		f.Removed[r.TenantID+":"+r.InstanceID] = true
	}
	for i := range s.Servers {
		f.Servers[s.Servers[i].ID] = &s.Servers[i]
	}
	for i := range s.Tenants {
		f.Tenants[s.Tenants[i].ID] = &s.Tenants[i]
	}
	count := make(map[string]int, len(s.Servers))
	for i := range s.Instances {
		count[s.Instances[i].ServerID]++
	}
	for id, n := range count {
		f.ByServer[id] = make([]Desired, 0, n)
	}
	for _, in := range s.Instances {
		f.ByServer[in.ServerID] = append(f.ByServer[in.ServerID], NewDesired(in))
	}
	for id := range f.ByServer {
		ds := f.ByServer[id]
		for i := range ds {
			d := &ds[i]
			f.ByKey[d.Key] = d
			f.ByTenant[d.TenantID] = append(f.ByTenant[d.TenantID], d)
		}
	}
	for _, ds := range f.ByTenant {
		sort.Slice(ds, func(i, j int) bool {
			if ds[i].Rank != ds[j].Rank {
				return ds[i].Rank < ds[j].Rank
			}
			return ds[i].ID < ds[j].ID
		})
	}
	return f
}

// Approved returns the id of the approved hold of kind with fingerprint,
// or 0.
func (f *Fleet) Approved(kind desired.HoldKind, fingerprint string) int64 {
	for _, h := range f.Holds {
		if h.Kind == kind && h.Fingerprint == fingerprint && h.State == desired.HoldApproved {
			return h.ID
		}
	}
	return 0
}
