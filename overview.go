package slum

import "time"

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
	// Rollout is the rolling restart under way (or interrupted), or the
	// last one if it ended within RolloutShown; nil otherwise.
	Rollout *Rollout `json:"rollout,omitempty"`
	// Controller is who leads the fleet's controllers and who stands by;
	// nil when no controller ever ran on the fleet (or every one stopped).
	Controller *Leadership `json:"controller"`
}

// RolloutShown is how long an overview shows a finished rollout.
const RolloutShown = time.Hour

// ServerOverview is one server in the overview.
type ServerOverview struct {
	ServerStats
	State       ServerState `json:"state"`
	Health      Health      `json:"health"`
	HealthSince time.Time   `json:"health_since"`
	LastError   string      `json:"last_error"`
	// Running is how many copies the server ran at its last successful
	// list; nil when its instances cannot be listed now (unknown).
	Running        *int64        `json:"running"`
	Unmanaged      int64         `json:"unmanaged"`
	PendingStops   int64         `json:"pending_stops"`
	Failover       FailoverState `json:"failover"`
	FailoverReason string        `json:"failover_reason"`
}
