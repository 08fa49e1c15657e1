package desired

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/slum-fleet/slum/db"
	"github.com/slum-fleet/slum/observed"
)

// Report is what the controller observed and decided since its last
// report, written in one fenced transaction. Status rows are the
// controller's own: it upserts them and drops the rows of objects that left
// the desired state.
type Report struct {
	Instances     []InstanceStatus
	DropInstances []InstanceRef
	Servers       []ServerStatus
	DropServers   []string
	Tenants       []TenantStatus
	DropTenants   []string
	Events        []Event
	// Forget removes ledger entries whose copies are confirmed gone.
	Forget []Placement
}

// InstanceRef names an instance.
type InstanceRef struct{ TenantID, InstanceID string }

// Empty reports whether the report writes nothing.
func (r *Report) Empty() bool {
	return len(r.Instances)+len(r.DropInstances)+len(r.Servers)+len(r.DropServers)+len(r.Tenants)+
		len(r.DropTenants)+len(r.Events)+len(r.Forget) == 0
}

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
func (s *Store) WriteReport(ctx context.Context, f Fence, r Report) error {
	if r.Empty() {
		return nil
	}
	for _, part := range splitReport(r, reportBatch) {
		if err := s.fenced(ctx, f, func(q *db.Queries) error { return writeReport(ctx, q, part) }); err != nil {
			return err
		}
	}
	return nil
}

// reportBatch is the most status rows one report transaction writes.
const reportBatch = 2000

// splitReport cuts r into parts of at most n status rows each; the last
// part carries everything else.
func splitReport(r Report, n int) []Report {
	var parts []Report
	for len(r.Instances)+len(r.Tenants) > n {
		var p Report
		k := min(n, len(r.Instances))
		p.Instances, r.Instances = r.Instances[:k], r.Instances[k:]
		k = min(n-k, len(r.Tenants))
		p.Tenants, r.Tenants = r.Tenants[:k], r.Tenants[k:]
		parts = append(parts, p)
	}
	return append(parts, r)
}

