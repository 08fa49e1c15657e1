package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/db"
	"github.com/slum-fleet/slum/desired"
)

// splitKey checks an instance key and splits it.
func splitKey(key slum.InstanceKey) (tenant, instance string, err error) {
	if _, err := slum.ParseInstanceKey(string(key)); err != nil {
		return "", "", err
	}
	tenant, instance = key.Split()
	return tenant, instance, nil
}

func toInstance(r db.Instance) slum.Instance {
	return slum.Instance{
		TenantID: r.TenantID, ID: r.ID, Process: r.Process, ServerID: r.ServerID, HomeServerID: r.HomeServerID, MemoryMB: r.MemoryMb, Rank: r.Rank,
		DesiredState: slum.DesiredState(r.DesiredState), Mode: slum.Mode(r.Mode), Generation: r.Generation,
		CreatedAt: fromMS(r.CreatedAt), UpdatedAt: fromMS(r.UpdatedAt),
	}
}

func insertInstanceParams(i slum.Instance, now int64) db.InsertInstanceParams {
	if i.HomeServerID == "" {
		i.HomeServerID = i.ServerID
	}
	return db.InsertInstanceParams{
		TenantID: i.TenantID, ID: i.ID, Process: i.Process, ServerID: i.ServerID, HomeServerID: i.HomeServerID, MemoryMb: i.MemoryMB,
		DesiredState: string(i.DesiredState), Mode: string(i.Mode), Rank: i.Rank, CreatedAt: now, UpdatedAt: now,
	}
}

func updateInstanceParams(i slum.Instance, now int64) db.UpdateInstanceParams {
	if i.HomeServerID == "" {
		i.HomeServerID = i.ServerID
	}
	return db.UpdateInstanceParams{
		TenantID: i.TenantID, ID: i.ID, Process: i.Process, ServerID: i.ServerID, HomeServerID: i.HomeServerID, MemoryMb: i.MemoryMB,
		DesiredState: string(i.DesiredState), Mode: string(i.Mode), Rank: i.Rank, UpdatedAt: now,
	}
}

func getInstance(ctx context.Context, q db.Querier, tenant, id string) (slum.Instance, error) {
	r, err := q.GetInstance(ctx, db.GetInstanceParams{TenantID: tenant, ID: id})
	if errors.Is(err, sql.ErrNoRows) {
		return slum.Instance{}, fmt.Errorf("instance %s:%s %w", tenant, id, slum.ErrNotFound)
	}
	if err != nil {
		return slum.Instance{}, fmt.Errorf("get instance %s:%s: %w", tenant, id, err)
	}
	return toInstance(r), nil
}

// checkFits verifies that server can take inst: it exists, takes new
// placements, has the memory free and runs no other instance of the
// tenant's process.
func checkFits(ctx context.Context, q db.Querier, inst slum.Instance) error {
	srv, err := getServer(ctx, q, inst.ServerID)
	if err != nil {
		return err
	}
	if srv.State != slum.ServerActive {
		return fmt.Errorf("%w: server %s is %s and takes no new instances", slum.ErrConflict, srv.ID, srv.State)
	}
	statuses, err := q.ListServerStatus(ctx)
	if err != nil {
		return err
	}
	for _, st := range statuses {
		switch h := slum.Health(st.Health); {
		case st.ServerID == srv.ID && (h == slum.HealthDead || h == slum.HealthUnauthorized):
			return fmt.Errorf("%w: server %s is %s (as the controller last saw it) and takes no new instances; choose another server or let slum place it", slum.ErrConflict, srv.ID, h)
		}
	}
	use, err := q.ServerUsageOne(ctx, srv.ID)
	if err != nil {
		return err
	}
	if free := srv.CapacityMB - use.UsedMb; free < inst.MemoryMB {
		return fmt.Errorf("%w: server %s has %d MB free, instance %s needs %d MB", slum.ErrNoCapacity, srv.ID, free, inst.Key(), inst.MemoryMB)
	}
	siblings, err := q.ListInstancesOfTenant(ctx, inst.TenantID)
	if err != nil {
		return err
	}
	for _, r := range siblings {
		if r.ID != inst.ID && r.Process == inst.Process && r.ServerID == inst.ServerID {
			return fmt.Errorf("%w: server %s already runs %s:%s of process %s (a tenant's instances of one process never share a server)",
				slum.ErrConflict, srv.ID, inst.TenantID, r.ID, inst.Process)
		}
	}
	return nil
}

