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

// Follow hands set a new table whenever the desired state or the
// controller's status changes (checked every interval, and at once when
// r tells of a commit: see slum.ChangeFeed), until ctx ends.
// Errors (a busy or unreadable database) go to onErr; the last table stays
// in use meanwhile.
func Follow(ctx context.Context, r Reader, every time.Duration, set func(*Table), onErr func(error)) {
	var lastRev, lastStatus int64 = -1, -1
	t := time.NewTicker(every)
	defer t.Stop()
	feed := slum.Changes(ctx, r)
	for {
		rev, err := r.Revision(ctx)
		if err == nil {
			var st int64
			if st, err = r.StatusRevision(ctx); err == nil && (rev != lastRev || st != lastStatus) {
				var tab *Table
				if tab, err = Load(ctx, r); err == nil {
					set(tab)
					lastRev, lastStatus = rev, st
				}
			}
		}
		if err != nil && ctx.Err() == nil {
			onErr(fmt.Errorf("follow the fleet database: %w", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-feed:
		}
	}
}
