package desired

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/slum-fleet/slum/db"
)

// Report is what one controller pass observed, written in one transaction.
type Report struct {
	Instances []InstanceStatus
	Servers   []ServerStatus
	Events    []Event
}

// maxEvents bounds the event log; older events are trimmed.
const maxEvents = 10000

// WriteReport records observed status and events. It does not bump the
// desired revision: observing the fleet is not a change to what it should be.
func (s *Store) WriteReport(ctx context.Context, r Report) error {
	if len(r.Instances) == 0 && len(r.Servers) == 0 && len(r.Events) == 0 {
		return nil
	}
	return s.db.InTx(ctx, func(q *db.Queries) error {
		for _, st := range r.Instances {
			err := q.UpsertInstanceStatus(ctx, db.UpsertInstanceStatusParams{
				TenantID: st.TenantID, InstanceID: st.InstanceID, ServerID: st.ServerID, Phase: st.Phase,
				Health: st.Health, LastError: st.LastError, Attempts: st.Attempts,
				ObservedGeneration: st.ObservedGeneration, UpdatedAt: ms(st.UpdatedAt),
			})
			// The instance may have been removed since the pass began.
			if err != nil && !isForeignKey(err) {
				return fmt.Errorf("write status of %s:%s: %w", st.TenantID, st.InstanceID, err)
			}
		}
		for _, st := range r.Servers {
			err := q.UpsertServerStatus(ctx, db.UpsertServerStatusParams{
				ServerID: st.ServerID, Health: st.Health, LastError: st.LastError,
				ConsecutiveFailures: st.ConsecutiveFailures, LastSeenAt: ms(st.LastSeenAt),
				Instances: st.Instances, Unmanaged: st.Unmanaged, UpdatedAt: ms(st.UpdatedAt),
			})
			if err != nil && !isForeignKey(err) {
				return fmt.Errorf("write status of server %s: %w", st.ServerID, err)
			}
		}
		for _, e := range r.Events {
			if err := q.InsertEvent(ctx, db.InsertEventParams{At: ms(e.At), Object: e.Object, Reason: e.Reason, Message: e.Message}); err != nil {
				return fmt.Errorf("write event: %w", err)
			}
		}
		if len(r.Events) > 0 {
			max, err := q.MaxEventID(ctx)
			if err != nil {
				return err
			}
			if max > maxEvents {
				return q.TrimEvents(ctx, max-maxEvents)
			}
		}
		return nil
	})
}

func isForeignKey(err error) bool {
	return err != nil && errorsContains(err, "FOREIGN KEY constraint failed")
}

func errorsContains(err error, s string) bool { return strings.Contains(err.Error(), s) }

func toInstanceStatus(r db.InstanceStatus) InstanceStatus {
	return InstanceStatus{TenantID: r.TenantID, InstanceID: r.InstanceID, ServerID: r.ServerID, Phase: r.Phase,
		Health: r.Health, LastError: r.LastError, Attempts: r.Attempts, ObservedGeneration: r.ObservedGeneration,
		UpdatedAt: fromMS(r.UpdatedAt)}
}

// InstanceStatus returns what the controller last observed of an instance.
// An instance the controller has not seen yet is pending.
func (s *Store) InstanceStatus(ctx context.Context, key string) (InstanceStatus, error) {
	in, err := s.GetInstance(ctx, key)
	if err != nil {
		return InstanceStatus{}, err
	}
	r, err := s.db.Queries().GetInstanceStatus(ctx, db.GetInstanceStatusParams{TenantID: in.TenantID, InstanceID: in.ID})
	if errors.Is(err, sql.ErrNoRows) {
		return InstanceStatus{TenantID: in.TenantID, InstanceID: in.ID, ServerID: in.ServerID, Phase: "pending"}, nil
	}
	if err != nil {
		return InstanceStatus{}, fmt.Errorf("instance status %s: %w", key, err)
	}
	return toInstanceStatus(r), nil
}

// ListInstanceStatus returns every recorded instance status.
func (s *Store) ListInstanceStatus(ctx context.Context) ([]InstanceStatus, error) {
	rows, err := s.db.Queries().ListInstanceStatus(ctx)
	return convert(rows, err, "list instance status", toInstanceStatus)
}

// ListServerStatus returns every recorded server status.
func (s *Store) ListServerStatus(ctx context.Context) ([]ServerStatus, error) {
	rows, err := s.db.Queries().ListServerStatus(ctx)
	return convert(rows, err, "list server status", func(r db.ServerStatus) ServerStatus {
		return ServerStatus{ServerID: r.ServerID, Health: r.Health, LastError: r.LastError,
			ConsecutiveFailures: r.ConsecutiveFailures, LastSeenAt: fromMS(r.LastSeenAt),
			Instances: r.Instances, Unmanaged: r.Unmanaged, UpdatedAt: fromMS(r.UpdatedAt)}
	})
}

func toEvent(r db.Event) Event {
	return Event{ID: r.ID, At: fromMS(r.At), Object: r.Object, Reason: r.Reason, Message: r.Message}
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

// RecordPlacements adds ledger entries. The controller calls it before it
// sends the spawns, so a crash in between leaves nothing it cannot clean up.
func (s *Store) RecordPlacements(ctx context.Context, ps []Placement) error {
	if len(ps) == 0 {
		return nil
	}
	now := ms(s.now())
	return s.db.InTx(ctx, func(q *db.Queries) error {
		for _, p := range ps {
			if err := q.InsertPlacement(ctx, db.InsertPlacementParams{ServerID: p.ServerID, Name: p.Name,
				TenantID: p.TenantID, InstanceID: p.InstanceID, CreatedAt: now}); err != nil && !isForeignKey(err) {
				return fmt.Errorf("record placement %s on %s: %w", p.Name, p.ServerID, err)
			}
		}
		return nil
	})
}

// ForgetPlacements removes ledger entries once their stops are confirmed.
func (s *Store) ForgetPlacements(ctx context.Context, ps []Placement) error {
	if len(ps) == 0 {
		return nil
	}
	return s.db.InTx(ctx, func(q *db.Queries) error {
		for _, p := range ps {
			if err := q.DeletePlacement(ctx, db.DeletePlacementParams{ServerID: p.ServerID, Name: p.Name}); err != nil {
				return fmt.Errorf("forget placement %s on %s: %w", p.Name, p.ServerID, err)
			}
		}
		return nil
	})
}