// SpawnInstance asks for an instance to run. A new instance is placed on
// spec.ServerID, or by slum when that is empty. Spawning an existing
// instance sets it running again and applies the memory and mode spec
// gives; it may not change its process or server (use MoveInstance).
func (s *Desired) SpawnInstance(ctx context.Context, spec slum.InstanceSpec) (slum.Instance, error) {
	inst, err := desired.NewInstance(spec)
	if err != nil {
		return slum.Instance{}, fmt.Errorf("spawn instance: %w", err)
	}
	err = s.write(ctx, func(q db.Querier, now int64) error {
		inst, err = spawn(ctx, q, now, inst, spec)
		return err
	})
	if err != nil {
		return slum.Instance{}, err
	}
	return inst, nil
}

// spawn adds inst, or sets an existing instance running with the memory
// and mode spec gives (not the defaults inst was given in their place).
func spawn(ctx context.Context, q db.Querier, now int64, inst slum.Instance, spec slum.InstanceSpec) (slum.Instance, error) {
	t, err := getTenant(ctx, q, inst.TenantID)
	if err != nil {
		return inst, fmt.Errorf("spawn instance %s: %w", inst.Key(), err)
	}
	if old, err := getInstance(ctx, q, inst.TenantID, inst.ID); err == nil {
		return respawn(ctx, q, now, old, inst, spec)
	} else if !errors.Is(err, slum.ErrNotFound) {
		return inst, err
	}
	if inst.ServerID == "" {
		p, err := loadPlacer(ctx, q)
		if err != nil {
			return inst, fmt.Errorf("spawn instance %s: %w", inst.Key(), err)
		}
		if inst.ServerID, err = p.Place(inst.TenantID, t.Region, inst.Process, inst.MemoryMB, ""); err != nil {
			return inst, fmt.Errorf("spawn instance %s: %w", inst.Key(), err)
		}
	} else if err := checkFits(ctx, q, inst); err != nil {
		return inst, fmt.Errorf("spawn instance %s: %w", inst.Key(), err)
	}
	inst.HomeServerID = inst.ServerID
	if inst.Rank, err = q.NextRank(ctx, inst.TenantID); err != nil {
		return inst, fmt.Errorf("spawn instance %s: %w", inst.Key(), err)
	}
	if err := q.InsertInstance(ctx, insertInstanceParams(inst, now)); err != nil {
		return inst, fmt.Errorf("spawn instance %s: %w", inst.Key(), err)
	}
	if err := q.DeleteRemoval(ctx, db.DeleteRemovalParams{TenantID: inst.TenantID, InstanceID: inst.ID}); err != nil {
		return inst, fmt.Errorf("spawn instance %s: %w", inst.Key(), err)
	}
	inst.Generation, inst.CreatedAt, inst.UpdatedAt = 1, fromMS(now), fromMS(now)
	return inst, event(ctx, q, now, slum.InstanceRef(inst.Key()), slum.ReasonPlaced, "placed on "+inst.ServerID)
}

// respawn sets the existing instance old running and applies the memory
// and mode spec gives, or refuses every change when one cannot be made.
func respawn(ctx context.Context, q db.Querier, now int64, old, inst slum.Instance, spec slum.InstanceSpec) (slum.Instance, error) {
	if old.Process != inst.Process || (inst.ServerID != "" && old.ServerID != inst.ServerID) {
		return inst, fmt.Errorf("spawn instance: %w: %s exists as process %s on server %s; move it or remove it first",
			slum.ErrAlreadyExists, old.Key(), old.Process, old.ServerID)
	}
	want := old
	want.DesiredState = slum.StateRunning
	if spec.Mode != "" {
		want.Mode = inst.Mode
	}
	if spec.MemoryMB != 0 {
		want.MemoryMB = inst.MemoryMB
	}
	var changes []string
	if want.DesiredState != old.DesiredState {
		changes = append(changes, "desired state set to running")
	}
	if want.Mode != old.Mode {
		changes = append(changes, fmt.Sprintf("mode %s -> %s", old.Mode, want.Mode))
	}
	if want.MemoryMB != old.MemoryMB {
		if want.MemoryMB > old.MemoryMB {
			srv, err := getServer(ctx, q, old.ServerID)
			if err != nil {
				return inst, fmt.Errorf("spawn instance %s: %w", old.Key(), err)
			}
			use, err := q.ServerUsageOne(ctx, old.ServerID)
			if err != nil {
				return inst, fmt.Errorf("spawn instance %s: %w", old.Key(), err)
			}
			if free := srv.CapacityMB - use.UsedMb + old.MemoryMB; free < want.MemoryMB {
				return inst, fmt.Errorf("spawn instance %s: %w: server %s has %d MB for it, not the %d MB asked; nothing was changed",
					old.Key(), slum.ErrNoCapacity, srv.ID, free, want.MemoryMB)
			}
		}
		changes = append(changes, fmt.Sprintf("memory %d MB -> %d MB", old.MemoryMB, want.MemoryMB))
	}
	if len(changes) == 0 {
		return old, nil
	}
	if _, err := q.UpdateInstance(ctx, updateInstanceParams(want, now)); err != nil {
		return inst, fmt.Errorf("spawn instance %s: %w", old.Key(), err)
	}
	out, err := getInstance(ctx, q, old.TenantID, old.ID)
	if err != nil {
		return inst, err
	}
	reason := slum.ReasonUpdated
	if old.DesiredState != slum.StateRunning {
		reason = slum.ReasonStarted
	}
	return out, event(ctx, q, now, slum.InstanceRef(out.Key()), reason, strings.Join(changes, ", "))
}

