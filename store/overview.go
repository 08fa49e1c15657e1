package store

import (
	"context"
	"fmt"

	"github.com/slum-fleet/slum"
)

// Overview collects the fleet overview.
func (s *Store) Overview(ctx context.Context) (*slum.Overview, error) {
	servers, err := s.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	stats, err := s.AllServerStats(ctx)
	if err != nil {
		return nil, err
	}
	sstat, err := s.ListServerStatus(ctx)
	if err != nil {
		return nil, err
	}
	// Tenants and instances are counted by SQLite: a large fleet's
	// overview must not read every row.
	tenants, err := s.eng.Read().CountTenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("count tenants: %w", err)
	}
	byPhase, err := s.eng.Read().CountInstancesByPhase(ctx)
	if err != nil {
		return nil, fmt.Errorf("count instances: %w", err)
	}
	holds, err := s.OpenHolds(ctx)
	if err != nil {
		return nil, err
	}
	lead, err := s.Leadership(ctx, slum.ControllerLease)
	if err != nil {
		return nil, err
	}
	byServer := make(map[string]slum.ServerStatus, len(sstat))
	for _, st := range sstat {
		byServer[st.ServerID] = st
	}
	o := &slum.Overview{Servers: []slum.ServerOverview{}, Tenants: int(tenants), Phases: map[slum.Phase]int{},
		Holds: append([]slum.Hold{}, holds...)}
	if lead.Leader != "" || len(lead.Standbys) > 0 {
		o.Controller = &lead
	}
	if last, err := s.ListRollouts(ctx, 1); err != nil {
		return nil, err
	} else if len(last) == 1 && (!last[0].State.Finished() || s.Rollouts.now().Sub(last[0].UpdatedAt) < slum.RolloutShown) {
		o.Rollout = &last[0]
	}
	for _, r := range byPhase {
		o.Phases[slum.Phase(r.Phase)] += int(r.Instances)
		o.Instances += int(r.Instances)
		o.FailedOver += int(r.FailedOver)
	}
	for i, srv := range servers {
		so := slum.ServerOverview{ServerStats: stats[i], State: srv.State, Health: slum.HealthUnknown}
		if st, ok := byServer[srv.ID]; ok {
			so.Health, so.HealthSince, so.LastError = st.Health, st.HealthSince, st.LastError
			so.Unmanaged, so.PendingStops = st.Unmanaged, st.PendingStops
			so.Failover, so.FailoverReason = st.Failover, st.FailoverReason
			if st.Listed {
				n := st.Instances
				so.Running = &n
			}
			if st.UpdatedAt.After(o.ReportedAt) {
				o.ReportedAt = st.UpdatedAt
			}
		}
		o.Servers = append(o.Servers, so)
	}
	return o, nil
}
