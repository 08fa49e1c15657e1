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
	return snap, nil
}