// StopInstance sets an instance's desired state to stopped; the instance
// keeps its placement and can be spawned again.
func (s *Desired) StopInstance(ctx context.Context, key slum.InstanceKey) (slum.Instance, error) {
	tenant, id, err := splitKey(key)
	if err != nil {
		return slum.Instance{}, fmt.Errorf("stop instance: %w", err)
	}
	var out slum.Instance
	err = s.write(ctx, func(q db.Querier, now int64) error {
		in, err := getInstance(ctx, q, tenant, id)
		if err != nil {
			return fmt.Errorf("stop instance: %w", err)
		}
		if in.DesiredState == slum.StateStopped {
			out = in
			return nil
		}
		in.DesiredState = slum.StateStopped
		if _, err := q.UpdateInstance(ctx, updateInstanceParams(in, now)); err != nil {
			return fmt.Errorf("stop instance %s: %w", key, err)
		}
		if out, err = getInstance(ctx, q, tenant, id); err != nil {
			return err
		}
		return event(ctx, q, now, slum.InstanceRef(key), slum.ReasonStopped, "desired state set to stopped")
	})
	return out, err
}

// RemoveInstance deletes an instance from the desired state; the controller
// stops it.
func (s *Desired) RemoveInstance(ctx context.Context, key slum.InstanceKey) error {
	tenant, id, err := splitKey(key)
	if err != nil {
		return fmt.Errorf("remove instance: %w", err)
	}
	return s.write(ctx, func(q db.Querier, now int64) error {
		if _, err := getInstance(ctx, q, tenant, id); err != nil {
			return fmt.Errorf("remove instance: %w", err)
		}
		if _, err := q.DeleteInstance(ctx, db.DeleteInstanceParams{TenantID: tenant, ID: id}); err != nil {
			return fmt.Errorf("remove instance %s: %w", key, err)
		}
		if err := q.InsertRemoval(ctx, db.InsertRemovalParams{TenantID: tenant, InstanceID: id, RemovedAt: now}); err != nil {
			return fmt.Errorf("remove instance %s: %w", key, err)
		}
		return event(ctx, q, now, slum.InstanceRef(key), slum.ReasonRemoved, "instance removed")
	})
}

// MoveInstance places an instance on another server: toServer, or where
// slum chooses when that is empty. The controller starts the new copy and
// then stops the old one, which deletes the old copy's data when the
// tenement service has storage_persist = false.
func (s *Desired) MoveInstance(ctx context.Context, key slum.InstanceKey, toServer string) (slum.Move, error) {
	tenant, id, err := splitKey(key)
	if err != nil {
		return slum.Move{}, fmt.Errorf("move instance: %w", err)
	}
	if toServer != "" {
		if err := desired.ValidateID("server", toServer); err != nil {
			return slum.Move{}, fmt.Errorf("move instance: %w", err)
		}
	}
	var mv slum.Move
	err = s.write(ctx, func(q db.Querier, now int64) error {
		in, err := getInstance(ctx, q, tenant, id)
		if err != nil {
			return fmt.Errorf("move instance: %w", err)
		}
		if in.ServerID == toServer {
			return fmt.Errorf("move instance %s: %w: it is already placed on %s", key, slum.ErrConflict, toServer)
		}
		mv = slum.Move{Instance: key, From: in.ServerID}
		if toServer == "" {
			t, err := getTenant(ctx, q, tenant)
			if err != nil {
				return err
			}
			p, err := loadPlacer(ctx, q)
			if err != nil {
				return fmt.Errorf("move instance %s: %w", key, err)
			}
			p.Release(in)
			if toServer, err = p.Place(tenant, t.Region, in.Process, in.MemoryMB, in.ServerID); err != nil {
				return fmt.Errorf("move instance %s: %w", key, err)
			}
		} else {
			in.ServerID = toServer
			if err := checkFits(ctx, q, in); err != nil {
				return fmt.Errorf("move instance %s: %w", key, err)
			}
		}
		in.ServerID, in.HomeServerID = toServer, toServer
		mv.To = toServer
		if _, err := q.UpdateInstance(ctx, updateInstanceParams(in, now)); err != nil {
			return fmt.Errorf("move instance %s: %w", key, err)
		}
		return event(ctx, q, now, slum.InstanceRef(key), slum.ReasonMoved, "moved from "+mv.From+" to "+toServer)
	})
	return mv, err
}

