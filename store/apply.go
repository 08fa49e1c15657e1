package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/db"
	"github.com/slum-fleet/slum/desired"
)

// Apply makes the desired state match the fleet file src, in one
// transaction: either every change lands or none does. The file is
// parsed and checked in full first, then compared with the fleet as the
// transaction reads it. A dry run checks exactly what an apply checks, so
// the two succeed or fail alike. When a prune is refused for deleting most
// of the fleet, the change set comes back with the MassPruneError, so that
// it can be shown.
func (s *Desired) Apply(ctx context.Context, src slum.FileSource, opt slum.ApplyOptions) (*slum.ChangeSet, error) {
	f, err := desired.Receive(src)
	if err != nil {
		return nil, err
	}
	return s.applyFile(ctx, f, opt)
}

func (s *Desired) applyFile(ctx context.Context, f *desired.File, opt slum.ApplyOptions) (*slum.ChangeSet, error) {
	var delta *desired.Delta
	err := s.eng.InTx(ctx, func(q db.Querier) error {
		cur, err := readCurrent(ctx, q)
		if err != nil {
			return fmt.Errorf("read desired state: %w", err)
		}
		if delta, err = desired.Diff(f, cur, opt.Prune); err != nil {
			return err
		}
		if err := delta.MassPrune; err != nil && !opt.AllowMassPrune {
			return err
		}
		if opt.DryRun || delta.Empty() {
			return errDryRun
		}
		now := ms(s.now())
		if err := execute(ctx, q, delta, now); err != nil {
			return err
		}
		c, u, d := delta.Counts()
		if err := event(ctx, q, now, slum.FleetRef, slum.ReasonApplied, fmt.Sprintf("applied %s: %d created, %d updated, %d deleted", f.Name, c, u, d)); err != nil {
			return err
		}
		return q.BumpRevision(ctx)
	})
	if errors.Is(err, errDryRun) {
		err = nil
	}
	var mass *slum.MassPruneError
	switch {
	case errors.As(err, &mass):
		return &delta.ChangeSet, err
	case err != nil:
		return nil, err
	}
	return &delta.ChangeSet, nil
}

// errDryRun rolls back a transaction that only planned.
var errDryRun = errors.New("dry run")

// readCurrent reads what a fleet file is compared with.
func readCurrent(ctx context.Context, q db.Querier) (desired.Current, error) {
	snap, err := readSnapshot(ctx, q)
	if err != nil {
		return desired.Current{}, err
	}
	rows, err := q.CountPlacementsByServer(ctx)
	if err != nil {
		return desired.Current{}, err
	}
	placed := make(map[string]int64, len(rows))
	for _, r := range rows {
		placed[r.ServerID] = r.Placed
	}
	return desired.Current{Snapshot: snap, Placed: placed}, nil
}

