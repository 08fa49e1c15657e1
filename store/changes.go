package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/db"
)

// ChangeLog says which objects commits wrote, so readers that follow the
// fleet read only what changed.
type ChangeLog struct{ base }

// ChangeSeq is the change log's latest position. A reader reads it before
// it reads the whole fleet, then follows with ChangedSince from it.
func (s *ChangeLog) ChangeSeq(ctx context.Context) (int64, error) {
	seq, err := s.eng.Read().LatestChangeSeq(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the change log: %w", err)
	}
	return seq, nil
}

// KeepChangeLog keeps the controller's status changes logged for another
// d (the triggers log them only while a reader keeps them so; the desired
// state's changes are always logged). until is when this reader last kept
// them logged to, as this returned it (0 the first time). lapsed says
// they may have gone unlogged since: the caller then reads the whole fleet,
// after this call, instead of following the log. Both times are the
// database's clock, the one the triggers read.
func (s *ChangeLog) KeepChangeLog(ctx context.Context, d time.Duration, until int64) (newUntil int64, lapsed bool, err error) {
	err = s.eng.InTx(ctx, func(q db.Querier) error {
		now, err := q.ClockMS(ctx)
		if err != nil {
			return err
		}
		lapsed = until == 0 || now >= until
		newUntil, err = q.KeepChangeLog(ctx, d.Milliseconds())
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("keep the change log: %w", err)
	}
	return newUntil, lapsed, nil
}

// ChangedSince reads what changed since position seq of the change log,
// or fails with ErrChangesGone when the log no longer reaches back to seq
// or holds more than max writes since. Objects are read after the log, so
// one may already show a later commit; the next call lists that commit
// again and reads the same value.
func (s *ChangeLog) ChangedSince(ctx context.Context, seq int64, max int) (*slum.Changed, error) {
	q := s.eng.Read()
	rows, err := q.ListChangesSince(ctx, db.ListChangesSinceParams{Seq: seq, Limit: int64(max) + 1})
	if err != nil {
		return nil, fmt.Errorf("read the change log: %w", err)
	}
	c := &slum.Changed{Seq: seq}
	if len(rows) == 0 {
		return c, nil
	}
	// Writers are serialised, so positions follow each other without gaps
	// but where old entries were trimmed.
	if rows[0].Seq != seq+1 || len(rows) > max {
		return nil, fmt.Errorf("changes since %d: %w", seq, slum.ErrChangesGone)
	}
	c.Seq = rows[len(rows)-1].Seq
	c.Servers, c.Stats, c.Tenants, c.Instances = map[string]*slum.Server{}, map[string]*slum.ServerStats{}, map[string]*slum.Tenant{}, map[slum.InstanceKey]*slum.Instance{}
	c.ServerStatus, c.TenantStatus, c.InstanceStatus = map[string]*slum.ServerStatus{}, map[string]*slum.TenantStatus{}, map[slum.InstanceKey]*slum.InstanceStatus{}
	for _, r := range rows {
		if err := readChange(ctx, c, q, r); err != nil {
			return nil, err
		}
	}
	for id := range c.Stats {
		if err := readStats(ctx, c, q, id); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// read reads the object one log entry names, unless it was read already.
func readChange(ctx context.Context, c *slum.Changed, q db.Querier, r db.ChangeLog) error {
	switch slum.ChangeKind(r.Kind) {
	case slum.ChangeSettings:
		if c.Settings != nil {
			return nil
		}
		set, err := getSettings(ctx, q)
		if err != nil {
			return err
		}
		c.Settings = &set
	case slum.ChangeServer:
		if _, ok := c.Servers[r.Key]; ok {
			return nil
		}
		srv, err := getServer(ctx, q, r.Key)
		if err != nil && !errors.Is(err, slum.ErrNotFound) {
			return err
		}
		c.Servers[r.Key] = nil
		if err == nil {
			c.Servers[r.Key] = &srv
		}
		c.Stats[r.Key] = nil
	case slum.ChangeTenant:
		if _, ok := c.Tenants[r.Key]; ok {
			return nil
		}
		t, err := getTenant(ctx, q, r.Key)
		if err != nil && !errors.Is(err, slum.ErrNotFound) {
			return err
		}
		c.Tenants[r.Key] = nil
		if err == nil {
			c.Tenants[r.Key] = &t
		}
	case slum.ChangeInstance:
		if r.Was != "" {
			c.Stats[r.Was] = nil
		}
		key := slum.InstanceKey(r.Key)
		if _, ok := c.Instances[key]; ok {
			return nil
		}
		tenant, id, err := splitKey(key)
		if err != nil {
			return fmt.Errorf("change log entry %d: %w", r.Seq, err)
		}
		in, err := getInstance(ctx, q, tenant, id)
		if err != nil && !errors.Is(err, slum.ErrNotFound) {
			return err
		}
		c.Instances[key] = nil
		if err == nil {
			c.Instances[key] = &in
			c.Stats[in.ServerID] = nil
		}
	case slum.ChangeServerStatus:
		if _, ok := c.ServerStatus[r.Key]; ok {
			return nil
		}
		row, err := q.GetServerStatus(ctx, r.Key)
		if err := found(err, c.ServerStatus, r.Key, row, toServerStatus); err != nil {
			return fmt.Errorf("status of server %s: %w", r.Key, err)
		}
	case slum.ChangeTenantStatus:
		if _, ok := c.TenantStatus[r.Key]; ok {
			return nil
		}
		row, err := q.GetTenantStatus(ctx, r.Key)
		if err := found(err, c.TenantStatus, r.Key, row, toTenantStatus); err != nil {
			return fmt.Errorf("status of tenant %s: %w", r.Key, err)
		}
	case slum.ChangeInstanceStatus:
		key := slum.InstanceKey(r.Key)
		if _, ok := c.InstanceStatus[key]; ok {
			return nil
		}
		tenant, id, err := splitKey(key)
		if err != nil {
			return fmt.Errorf("change log entry %d: %w", r.Seq, err)
		}
		row, err := q.GetInstanceStatus(ctx, db.GetInstanceStatusParams{TenantID: tenant, InstanceID: id})
		if err := found(err, c.InstanceStatus, key, row, toInstanceStatus); err != nil {
			return fmt.Errorf("status of instance %s: %w", r.Key, err)
		}
	default:
		// A trigger this slum does not follow: what it logged cannot be
		// read one by one, so the reader reads everything.
		return fmt.Errorf("change log entry %d of kind %q: %w: %w", r.Seq, r.Kind, slum.ErrUnknownChange, slum.ErrChangesGone)
	}
	return nil
}

// found records the row read for key (nil when there is none).
func found[K comparable, R, T any](err error, into map[K]*T, key K, row R, conv func(R) T) error {
	if errors.Is(err, sql.ErrNoRows) {
		into[key] = nil
		return nil
	}
	if err != nil {
		return err
	}
	v := conv(row)
	into[key] = &v
	return nil
}

func readStats(ctx context.Context, c *slum.Changed, q db.Querier, id string) error {
	srv, ok := c.Servers[id]
	if !ok {
		s, err := getServer(ctx, q, id)
		if errors.Is(err, slum.ErrNotFound) {
			return nil // gone: so are its stats
		}
		if err != nil {
			return err
		}
		srv = &s
	}
	if srv == nil {
		return nil
	}
	use, err := q.ServerUsageOne(ctx, id)
	if err != nil {
		return fmt.Errorf("server stats %s: %w", id, err)
	}
	c.Stats[id] = &slum.ServerStats{ServerID: id, CapacityMB: srv.CapacityMB, UsedMB: use.UsedMb,
		FreeMB: srv.CapacityMB - use.UsedMb, Tenants: use.Tenants, Instances: use.Instances}
	return nil
}
