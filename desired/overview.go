package desired

import (
	"context"
	"fmt"
	"time"

	"github.com/slum-fleet/slum/observed"
)

// Overview is the fleet at a glance: every server with its health, use and
// failover state, instance phases, and the plans held back. The CLI's
// 'slum status' and the API's status endpoint both show it.
type Overview struct {
	// ReportedAt is when a controller last wrote server status; zero when
	// none ever has.
	ReportedAt time.Time        `json:"reported_at"`
	Servers    []ServerOverview `json:"servers"`
	Tenants    int              `json:"tenants"`
	Instances  int              `json:"instances"`
	Phases     map[Phase]int    `json:"phases"`
	FailedOver int              `json:"failed_over"` // instances away from their home server
	Holds      []Hold           `json:"holds"`       // plans held back, waiting for 'slum approve'
}

// ServerOverview is one server in the overview.
type ServerOverview struct {
	ServerStats
	State       ServerState     `json:"state"`
	Health      observed.Health `json:"health"`
	HealthSince time.Time       `json:"health_since"`
	LastError   string          `json:"last_error"`
	// Running is how many copies the server ran at its last successful
	// list; nil when its instances cannot be listed now (unknown).
	Running        *int64        `json:"running"`
	Unmanaged      int64         `json:"unmanaged"`
	PendingStops   int64         `json:"pending_stops"`
	Failover       FailoverState `json:"failover"`
	FailoverReason string        `json:"failover_reason"`
}

// Overview collects the fleet overview.
func (s *Store) Overview(ctx context.Context) (*Overview, error) {
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
	tenants, err := s.db.Queries().CountTenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("count tenants: %w", err)
	}
	byPhase, err := s.db.Queries().CountInstancesByPhase(ctx)
	if err != nil {
		return nil, fmt.Errorf("count instances: %w", err)
	}
	holds, err := s.OpenHolds(ctx)
	if err != nil {
		return nil, err
	}
	byServer := make(map[string]ServerStatus, len(sstat))
	for _, st := range sstat {
		byServer[st.ServerID] = st
	}
	o := &Overview{Servers: []ServerOverview{}, Tenants: int(tenants), Phases: map[Phase]int{},
		Holds: append([]Hold{}, holds...)}
	for _, r := range byPhase {
		o.Phases[Phase(r.Phase)] += int(r.Instances)
		o.Instances += int(r.Instances)
		o.FailedOver += int(r.FailedOver)
	}
	for i, srv := range servers {
		so := ServerOverview{ServerStats: stats[i], State: srv.State, Health: observed.HealthUnknown}
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
