package desired

import (
	"context"
	"fmt"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/db"
)

// Snapshot reads the desired state. The revision is read first, so a
// commit racing the read shows as a newer revision and is read again.
func (s *Store) Snapshot(ctx context.Context) (*slum.Snapshot, error) {
	q := s.db.Queries()
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
	if snap.Holds, err = s.OpenHolds(ctx); err != nil {
		return nil, err
	}
	removed, err := q.ListRemovals(ctx)
	if snap.Removed, err = convert(removed, err, "list removals", func(r db.Removal) slum.InstanceKey {
		return slum.KeyOf(r.TenantID, r.InstanceID)
	}); err != nil {
		return nil, err
	}
	return snap, nil
}
