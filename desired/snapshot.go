package desired

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/slum-fleet/slum/db"
)

// Snapshot is the whole desired state at one revision, as a value: what
// the controller plans from.
type Snapshot struct {
	Revision  int64
	Servers   []Server   // by id
	Tenants   []Tenant   // by id
	Instances []Instance // by tenant, then id
	Settings  Settings
	Holds     []Hold // plans held back now, with any approval
	// Removed are instances removed on purpose whose copies may still run
	// somewhere: stopping those is expected, not a mass stop.
	Removed []InstanceRef
}

// Snapshot reads the desired state. The revision is read first, so a
// commit racing the read shows as a newer revision and is read again.
func (s *Store) Snapshot(ctx context.Context) (*Snapshot, error) {
	q := s.db.Queries()
	rev, err := q.GetRevision(ctx)
	if err != nil {
		return nil, fmt.Errorf("read revision: %w", err)
	}
	snap := &Snapshot{Revision: rev}
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
	if snap.Removed, err = convert(removed, err, "list removals", func(r db.Removal) InstanceRef {
		return InstanceRef{TenantID: r.TenantID, InstanceID: r.InstanceID}
	}); err != nil {
		return nil, err
	}
	return snap, nil
}

// WithInstances returns a copy of the snapshot at revision with the given
// instances replacing those of the same tenant and id: what the controller
// holds after its own commit of those changes alone. The receiver is not
// modified. ok is false when an instance is not in the snapshot.
func (s *Snapshot) WithInstances(changed []Instance, revision int64) (next *Snapshot, ok bool) {
	n := *s
	n.Revision = revision
	n.Instances = slices.Clone(s.Instances)
	for _, in := range changed {
		i, found := slices.BinarySearchFunc(n.Instances, in, func(a, b Instance) int {
			if c := strings.Compare(a.TenantID, b.TenantID); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		if !found {
			return nil, false
		}
		n.Instances[i] = in
	}
	return &n, true
}
