package routes

import (
	"context"
	"fmt"
	"time"

	"github.com/slum-fleet/slum"
)

// Reader is what following the fleet database needs.
type Reader interface {
	Revision(ctx context.Context) (int64, error)
	StatusRevision(ctx context.Context) (int64, error)
	Snapshot(ctx context.Context) (*slum.Snapshot, error)
	ListServerStatus(ctx context.Context) ([]slum.ServerStatus, error)
	ListTenantStatus(ctx context.Context) ([]slum.TenantStatus, error)
}

// Load builds the route table from the database: the desired state and
// who the controller decided serves each tenant.
func Load(ctx context.Context, r Reader) (*Table, error) {
	snap, err := r.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	sstat, err := r.ListServerStatus(ctx)
	if err != nil {
		return nil, err
	}
	tstat, err := r.ListTenantStatus(ctx)
	if err != nil {
		return nil, err
	}
	health := make(map[string]slum.Health, len(sstat))
	for _, s := range sstat {
		health[s.ServerID] = s.Health
	}
	serving := make(map[string]slum.TenantStatus, len(tstat))
	for _, t := range tstat {
		serving[t.TenantID] = t
	}
	return Build(Source{Revision: snap.Revision, Servers: snap.Servers, Health: health, Tenants: snap.Tenants,
		Instances: snap.Instances, Serving: serving}), nil
}

// Sink receives what following a source finds: each new table, and
// whether each check succeeded. router.Proxy is one.
type Sink interface {
	// Update installs a new table; an error means the table was refused.
	Update(*Table) error
	// SourceOK: the source was read, the table in use is current.
	SourceOK()
	// SourceFailed: the source could not be read; the last table stays.
	SourceFailed(error)
}

// Follow hands set a new table whenever the desired state or the
// controller's status changes (checked every interval), until ctx ends.
// Errors (a busy or unreadable database) go to onErr; the last table stays
// in use meanwhile.
func Follow(ctx context.Context, r Reader, every time.Duration, set func(*Table), onErr func(error)) {
	FollowInto(ctx, r, every, funcSink{set, onErr})
}

// FollowInto is Follow reporting every check to sink: a table that changed
// goes to Update, a check that found nothing new to SourceOK, a failure to
// SourceFailed. A refused table is tried again at the next check. It
// recovers by itself when the database can be read again.
func FollowInto(ctx context.Context, r Reader, every time.Duration, sink Sink) {
	var lastRev, lastStatus int64 = -1, -1
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rev, st, changed, err := check(ctx, r, lastRev, lastStatus)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				sink.SourceFailed(fmt.Errorf("follow the fleet database: %w", err))
			}
		case changed != nil:
			if sink.Update(changed) == nil {
				lastRev, lastStatus = rev, st
			}
		default:
			sink.SourceOK()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check reads the database's revisions and, when they moved, the table.
func check(ctx context.Context, r Reader, lastRev, lastStatus int64) (int64, int64, *Table, error) {
	rev, err := r.Revision(ctx)
	if err != nil {
		return 0, 0, nil, err
	}
	st, err := r.StatusRevision(ctx)
	if err != nil {
		return 0, 0, nil, err
	}
	if rev == lastRev && st == lastStatus {
		return rev, st, nil, nil
	}
	tab, err := Load(ctx, r)
	return rev, st, tab, err
}

// funcSink adapts Follow's callbacks to a Sink.
type funcSink struct {
	set   func(*Table)
	onErr func(error)
}

func (f funcSink) Update(t *Table) error  { f.set(t); return nil }
func (f funcSink) SourceOK()              {}
func (f funcSink) SourceFailed(err error) { f.onErr(err) }
