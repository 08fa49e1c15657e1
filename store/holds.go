package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/db"
)

func toHold(r db.Hold) slum.Hold {
	return slum.Hold{ID: r.ID, Kind: slum.HoldKind(r.Kind), Fingerprint: r.Fingerprint, Summary: r.Summary, Detail: r.Detail,
		State: slum.HoldState(r.State), CreatedAt: fromMS(r.CreatedAt), UpdatedAt: fromMS(r.UpdatedAt),
		ApprovedAt: fromMS(r.ApprovedAt), ApprovedBy: r.ApprovedBy}
}

// SyncHolds records the plans held back now, under the controller's lease:
// a new held plan gets a hold (and an event), one already open is kept,
// and open holds no longer in the list are cleared (the plan went away).
// It returns the open holds, with any approval the operator gave.
func (s *Status) SyncHolds(ctx context.Context, f slum.Fence, specs []slum.HoldSpec) ([]slum.Hold, error) {
	now := ms(s.now())
	var out []slum.Hold
	err := s.fenced(ctx, f, func(q db.Querier) error {
		out = out[:0]
		want := map[slum.HoldKind]map[string]bool{}
		for _, sp := range specs {
			if want[sp.Kind] == nil {
				want[sp.Kind] = map[string]bool{}
			}
			want[sp.Kind][sp.Fingerprint] = true
		}
		open, err := q.ListOpenHolds(ctx)
		if err != nil {
			return fmt.Errorf("list holds: %w", err)
		}
		for _, h := range open {
			if want[slum.HoldKind(h.Kind)][h.Fingerprint] {
				continue
			}
			if err := q.SetHoldState(ctx, db.SetHoldStateParams{State: string(slum.HoldCleared), UpdatedAt: now, ID: h.ID}); err != nil {
				return err
			}
			if err := event(ctx, q, now, slum.HoldRef(h.ID), slum.ReasonReleased, "no longer needed: "+h.Summary); err != nil {
				return err
			}
		}
		for _, sp := range specs {
			r, err := q.GetOpenHold(ctx, db.GetOpenHoldParams{Kind: string(sp.Kind), Fingerprint: sp.Fingerprint})
			switch {
			case errors.Is(err, sql.ErrNoRows):
				id, err := q.InsertHold(ctx, db.InsertHoldParams{Kind: string(sp.Kind), Fingerprint: sp.Fingerprint,
					Summary: sp.Summary, Detail: sp.Detail, CreatedAt: now, UpdatedAt: now})
				if err != nil {
					return fmt.Errorf("record hold: %w", err)
				}
				if err := event(ctx, q, now, slum.HoldRef(id), slum.ReasonHeld, sp.Summary+"; approve this plan once with 'slum approve "+itoa(id)+"'"); err != nil {
					return err
				}
				if r, err = q.GetHold(ctx, id); err != nil {
					return err
				}
			case err != nil:
				return fmt.Errorf("read hold: %w", err)
			case r.Summary != sp.Summary || r.Detail != sp.Detail:
				if err := q.TouchHold(ctx, db.TouchHoldParams{Summary: sp.Summary, Detail: sp.Detail, UpdatedAt: now, ID: r.ID}); err != nil {
					return err
				}
			}
			out = append(out, toHold(r))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FinishHold marks an approved hold carried out, under the controller's
// lease: the approval is spent and the next such plan is held again.
func (s *Status) FinishHold(ctx context.Context, f slum.Fence, id int64) error {
	now := ms(s.now())
	return s.fenced(ctx, f, func(q db.Querier) error {
		if err := q.SetHoldState(ctx, db.SetHoldStateParams{State: string(slum.HoldDone), UpdatedAt: now, ID: id}); err != nil {
			return err
		}
		// The controller's snapshot lists holds with their approvals: a
		// spent one must leave it.
		return q.BumpRevision(ctx)
	})
}

// ApproveHold lets the held plan id go ahead once. by names who approved
// it, for the record. Approving anything but a held plan is a conflict.
func (s *Status) ApproveHold(ctx context.Context, id int64, by string) (slum.Hold, error) {
	if id <= 0 {
		return slum.Hold{}, invalid("hold id", itoa(id), "must be a positive number (see 'slum status')")
	}
	var out slum.Hold
	err := s.write(ctx, func(q db.Querier, now int64) error {
		r, err := q.GetHold(ctx, id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("approve: hold %d %w", id, slum.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("approve hold %d: %w", id, err)
		}
		n, err := q.ApproveHold(ctx, db.ApproveHoldParams{ApprovedAt: now, ApprovedBy: by, UpdatedAt: now, ID: id})
		if err != nil {
			return fmt.Errorf("approve hold %d: %w", id, err)
		}
		if n == 0 {
			return fmt.Errorf("approve hold %d: %w: it is %s, not held", id, slum.ErrConflict, r.State)
		}
		if r, err = q.GetHold(ctx, id); err != nil {
			return err
		}
		out = toHold(r)
		return event(ctx, q, now, slum.HoldRef(id), slum.ReasonApproved, fmt.Sprintf("approved once by %s: %s", by, r.Summary))
	})
	return out, err
}

// OpenHolds returns the plans held back now.
func (s *Status) OpenHolds(ctx context.Context) ([]slum.Hold, error) {
	rows, err := s.eng.Read().ListOpenHolds(ctx)
	return convert(rows, err, "list holds", toHold)
}

// RecentHolds returns the last n holds, newest first.
func (s *Status) RecentHolds(ctx context.Context, n int64) ([]slum.Hold, error) {
	rows, err := s.eng.Read().ListRecentHolds(ctx, n)
	return convert(rows, err, "list holds", toHold)
}
