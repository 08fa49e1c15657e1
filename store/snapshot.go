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
	tenants, err := q.ListTenants(ctx)
	if snap.Tenants, err = convert(tenants, err, "list tenants", toTenant); err != nil {
		return nil, err
	}
	insts, err := q.ListInstances(ctx)
	if snap.Instances, err = convert(insts, err, "list instances", toInstance); err != nil {
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
	shareStrings(snap)
	return snap, nil
}

// shareStrings makes the snapshot's tenants and instances share one copy
// of each string their rows repeat (tenant and server ids, processes,
// states, regions, policies) instead of one per row as the driver reads
// them: a snapshot of 100,000 instances is held for as long as it is the
// latest, and this is about a tenth of it.
func shareStrings(snap *slum.Snapshot) {
	one := map[string]string{}
	of := func(s string) string {
		if v, ok := one[s]; ok {
			return v
		}
		one[s] = s
		return s
	}
	for i := range snap.Servers {
		of(snap.Servers[i].ID)
	}
	for i := range snap.Tenants {
		t := &snap.Tenants[i]
		t.Region = of(t.Region)
		t.Failover = slum.FailoverPolicy(of(string(t.Failover)))
		t.Serving = slum.ServingPolicy(of(string(t.Serving)))
		t.Data = slum.DataPolicy(of(string(t.Data)))
	}
	// Both are ordered by tenant id, so each instance's tenant is found by
	// walking the tenants alongside (an order that differs, as a
	// collation may make it, only shares less).
	j := 0
	for i := range snap.Instances {
		in := &snap.Instances[i]
		for j < len(snap.Tenants) && snap.Tenants[j].ID < in.TenantID {
			j++
		}
		if j < len(snap.Tenants) && snap.Tenants[j].ID == in.TenantID {
			in.TenantID = snap.Tenants[j].ID
		}
		in.Process, in.ServerID, in.HomeServerID = of(in.Process), of(in.ServerID), of(in.HomeServerID)
		in.DesiredState, in.Mode = slum.DesiredState(of(string(in.DesiredState))), slum.Mode(of(string(in.Mode)))
	}
}
