package store

import (
	"context"
	"fmt"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/db"
)

// Snapshot reads the whole desired state at one revision, in one read
// transaction.
func (s *Desired) Snapshot(ctx context.Context) (*slum.Snapshot, error) {
	var snap *slum.Snapshot
	err := s.eng.InReadTx(ctx, func(q db.Querier) error {
		var err error
		snap, err = readSnapshot(ctx, q)
		return err
	})
	return snap, err
}

// readSnapshot reads the desired state with q: consistent when q is a
// transaction's.
func readSnapshot(ctx context.Context, q db.Querier) (*slum.Snapshot, error) {
	rev, err := q.GetRevision(ctx)
	if err != nil {
		return nil, fmt.Errorf("read revision: %w", err)
	}
	snap := &slum.Snapshot{Revision: rev}
	servers, err := q.ListServers(ctx)
	if snap.Servers, err = convert(servers, err, "list servers", toServer); err != nil {
		return nil, err
	}
	// Columns with few distinct values hold one copy of each: the
	// controller keeps the snapshot as long as its revision holds.
	words := interner{}
	tenants, err := q.ListTenants(ctx)
	if snap.Tenants, err = convert(tenants, err, "list tenants", func(r db.Tenant) slum.Tenant {
		t := toTenant(r)
		t.Region, t.Failover, t.Serving, t.Data = words.of(t.Region), interned(words, t.Failover), interned(words, t.Serving), interned(words, t.Data)
		return t
	}); err != nil {
		return nil, err
	}
	insts, err := q.ListInstances(ctx)
	ids := tenantIDs{tenants: snap.Tenants}
	if snap.Instances, err = convert(insts, err, "list instances", func(r db.Instance) slum.Instance {
		in := toInstance(r)
		in.TenantID, in.ID = ids.of(in.TenantID), words.of(in.ID)
		in.Process, in.ServerID, in.HomeServerID = words.of(in.Process), words.of(in.ServerID), words.of(in.HomeServerID)
		in.DesiredState, in.Mode = interned(words, in.DesiredState), interned(words, in.Mode)
		return in
	}); err != nil {
		return nil, err
	}
	if snap.Settings, err = getSettings(ctx, q); err != nil {
		return nil, err
	}
	holds, err := q.ListOpenHolds(ctx)
	if snap.Holds, err = convert(holds, err, "list held plans", toHold); err != nil {
		return nil, err
	}
	removed, err := q.ListRemovals(ctx)
	if snap.Removed, err = convert(removed, err, "list removals", func(r db.Removal) slum.InstanceKey {
		return slum.KeyOf(r.TenantID, r.InstanceID)
	}); err != nil {
		return nil, err
	}
	if snap.Restarting, err = restartingNow(ctx, q); err != nil {
		return nil, err
	}
	return snap, nil
}

// tenantIDs hands each instance its tenant's copy of the tenant id. Both
// are read in the order of tenant ids (in the database's collation, the
// same for both reads), so a tenant's instances come together and in the
// tenants' order: a cursor that moves forward finds each tenant, past the
// tenants with no instances. It looks only so far ahead, and an id it
// does not find is kept as it was read.
type tenantIDs struct {
	tenants []slum.Tenant
	at      int
}

// tenantLookahead bounds how many tenants without instances the cursor
// steps over at once.
const tenantLookahead = 64

func (t *tenantIDs) of(id string) string {
	for i := t.at; i < len(t.tenants) && i < t.at+tenantLookahead; i++ {
		if t.tenants[i].ID == id {
			t.at = i
			return t.tenants[i].ID
		}
	}
	return id
}

// interner hands out one copy of each distinct string it is given: server
// ids, process names, instance ids ("prod") and policy words repeat on
// every row, and a 100,000-instance snapshot held 100,000 copies of each
// (BenchmarkSnapshot in sqlite/: 33.9 MB held after a read, 28.9 MB with
// one copy each, for ~1 % more time per read; 27.3 MB with instance ids
// among them and each instance sharing its tenant's id, which are small
// enough to share one allocation, so only both together free it). Past
// maxInterned values it hands back what it is given.
type interner map[string]string

const maxInterned = 1 << 14

func (w interner) of(s string) string {
	if v, ok := w[s]; ok {
		return v
	}
	if len(w) < maxInterned {
		w[s] = s
	}
	return s
}

// interned is interner.of for slum's string-typed words.
func interned[T ~string](w interner, v T) T { return T(w.of(string(v))) }
