package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/db"
)

// Status is what the controller observed and decided: each instance's,
// server's and tenant's status, its ledger of placements, the plans it
// holds back and the event log. Only the controller writes it, under its
// lease's fence (an operator's approval of a held plan excepted).
type Status struct{ base }

// maxEvents bounds the event log; older events are trimmed.
const maxEvents = 10000

// WriteReport records observed status, events and forgotten placements
// under the controller's lease, and bumps the status revision so routers
// and API watchers notice. It does not bump the desired revision: observing
// the fleet is not a change to what it should be.
//
// A large report (a fleet converging from empty) is written in several
// transactions of at most reportBatch rows, so the database's write lock
// is never held for long: the lease is renewed and the CLI writes in
// between. Each row is true on its own; events and forgotten placements
// come in the last transaction, so a failure part-way writes none of them
// and the caller retries the whole report.
func (s *Status) WriteReport(ctx context.Context, f slum.Fence, r slum.Report) error {
	if r.Empty() {
		return nil
	}
	for _, part := range splitReport(r, reportBatch) {
		if err := s.fenced(ctx, f, func(q db.Querier) error { return writeReport(ctx, q, part) }); err != nil {
			return err
		}
	}
	return nil
}

// reportBatch is the most status rows one report transaction writes.
const reportBatch = 2000

// splitReport cuts r into parts of at most n status rows each; the last
// part carries everything else.
func splitReport(r slum.Report, n int) []slum.Report {
	var parts []slum.Report
	for len(r.Instances)+len(r.Tenants) > n {
		var p slum.Report
		k := min(n, len(r.Instances))
		p.Instances, r.Instances = r.Instances[:k], r.Instances[k:]
		k = min(n-k, len(r.Tenants))
		p.Tenants, r.Tenants = r.Tenants[:k], r.Tenants[k:]
		parts = append(parts, p)
	}
	return append(parts, r)
}

