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
	// Controller is the controller lease as the database has it; nil when
	// no controller ever led.
	Controller *LeaseState `json:"controller"`
}

// LeaseState is a lease and whether it is live by the database's clock:
// a lease that is not live means no controller acts on the fleet.
type LeaseState struct {
	Lease
	Live bool `json:"live"`
	// For is how long the lease has to run when live, or how long ago it
	// lapsed (not in JSON, which says expires_at: output stays the same
	// from one moment to the next).
	For time.Duration `json:"-"`
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
