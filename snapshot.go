package slum

import (
	"slices"
	"strings"
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
	Removed []InstanceKey
	// Restarting are the copies a rolling restart restarts now: none is
	// picked to serve while another copy of its tenant can.
	Restarting []InstanceKey
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