func writeReport(ctx context.Context, q db.Querier, r slum.Report) error {
	instances := make([]db.UpsertInstanceStatusParams, len(r.Instances))
	for i, st := range r.Instances {
		instances[i] = db.UpsertInstanceStatusParams{
			TenantID: st.TenantID, InstanceID: st.InstanceID, ServerID: st.ServerID, Phase: string(st.Phase),
			Health: string(st.Health), LastError: st.LastError, Message: st.Message, Attempts: st.Attempts,
			ObservedGeneration: st.ObservedGeneration, UpdatedAt: ms(st.UpdatedAt),
		}
	}
	err := insertAll(ctx, q, instances, BulkQuerier.UpsertInstanceStatuses, func(i int) error {
		if err := q.UpsertInstanceStatus(ctx, instances[i]); err != nil {
			return fmt.Errorf("write status of %s: %w", r.Instances[i].Key(), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, key := range r.DropInstances {
		tenant, id := key.Split()
		if err := q.DeleteInstanceStatus(ctx, db.DeleteInstanceStatusParams{TenantID: tenant, InstanceID: id}); err != nil {
			return fmt.Errorf("drop status of %s: %w", key, err)
		}
	}
	for _, st := range r.Servers {
		if err := q.UpsertServerStatus(ctx, db.UpsertServerStatusParams{
			ServerID: st.ServerID, Health: string(st.Health), HealthSince: ms(st.HealthSince), LastError: st.LastError,
			ConsecutiveFailures: st.ConsecutiveFailures, LastSeenAt: ms(st.LastSeenAt), Listed: boolInt(st.Listed),
			Instances: st.Instances, Unmanaged: st.Unmanaged, PendingStops: st.PendingStops,
			Failover: string(st.Failover), FailoverReason: st.FailoverReason, UpdatedAt: ms(st.UpdatedAt),
		}); err != nil {
			return fmt.Errorf("write status of server %s: %w", st.ServerID, err)
		}
	}
	for _, id := range r.DropServers {
		if err := q.DeleteServerStatus(ctx, id); err != nil {
			return fmt.Errorf("drop status of server %s: %w", id, err)
		}
	}
	tenants := make([]db.UpsertTenantStatusParams, len(r.Tenants))
	for i, st := range r.Tenants {
		tenants[i] = db.UpsertTenantStatusParams{
			TenantID: st.TenantID, Serving: joinCopies(st.Serving), Spares: joinCopies(st.Spares),
			Reason: st.Reason, ChangedAt: ms(st.ChangedAt), UpdatedAt: ms(st.UpdatedAt),
		}
	}
	err = insertAll(ctx, q, tenants, BulkQuerier.UpsertTenantStatuses, func(i int) error {
		if err := q.UpsertTenantStatus(ctx, tenants[i]); err != nil {
			return fmt.Errorf("write status of tenant %s: %w", tenants[i].TenantID, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range r.DropTenants {
		if err := q.DeleteTenantStatus(ctx, id); err != nil {
			return fmt.Errorf("drop status of tenant %s: %w", id, err)
		}
	}
	for _, p := range r.Forget {
		if err := q.DeletePlacement(ctx, db.DeletePlacementParams{ServerID: p.ServerID, Name: p.Name}); err != nil {
			return fmt.Errorf("forget placement %s on %s: %w", p.Name, p.ServerID, err)
		}
		if err := q.DeleteRemovalIfGone(ctx, db.DeleteRemovalIfGoneParams{TenantID: p.TenantID, InstanceID: p.InstanceID}); err != nil {
			return fmt.Errorf("forget placement %s on %s: %w", p.Name, p.ServerID, err)
		}
	}
	if err := insertEvents(ctx, q, r.Events); err != nil {
		return err
	}
	return q.BumpStatusRevision(ctx)
}

func insertEvents(ctx context.Context, q db.Querier, evs []slum.Event) error {
	for _, e := range evs {
		if err := q.InsertEvent(ctx, db.InsertEventParams{At: ms(e.At), Object: string(e.Object), Reason: string(e.Reason), Message: e.Message}); err != nil {
			return fmt.Errorf("write event: %w", err)
		}
	}
	if len(evs) == 0 {
		return nil
	}
	max, err := q.MaxEventID(ctx)
	if err != nil {
		return err
	}
	if max > maxEvents {
		return q.TrimEvents(ctx, max-maxEvents)
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// StatusRevision counts the controller's status writes.
func (s *Status) StatusRevision(ctx context.Context) (int64, error) {
	return s.eng.Read().GetStatusRevision(ctx)
}

func toInstanceStatus(r db.InstanceStatus) slum.InstanceStatus {
	return slum.InstanceStatus{TenantID: r.TenantID, InstanceID: r.InstanceID, ServerID: r.ServerID, Phase: slum.Phase(r.Phase),
		Health: slum.InstanceHealth(r.Health), LastError: r.LastError, Message: r.Message, Attempts: r.Attempts,
		ObservedGeneration: r.ObservedGeneration, UpdatedAt: fromMS(r.UpdatedAt)}
}

// InstanceStatus returns what the controller last observed of an instance.
// An instance the controller has not reported on yet is pending.
func (s *Status) InstanceStatus(ctx context.Context, key slum.InstanceKey) (slum.InstanceStatus, error) {
	in, err := (&Desired{s.base}).GetInstance(ctx, key)
	if err != nil {
		return slum.InstanceStatus{}, err
	}
	r, err := s.eng.Read().GetInstanceStatus(ctx, db.GetInstanceStatusParams{TenantID: in.TenantID, InstanceID: in.ID})
	if errors.Is(err, sql.ErrNoRows) {
		return slum.InstanceStatus{TenantID: in.TenantID, InstanceID: in.ID, ServerID: in.ServerID, Phase: slum.PhasePending}, nil
	}
	if err != nil {
		return slum.InstanceStatus{}, fmt.Errorf("instance status %s: %w", key, err)
	}
	return toInstanceStatus(r), nil
}

// ListInstanceStatus returns every recorded instance status. Rows of
// instances that no longer exist may remain until the controller drops
// them; join with the desired instances.
func (s *Status) ListInstanceStatus(ctx context.Context) ([]slum.InstanceStatus, error) {
	rows, err := s.eng.Read().ListInstanceStatus(ctx)
	return convert(rows, err, "list instance status", toInstanceStatus)
}

func toServerStatus(r db.ServerStatus) slum.ServerStatus {
	return slum.ServerStatus{ServerID: r.ServerID, Health: slum.Health(r.Health), HealthSince: fromMS(r.HealthSince),
		LastError: r.LastError, ConsecutiveFailures: r.ConsecutiveFailures, LastSeenAt: fromMS(r.LastSeenAt),
		Listed: r.Listed != 0, Instances: r.Instances, Unmanaged: r.Unmanaged, PendingStops: r.PendingStops,
		Failover: slum.FailoverState(r.Failover), FailoverReason: r.FailoverReason, UpdatedAt: fromMS(r.UpdatedAt)}
}

// ServerStatus returns what the controller last observed of a server; a
// server it has not reported on is of unknown health.
func (s *Status) ServerStatus(ctx context.Context, id string) (slum.ServerStatus, error) {
	if _, err := (&Desired{s.base}).GetServer(ctx, id); err != nil {
		return slum.ServerStatus{}, err
	}
	all, err := s.ListServerStatus(ctx)
	if err != nil {
		return slum.ServerStatus{}, err
	}
	for _, st := range all {
		if st.ServerID == id {
			return st, nil
		}
	}
	return slum.ServerStatus{ServerID: id, Health: slum.HealthUnknown}, nil
}

// ListServerStatus returns every recorded server status.
func (s *Status) ListServerStatus(ctx context.Context) ([]slum.ServerStatus, error) {
	rows, err := s.eng.Read().ListServerStatus(ctx)
	return convert(rows, err, "list server status", toServerStatus)
}

func joinCopies(cs []slum.CopyRef) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ",")
}

func splitCopies(s string) []slum.CopyRef {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := make([]slum.CopyRef, 0, len(parts))
	for _, p := range parts {
		inst, server, _ := strings.Cut(p, "@")
		out = append(out, slum.CopyRef{Instance: inst, Server: server})
	}
	return out
}

func toTenantStatus(r db.TenantStatus) slum.TenantStatus {
	return slum.TenantStatus{TenantID: r.TenantID, Serving: splitCopies(r.Serving), Spares: splitCopies(r.Spares),
		Reason: r.Reason, ChangedAt: fromMS(r.ChangedAt), UpdatedAt: fromMS(r.UpdatedAt)}
}

// TenantStatus returns who serves a tenant, as the controller last
// decided; before any controller has, nothing serves it and the reason
// says so.
func (s *Status) TenantStatus(ctx context.Context, id string) (slum.TenantStatus, error) {
	if _, err := (&Desired{s.base}).GetTenant(ctx, id); err != nil {
		return slum.TenantStatus{}, err
	}
	r, err := s.eng.Read().GetTenantStatus(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return slum.TenantStatus{TenantID: id, Reason: "no controller has decided yet: is 'slum run' running?"}, nil
	}
	if err != nil {
		return slum.TenantStatus{}, fmt.Errorf("status of tenant %s: %w", id, err)
	}
	return toTenantStatus(r), nil
}

// ListTenantStatus returns who serves each tenant, as the controller last
// decided.
func (s *Status) ListTenantStatus(ctx context.Context) ([]slum.TenantStatus, error) {
	rows, err := s.eng.Read().ListTenantStatus(ctx)
	return convert(rows, err, "list tenant status", toTenantStatus)
}

func toEvent(r db.Event) slum.Event {
	return slum.Event{ID: r.ID, At: fromMS(r.At), Object: slum.ObjectRef(r.Object), Reason: slum.EventReason(r.Reason), Message: r.Message}
}

// Events returns events after id since, oldest first, at most limit.
func (s *Status) Events(ctx context.Context, since int64, limit int64) ([]slum.Event, error) {
	rows, err := s.eng.Read().ListEvents(ctx, db.ListEventsParams{ID: since, Limit: limit})
	return convert(rows, err, "list events", toEvent)
}

// RecentEvents returns the last n events, oldest first.
func (s *Status) RecentEvents(ctx context.Context, n int64) ([]slum.Event, error) {
	rows, err := s.eng.Read().RecentEvents(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	out := make([]slum.Event, len(rows))
	for i, r := range rows {
		out[len(rows)-1-i] = toEvent(r)
	}
	return out, nil
}

// ListPlacements returns the ownership ledger.
func (s *Status) ListPlacements(ctx context.Context) ([]slum.Placement, error) {
	rows, err := s.eng.Read().ListPlacements(ctx)
	return convert(rows, err, "list placements", func(r db.Placement) slum.Placement {
		return slum.Placement{ServerID: r.ServerID, Name: r.Name, TenantID: r.TenantID, InstanceID: r.InstanceID}
	})
}

// RecordPlacements adds ledger entries under the controller's lease. The
// controller calls it before it sends the spawns, so a crash in between
// leaves nothing it cannot clean up. Many entries go in transactions of
// reportBatch, so the write lock is never held for long; an entry whose
// spawn never follows (a failure part-way) is forgotten once its copy is
// seen not to run.
func (s *Status) RecordPlacements(ctx context.Context, f slum.Fence, ps []slum.Placement) error {
	now := ms(s.now())
	for batch := range slices.Chunk(ps, reportBatch) {
		rows := make([]db.InsertPlacementParams, len(batch))
		for i, p := range batch {
			rows[i] = db.InsertPlacementParams{ServerID: p.ServerID, Name: p.Name, TenantID: p.TenantID, InstanceID: p.InstanceID, CreatedAt: now}
		}
		err := s.fenced(ctx, f, func(q db.Querier) error {
			// A placement whose instance was deleted meanwhile is left out
			// (its batch, refused as a whole, goes in row by row).
			return insertAll(ctx, q, rows, BulkQuerier.InsertPlacements, func(i int) error {
				if err := q.InsertPlacement(ctx, rows[i]); err != nil && !isForeignKey(err) {
					return fmt.Errorf("record placement %s on %s: %w", rows[i].Name, rows[i].ServerID, err)
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func isForeignKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}