// GetInstance returns one instance by "tenant:instance".
func (s *Desired) GetInstance(ctx context.Context, key slum.InstanceKey) (slum.Instance, error) {
	tenant, id, err := splitKey(key)
	if err != nil {
		return slum.Instance{}, err
	}
	return getInstance(ctx, s.eng.Read(), tenant, id)
}

// ListInstances returns every instance, by tenant and id.
func (s *Desired) ListInstances(ctx context.Context) ([]slum.Instance, error) {
	rows, err := s.eng.Read().ListInstances(ctx)
	return convert(rows, err, "list instances", toInstance)
}

// ListInstancesOfTenant returns one tenant's instances.
func (s *Desired) ListInstancesOfTenant(ctx context.Context, tenant string) ([]slum.Instance, error) {
	if _, err := s.GetTenant(ctx, tenant); err != nil {
		return nil, err
	}
	rows, err := s.eng.Read().ListInstancesOfTenant(ctx, tenant)
	return convert(rows, err, "list instances of "+tenant, toInstance)
}

// ListInstancesOnServer returns the instances placed on a server.
func (s *Desired) ListInstancesOnServer(ctx context.Context, serverID string) ([]slum.Instance, error) {
	if _, err := s.GetServer(ctx, serverID); err != nil {
		return nil, err
	}
	rows, err := s.eng.Read().ListInstancesOnServer(ctx, serverID)
	return convert(rows, err, "list instances on "+serverID, toInstance)
}

// Reschedule makes the controller's failover moves under its lease, in
// one transaction. A move whose instance changed since it was planned, or
// whose target now runs another copy of the tenant's process, is skipped;
// the rest are returned, with the moved instances as stored and the
// revision, so the controller can apply them to the snapshot it holds
// rather than read 100,000 instances again.
func (s *Desired) Reschedule(ctx context.Context, f slum.Fence, rs []slum.Reschedule) (slum.Rescheduled, error) {
	var out slum.Rescheduled
	if len(rs) == 0 {
		return out, nil
	}
	now := ms(s.now())
	err := s.fenced(ctx, f, func(q db.Querier) error {
		out = slum.Rescheduled{}
		for _, r := range rs {
			siblings, err := q.ListInstancesOfTenant(ctx, r.TenantID)
			if err != nil {
				return fmt.Errorf("reschedule %s: %w", r.Key(), err)
			}
			clash := false
			for _, sib := range siblings {
				if sib.ID != r.InstanceID && sib.ServerID == r.To {
					for _, me := range siblings {
						if me.ID == r.InstanceID && me.Process == sib.Process {
							clash = true
						}
					}
				}
			}
			if clash {
				continue
			}
			n, err := q.RescheduleInstance(ctx, db.RescheduleInstanceParams{ToServer: r.To, UpdatedAt: now,
				TenantID: r.TenantID, ID: r.InstanceID, FromServer: r.From, Generation: r.Generation})
			if err != nil {
				return fmt.Errorf("reschedule %s: %w", r.Key(), err)
			}
			if n == 0 {
				continue
			}
			if err := event(ctx, q, now, slum.InstanceRef(r.Key()), slum.ReasonRescheduled, fmt.Sprintf("%s -> %s: %s", r.From, r.To, r.Reason)); err != nil {
				return err
			}
			row, err := q.GetInstance(ctx, db.GetInstanceParams{TenantID: r.TenantID, ID: r.InstanceID})
			if err != nil {
				return fmt.Errorf("reschedule %s: read it back: %w", r.Key(), err)
			}
			out.Moves = append(out.Moves, r)
			out.Instances = append(out.Instances, toInstance(row))
		}
		if len(out.Moves) == 0 {
			return nil
		}
		if err := q.BumpRevision(ctx); err != nil {
			return err
		}
		rev, err := q.GetRevision(ctx)
		out.Revision = rev
		return err
	})
	if err != nil {
		return slum.Rescheduled{}, err
	}
	return out, nil
}
