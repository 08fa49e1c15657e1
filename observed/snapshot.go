package observed

import (
	"time"

	"github.com/slum-fleet/slum"
)

// Snapshot is what slum knows of one server at one moment, as a value:
// its health and, when the last list call succeeded, what it runs. A
// Watcher makes a new one whenever either changes; nobody modifies one.
type Snapshot struct {
	Server string
	Seq    uint64 // grows with every snapshot of this server
	// Content grows only when Listed or Instances change: snapshots with
	// the same Content hold the same instances.
	Content uint64
	Health  slum.HealthState
	// Listed: the last instance list succeeded, and Instances is what the
	// server ran as of ListedAt (when that call started). Otherwise
	// Instances is the last list that did succeed, if any, and must not
	// be acted on.
	Listed    bool
	ListedAt  time.Time
	ListErr   string
	Instances map[string]slum.InstanceHealth // by tenement name
}

// Running reports whether the listed server runs name, with tenement's
// health word for it.
func (s *Snapshot) Running(name string) (health slum.InstanceHealth, ok bool) {
	if s == nil {
		return "", false
	}
	health, ok = s.Instances[name]
	return health, ok
}