// execute writes a plan. The order keeps every constraint true at every
// statement: servers first, so instances can reference them; deletions of
// instances and tenants before anything takes their capacity, server slot
// or domain; pruned servers last. Moved instances are deleted and restored
// on their new server (generation + 1), so two instances may swap servers.
func execute(ctx context.Context, q db.Querier, plan *desired.Delta, now int64) error {
	if plan.Settings != nil {
		if err := setSettings(ctx, q, *plan.Settings, now); err != nil {
			return fmt.Errorf("%s: %w", plan.File, err)
		}
	}
	for _, as := range plan.Servers {
		switch as.Op {
		case slum.OpCreate:
			if err := q.InsertServer(ctx, serverParams(as.Server, now)); err != nil {
				return fmt.Errorf("%s: create server %s: %w", as.Where, as.Server.ID, err)
			}
		case slum.OpUpdate:
			if _, err := q.UpdateServer(ctx, updateServerParams(as.Server, now)); err != nil {
				return fmt.Errorf("%s: update server %s: %w", as.Where, as.Server.ID, err)
			}
		}
	}
	var moved []desired.InstanceEdit
	for _, ai := range plan.Instances {
		switch {
		case ai.Op == slum.OpDelete:
		case ai.Op == slum.OpUpdate && ai.Moved:
			moved = append(moved, ai)
		default:
			continue
		}
		if _, err := q.DeleteInstance(ctx, db.DeleteInstanceParams{TenantID: ai.Instance.TenantID, ID: ai.Instance.ID}); err != nil {
			return fmt.Errorf("%s: delete instance %s: %w", ai.Where, ai.Instance.Key(), err)
		}
		if ai.Op == slum.OpDelete {
			if err := q.InsertRemoval(ctx, db.InsertRemovalParams{TenantID: ai.Instance.TenantID, InstanceID: ai.Instance.ID, RemovedAt: now}); err != nil {
				return fmt.Errorf("delete instance %s: %w", ai.Instance.Key(), err)
			}
		}
	}
	for _, id := range plan.DeleteTenants {
		if _, err := q.DeleteTenant(ctx, id); err != nil {
			return fmt.Errorf("%s: prune tenant %s: %w", plan.File, id, err)
		}
	}
	// Domains may be swapped between tenants: park changed ones on names
	// no tenant can have (validation forbids "_") before setting them.
	for _, t := range plan.Tenants {
		if t.Renamed {
			if _, err := q.UpdateTenant(ctx, updateTenantParams(slum.Tenant{ID: t.ID, Domain: "_" + t.ID, Region: t.Region, Failover: t.Failover, Serving: t.Serving, Data: t.Data, Replica: t.Replica}, now)); err != nil {
				return fmt.Errorf("%s: update tenant %s: %w", t.Where, t.ID, err)
			}
		}
	}
	var newTenants []desired.TenantEdit
	for _, t := range plan.Tenants {
		if t.Exists {
			if _, err := q.UpdateTenant(ctx, updateTenantParams(t.Tenant, now)); err != nil {
				return fmt.Errorf("%s: update tenant %s: %w", t.Where, t.ID, err)
			}
			continue
		}
		newTenants = append(newTenants, t)
	}
	if err := createTenants(ctx, q, newTenants, now); err != nil {
		return err
	}
	for _, ai := range plan.Instances {
		if ai.Op == slum.OpUpdate && !ai.Moved {
			if _, err := q.UpdateInstance(ctx, updateInstanceParams(ai.Instance, now)); err != nil {
				return fmt.Errorf("%s: update instance %s: %w", ai.Where, ai.Instance.Key(), err)
			}
		}
	}
	for _, ai := range moved {
		in := ai.Instance
		err := q.RestoreInstance(ctx, db.RestoreInstanceParams{TenantID: in.TenantID, ID: in.ID, Process: in.Process,
			ServerID: in.ServerID, HomeServerID: in.ServerID, MemoryMb: in.MemoryMB, DesiredState: string(in.DesiredState), Mode: string(in.Mode), Rank: in.Rank,
			Generation: in.Generation + 1, CreatedAt: ms(in.CreatedAt), UpdatedAt: now})
		if err != nil {
			return fmt.Errorf("%s: move instance %s: %w", ai.Where, in.Key(), err)
		}
	}
	if err := createInstances(ctx, q, plan.Instances, now); err != nil {
		return err
	}
	for _, as := range plan.Servers {
		if as.Op == slum.OpDelete {
			if _, err := q.DeleteServer(ctx, as.Server.ID); err != nil {
				return fmt.Errorf("%s: prune server %s: %w", as.Where, as.Server.ID, err)
			}
		}
	}
	return nil
}

// createTenants inserts new tenants, many to a statement where the engine
// can.
func createTenants(ctx context.Context, q db.Querier, tenants []desired.TenantEdit, now int64) error {
	rows := make([]db.InsertTenantParams, len(tenants))
	for i, t := range tenants {
		rows[i] = insertTenantParams(t.Tenant, now)
	}
	return insertAll(ctx, q, rows, BulkQuerier.InsertTenants, func(i int) error {
		if err := q.InsertTenant(ctx, rows[i]); err != nil {
			return fmt.Errorf("%s: create tenant %s: %w", tenants[i].Where, tenants[i].ID, err)
		}
		return nil
	})
}

// createInstances inserts the plan's new instances, many to a statement
// where the engine can, and drops the tombstones of those that were
// removed before (read once, not deleted row by row: there are few).
func createInstances(ctx context.Context, q db.Querier, edits []desired.InstanceEdit, now int64) error {
	var created []desired.InstanceEdit
	for _, ai := range edits {
		if ai.Op == slum.OpCreate {
			created = append(created, ai)
		}
	}
	if len(created) == 0 {
		return nil
	}
	rows := make([]db.InsertInstanceParams, len(created))
	for i, ai := range created {
		rows[i] = insertInstanceParams(ai.Instance, now)
	}
	err := insertAll(ctx, q, rows, BulkQuerier.InsertInstances, func(i int) error {
		if err := q.InsertInstance(ctx, rows[i]); err != nil {
			return fmt.Errorf("%s: create instance %s: %w", created[i].Where, created[i].Instance.Key(), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	removals, err := q.ListRemovals(ctx)
	if err != nil {
		return fmt.Errorf("read removed instances: %w", err)
	}
	if len(removals) == 0 {
		return nil
	}
	removed := make(map[slum.InstanceKey]bool, len(removals))
	for _, r := range removals {
		removed[slum.KeyOf(r.TenantID, r.InstanceID)] = true
	}
	for _, ai := range created {
		if !removed[ai.Instance.Key()] {
			continue
		}
		if err := q.DeleteRemoval(ctx, db.DeleteRemovalParams{TenantID: ai.Instance.TenantID, InstanceID: ai.Instance.ID}); err != nil {
			return fmt.Errorf("create instance %s: %w", ai.Instance.Key(), err)
		}
	}
	return nil
}
