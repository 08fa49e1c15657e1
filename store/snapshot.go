package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

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
	words, instanceIDs := interner{}, interner{} // ids may be many: they do not crowd out the words
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
		in.TenantID, in.ID = ids.of(in.TenantID), instanceIDs.of(in.ID)
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
// are read in the order of tenant ids (byte order: the columns' collation
// is binary in SQLite and "C" in Postgres), so a tenant's instances come
// together and in the tenants' order: the next few tenants from the
// cursor are looked at first, then the rest by binary search (past a run
// of tenants without instances). It hands back only a string equal to
// what it is given, so an order it does not expect costs sharing, never
// a wrong id.
type tenantIDs struct {
	tenants []slum.Tenant
	at      int
}

// tenantLookahead is how many tenants from the cursor are compared before
// a binary search.
const tenantLookahead = 4

func (t *tenantIDs) of(id string) string {
	rest := t.tenants[t.at:]
	for i := 0; i < len(rest) && i < tenantLookahead; i++ {
		if rest[i].ID == id {
			t.at += i
			return rest[i].ID
		}
	}
	i, found := slices.BinarySearchFunc(rest, id, func(tn slum.Tenant, id string) int { return strings.Compare(tn.ID, id) })
	if !found {
		return id
	}
	t.at += i
	return rest[i].ID
}

// interner hands out one copy of each distinct string it is given: server
// ids, process names, instance ids ("prod") and policy words repeat on
// every row, and a 100,000-instance snapshot held 100,000 copies of each
// (BenchmarkSnapshot in sqlite/: 33.9 MB held after a read, 28.9 MB with
// one copy each, for ~1 % more time per read; 27.3 MB with one copy of
// each instance id too and each instance sharing its tenant's id, which
// are small enough to share one allocation, so only both together free
// it). Past maxInterned values it hands back what it is given.
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