func writeReport(ctx context.Context, q *db.Queries, r Report) error {
	for _, st := range r.Instances {
		if err := q.UpsertInstanceStatus(ctx, db.UpsertInstanceStatusParams{
			TenantID: st.TenantID, InstanceID: st.InstanceID, ServerID: st.ServerID, Phase: string(st.Phase),
			Health: st.Health, LastError: st.LastError, Message: st.Message, Attempts: st.Attempts,
			ObservedGeneration: st.ObservedGeneration, UpdatedAt: ms(st.UpdatedAt),
		}); err != nil {
			return fmt.Errorf("write status of %s: %w", st.Key(), err)
		}
	}
	for _, ref := range r.DropInstances {
		if err := q.DeleteInstanceStatus(ctx, db.DeleteInstanceStatusParams{TenantID: ref.TenantID, InstanceID: ref.InstanceID}); err != nil {
			return fmt.Errorf("drop status of %s:%s: %w", ref.TenantID, ref.InstanceID, err)
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
	for _, st := range r.Tenants {
		if err := q.UpsertTenantStatus(ctx, db.UpsertTenantStatusParams{
			TenantID: st.TenantID, Serving: joinCopies(st.Serving), Spares: joinCopies(st.Spares),
			Reason: st.Reason, ChangedAt: ms(st.ChangedAt), UpdatedAt: ms(st.UpdatedAt),
		}); err != nil {
			return fmt.Errorf("write status of tenant %s: %w", st.TenantID, err)
		}
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

func insertEvents(ctx context.Context, q *db.Queries, evs []Event) error {
	for _, e := range evs {
		if err := q.InsertEvent(ctx, db.InsertEventParams{At: ms(e.At), Object: e.Object, Reason: string(e.Reason), Message: e.Message}); err != nil {
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
func (s *Store) StatusRevision(ctx context.Context) (int64, error) {
	return s.db.Queries().GetStatusRevision(ctx)
}

func toInstanceStatus(r db.InstanceStatus) InstanceStatus {
	return InstanceStatus{TenantID: r.TenantID, InstanceID: r.InstanceID, ServerID: r.ServerID, Phase: Phase(r.Phase),
		Health: r.Health, LastError: r.LastError, Message: r.Message, Attempts: r.Attempts,
		ObservedGeneration: r.ObservedGeneration, UpdatedAt: fromMS(r.UpdatedAt)}
}

// InstanceStatus returns what the controller last observed of an instance.
// An instance the controller has not reported on yet is pending.
func (s *Store) InstanceStatus(ctx context.Context, key string) (InstanceStatus, error) {
	in, err := s.GetInstance(ctx, key)
	if err != nil {
		return InstanceStatus{}, err
	}
	r, err := s.db.Queries().GetInstanceStatus(ctx, db.GetInstanceStatusParams{TenantID: in.TenantID, InstanceID: in.ID})
	if errors.Is(err, sql.ErrNoRows) {
		return InstanceStatus{TenantID: in.TenantID, InstanceID: in.ID, ServerID: in.ServerID, Phase: PhasePending}, nil
	}
	if err != nil {
		return InstanceStatus{}, fmt.Errorf("instance status %s: %w", key, err)
	}
	return toInstanceStatus(r), nil
}

// ListInstanceStatus returns every recorded instance status. Rows of
// instances that no longer exist may remain until the controller drops
// them; join with the desired instances.
func (s *Store) ListInstanceStatus(ctx context.Context) ([]InstanceStatus, error) {
	rows, err := s.db.Queries().ListInstanceStatus(ctx)
	return convert(rows, err, "list instance status", toInstanceStatus)
}

func toServerStatus(r db.ServerStatus) ServerStatus {
	return ServerStatus{ServerID: r.ServerID, Health: observed.Health(r.Health), HealthSince: fromMS(r.HealthSince),
		LastError: r.LastError, ConsecutiveFailures: r.ConsecutiveFailures, LastSeenAt: fromMS(r.LastSeenAt),
		Listed: r.Listed != 0, Instances: r.Instances, Unmanaged: r.Unmanaged, PendingStops: r.PendingStops,
		Failover: FailoverState(r.Failover), FailoverReason: r.FailoverReason, UpdatedAt: fromMS(r.UpdatedAt)}
}

// ServerStatus returns what the controller last observed of a server; a
// server it has not reported on is of unknown health.
func (s *Store) ServerStatus(ctx context.Context, id string) (ServerStatus, error) {
	if _, err := s.GetServer(ctx, id); err != nil {
		return ServerStatus{}, err
	}
	all, err := s.ListServerStatus(ctx)
	if err != nil {
		return ServerStatus{}, err
	}
	for _, st := range all {
		if st.ServerID == id {
			return st, nil
		}
	}
	return ServerStatus{ServerID: id, Health: observed.HealthUnknown}, nil
}

// ListServerStatus returns every recorded server status.
func (s *Store) ListServerStatus(ctx context.Context) ([]ServerStatus, error) {
	rows, err := s.db.Queries().ListServerStatus(ctx)
	return convert(rows, err, "list server status", toServerStatus)
}

func joinCopies(cs []CopyRef) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ",")
}

func splitCopies(s string) []CopyRef {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := make([]CopyRef, 0, len(parts))
	for _, p := range parts {
		inst, server, _ := strings.Cut(p, "@")
		out = append(out, CopyRef{Instance: inst, Server: server})
	}
	return out
}

func toTenantStatus(r db.TenantStatus) TenantStatus {
	return TenantStatus{TenantID: r.TenantID, Serving: splitCopies(r.Serving), Spares: splitCopies(r.Spares),
		Reason: r.Reason, ChangedAt: fromMS(r.ChangedAt), UpdatedAt: fromMS(r.UpdatedAt)}
}

// TenantStatus returns who serves a tenant, as the controller last
// decided; before any controller has, nothing serves it and the reason
// says so.
func (s *Store) TenantStatus(ctx context.Context, id string) (TenantStatus, error) {
	if _, err := s.GetTenant(ctx, id); err != nil {
		return TenantStatus{}, err
	}
	r, err := s.db.Queries().GetTenantStatus(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return TenantStatus{TenantID: id, Reason: "no controller has decided yet: is 'slum run' running?"}, nil
	}
	if err != nil {
		return TenantStatus{}, fmt.Errorf("status of tenant %s: %w", id, err)
	}
	return toTenantStatus(r), nil
}

// ListTenantStatus returns who serves each tenant, as the controller last
// decided.
func (s *Store) ListTenantStatus(ctx context.Context) ([]TenantStatus, error) {
	rows, err := s.db.Queries().ListTenantStatus(ctx)
	return convert(rows, err, "list tenant status", toTenantStatus)
}

func toEvent(r db.Event) Event {
	return Event{ID: r.ID, At: fromMS(r.At), Object: r.Object, Reason: EventReason(r.Reason), Message: r.Message}
}

// Events returns events after id since, oldest first, at most limit.
func (s *Store) Events(ctx context.Context, since int64, limit int64) ([]Event, error) {
	rows, err := s.db.Queries().ListEvents(ctx, db.ListEventsParams{ID: since, Limit: limit})
	return convert(rows, err, "list events", toEvent)
}

// RecentEvents returns the last n events, oldest first.
func (s *Store) RecentEvents(ctx context.Context, n int64) ([]Event, error) {
	rows, err := s.db.Queries().RecentEvents(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[len(rows)-1-i] = toEvent(r)
	}
	return out, nil
}

// ListPlacements returns the ownership ledger.
func (s *Store) ListPlacements(ctx context.Context) ([]Placement, error) {
	rows, err := s.db.Queries().ListPlacements(ctx)
	return convert(rows, err, "list placements", func(r db.Placement) Placement {
		return Placement{ServerID: r.ServerID, Name: r.Name, TenantID: r.TenantID, InstanceID: r.InstanceID}
	})
}

// RecordPlacements adds ledger entries under the controller's lease. The
// controller calls it before it sends the spawns, so a crash in between
// leaves nothing it cannot clean up. Many entries go in transactions of
// reportBatch, so the write lock is never held for long; an entry whose
// spawn never follows (a failure part-way) is forgotten once its copy is
// seen not to run.
func (s *Store) RecordPlacements(ctx context.Context, f Fence, ps []Placement) error {
	now := ms(s.now())
	for batch := range slices.Chunk(ps, reportBatch) {
		err := s.fenced(ctx, f, func(q *db.Queries) error {
			for _, p := range batch {
				if err := q.InsertPlacement(ctx, db.InsertPlacementParams{ServerID: p.ServerID, Name: p.Name,
					TenantID: p.TenantID, InstanceID: p.InstanceID, CreatedAt: now}); err != nil && !isForeignKey(err) {
					return fmt.Errorf("record placement %s on %s: %w", p.Name, p.ServerID, err)
				}
			}
			return nil
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
