package slum

import (
	"context"
	"errors"
)

// ErrChangesGone says the change log cannot tell what changed since the
// position asked for: it no longer reaches back that far, or more changed
// than the reader would take. The reader reads the whole fleet instead.
var ErrChangesGone = errors.New("the change log no longer says what changed since then")

// ErrUnknownChange says the change log holds an entry of a kind this slum
// does not know (a trigger it does not follow). It wraps ErrChangesGone
// too, so a reader reads the whole fleet rather than miss the change.
var ErrUnknownChange = errors.New("the change log holds an entry of an unknown kind")

// ChangeKind is what a change log entry names: the kinds the triggers of
// db/migrations write, each read by Changed.read.
type ChangeKind string

const (
	ChangeSettings       ChangeKind = "settings"
	ChangeServer         ChangeKind = "server"
	ChangeTenant         ChangeKind = "tenant"
	ChangeInstance       ChangeKind = "instance"
	ChangeServerStatus   ChangeKind = "server_status"
	ChangeTenantStatus   ChangeKind = "tenant_status"
	ChangeInstanceStatus ChangeKind = "instance_status"
)

// Changed is what commits wrote since a position in the change log (the
// desired state and the controller's status), each object read as it is
// now. A key with a nil value is an object that is gone.
type Changed struct {
	Seq      int64     // the position after these changes: pass it to the next ChangedSince
	Settings *Settings // nil: unchanged
	Servers  map[string]*Server
	// Stats holds the capacity use of every server whose instances or
	// capacity changed.
	Stats          map[string]*ServerStats
	Tenants        map[string]*Tenant
	Instances      map[InstanceKey]*Instance
	ServerStatus   map[string]*ServerStatus
	TenantStatus   map[string]*TenantStatus
	InstanceStatus map[InstanceKey]*InstanceStatus
}

// Len is how many objects changed.
func (c *Changed) Len() int {
	n := len(c.Servers) + len(c.Stats) + len(c.Tenants) + len(c.Instances) + len(c.ServerStatus) + len(c.TenantStatus) + len(c.InstanceStatus)
	if c.Settings != nil {
		n++
	}
	return n
}

// ChangeFeed is a fleet store that tells of commits as they are made
// (Postgres' LISTEN/NOTIFY): its readers wake at once rather than at their
// next poll. The change log and the revisions stay the source of truth:
// a reader still polls, for the notifications that go missing.
type ChangeFeed interface {
	// Changes receives soon after commits; it closes when ctx ends. A
	// store without a feed returns nil.
	Changes(ctx context.Context) <-chan struct{}
}

// Changes is the feed of commits of store, when it is a ChangeFeed with
// one, as a channel that never closes; otherwise nil, which never
// receives (the reader polls only).
func Changes(ctx context.Context, store any) <-chan struct{} {
	f, ok := store.(ChangeFeed)
	if !ok {
		return nil
	}
	src := f.Changes(ctx)
	if src == nil {
		return nil
	}
	out := make(chan struct{}, 1)
	go func() {
		for range src {
			select {
			case out <- struct{}{}:
			default: // one already waits: it covers this commit too
			}
		}
	}()
	return out
}
