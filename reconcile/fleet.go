package reconcile

import (
	"cmp"
	"slices"
	"strings"

	"github.com/slum-fleet/slum"
)

// Fleet is a desired-state snapshot indexed for planning. It is built once
// per revision and never modified, so plans and the executor's send-time
// checks can share it. Servers, tenants and instances have positions
// (their index in the snapshot's slices), which plans use in place of
// string-keyed lookups on the hot path; instances and tenants are found by
// key through position indexes (posIndex), not maps holding a copy of
// every key (servers, a few, are in maps).
type Fleet struct {
	*slum.Snapshot
	Servers     map[string]*slum.Server
	ServerIndex map[string]int // position in Snapshot.Servers
	// Desired holds every instance, in the snapshot's order; Desired[i]
	// has Index i.
	Desired  []Desired
	OnServer [][]int32 // by server position: positions in Desired, in order
	// Removed holds the keys of instances removed on purpose whose copies
	// may still run.
	Removed map[slum.InstanceKey]bool

	tenants posIndex // positions in Snapshot.Tenants, by id
	byKey   posIndex // positions in Desired, by key
	byName  posIndex // positions in Desired, by tenement name
	// Each tenant's instances, in rank order, are a run of byTenant:
	// run r is byTenant[runStart[r]:runStart[r+1]], found by tenant id
	// in runs, or by the tenant's position in tenantRun (-1: none), which
	// a plan's pass over every tenant reads without hashing an id.
	byTenant  []*Desired
	runStart  []int32
	runs      posIndex
	tenantRun []int32
}

// NewFleet indexes a snapshot.
func NewFleet(s *slum.Snapshot) *Fleet {
	n := len(s.Instances)
	f := &Fleet{Snapshot: s, Servers: make(map[string]*slum.Server, len(s.Servers)),
		ServerIndex: make(map[string]int, len(s.Servers)), Desired: make([]Desired, n),
		OnServer: make([][]int32, len(s.Servers)), Removed: make(map[slum.InstanceKey]bool, len(s.Removed))}
	for i := range s.Servers {
		f.Servers[s.Servers[i].ID] = &s.Servers[i]
		f.ServerIndex[s.Servers[i].ID] = i
	}
	f.tenants = newPosIndex(len(s.Tenants), func(i int32) string { return s.Tenants[i].ID })
	for i := range s.Tenants {
		f.tenants.put(int32(i))
	}
	count := make([]int, len(s.Servers))
	for i := range s.Instances {
		count[f.ServerIndex[s.Instances[i].ServerID]]++
	}
	for i, c := range count {
		f.OnServer[i] = make([]int32, 0, c)
	}
	f.byKey = newPosIndex(n, func(i int32) string { return string(f.Desired[i].Key) })
	f.byName = newPosIndex(n, func(i int32) string { return f.Desired[i].Name })
	for i := range s.Instances {
		in := &s.Instances[i]
		d := &f.Desired[i]
		*d = NewDesired(in)
		d.Index, d.Srv = i, f.ServerIndex[in.ServerID]
		f.OnServer[d.Srv] = append(f.OnServer[d.Srv], int32(i))
		f.byKey.put(int32(i))
		f.byName.put(int32(i))
	}
	f.indexTenantRuns()
	for _, k := range s.Removed {
		f.Removed[k] = true
	}
	return f
}

// indexTenantRuns lists each tenant's instances as a run of one array, in
// rank order. The store reads instances by tenant, so a tenant's are
// usually together in the snapshot already; they need not be.
func (f *Fleet) indexTenantRuns() {
	n := len(f.Desired)
	// run[i] is instance i's run; a run is numbered by its tenant's first
	// instance, whose TenantID is the run's key.
	run := make([]int32, n)
	var first []int32
	f.runs = newPosIndex(n, func(r int32) string { return f.Desired[first[r]].TenantID })
	for i := range f.Desired {
		t := f.Desired[i].TenantID
		if i > 0 && f.Desired[i-1].TenantID == t {
			run[i] = run[i-1]
			continue
		}
		r, ok := f.runs.find(t)
		if !ok {
			r = int32(len(first))
			first = append(first, int32(i))
			f.runs.put(r)
		}
		run[i] = r
	}
	f.runStart = make([]int32, len(first)+1)
	for _, r := range run {
		f.runStart[r+1]++
	}
	for r := range first {
		f.runStart[r+1] += f.runStart[r]
	}
	f.byTenant = make([]*Desired, n)
	at := slices.Clone(f.runStart[:len(first)])
	for i, r := range run {
		f.byTenant[at[r]] = &f.Desired[i]
		at[r]++
	}
	// Tenants and runs are both in tenant order as the store reads them:
	// a tenant is matched with the next run without a lookup, when it is.
	f.tenantRun = make([]int32, len(f.Snapshot.Tenants))
	next := int32(0)
	for i := range f.Snapshot.Tenants {
		id := f.Snapshot.Tenants[i].ID
		if int(next) < len(first) && f.Desired[first[next]].TenantID == id {
			f.tenantRun[i] = next
			next++
			continue
		}
		r, ok := f.runs.find(id)
		if !ok {
			r = -1
		}
		f.tenantRun[i] = r
	}
	for r := range first {
		if ds := f.byTenant[f.runStart[r]:f.runStart[r+1]]; len(ds) > 1 {
			slices.SortFunc(ds, func(a, b *Desired) int {
				return cmp.Or(cmp.Compare(a.Rank, b.Rank), strings.Compare(a.ID, b.ID))
			})
		}
	}
}

// Instance returns the desired instance with key k.
func (f *Fleet) Instance(k slum.InstanceKey) (*Desired, bool) {
	if i, ok := f.byKey.find(string(k)); ok {
		return &f.Desired[i], true
	}
	return nil, false
}

// Named returns the desired instance with tenement name name
// (process:tenant--instance).
func (f *Fleet) Named(name string) (*Desired, bool) {
	if i, ok := f.byName.find(name); ok {
		return &f.Desired[i], true
	}
	return nil, false
}

// Tenant returns the tenant with id, or nil.
func (f *Fleet) Tenant(id string) *slum.Tenant {
	if i, ok := f.tenants.find(id); ok {
		return &f.Snapshot.Tenants[i]
	}
	return nil
}

// InstancesOf lists a tenant's desired instances in rank order (best
// first). The list is the fleet's: append to a copy.
func (f *Fleet) InstancesOf(tenant string) []*Desired {
	r, ok := f.runs.find(tenant)
	if !ok {
		return nil
	}
	return f.run(r)
}

// InstancesAt is InstancesOf the tenant at position i of the snapshot's
// tenants.
func (f *Fleet) InstancesAt(i int) []*Desired {
	if i < len(f.tenantRun) && f.tenantRun[i] >= 0 {
		return f.run(f.tenantRun[i])
	}
	return nil
}

func (f *Fleet) run(r int32) []*Desired {
	start, end := f.runStart[r], f.runStart[r+1]
	return f.byTenant[start:end:end]
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
