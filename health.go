package slum

import "time"

// Health is a server's reachability as slum sees it.
type Health string

const (
	HealthUnknown Health = "unknown" // not probed yet
	HealthOnline  Health = "online"
	// HealthSuspect servers missed at least one probe in a row, fewer
	// than it takes to be dead. Nothing moves yet.
	HealthSuspect Health = "suspect"
	// HealthDead servers missed DeadAfter probes in a row: their instances
	// fail over.
	HealthDead Health = "dead"
	// HealthUnauthorized servers answer but reject slum's token. They are
	// alive: nothing moves off them.
	HealthUnauthorized Health = "unauthorized"
)

// Healths lists every health, in the order overviews show them.
var Healths = []Health{HealthOnline, HealthSuspect, HealthDead, HealthUnauthorized, HealthUnknown}

// HealthState is a server's health with its history, as a value.
type HealthState struct {
	Health   Health    `json:"health"`
	Since    time.Time `json:"since"`     // when Health last changed
	Failures int       `json:"failures"`  // failed probes in a row
	LastSeen time.Time `json:"last_seen"` // the last time it answered at all
	// LastDead is when it last became dead: a server that died recently
	// is not trusted with new work (see the fleet's stable_after).
	LastDead time.Time `json:"last_dead"`
	LastErr  string    `json:"last_error"`
}

// InstanceHealth is tenement's word for the health of one of its
// instances, as its instance list gives it.
type InstanceHealth string

const (
	InstanceHealthUnknown InstanceHealth = "unknown" // not checked yet
	InstanceHealthy       InstanceHealth = "healthy"
	// InstanceDegraded: one or two health checks in a row failed.
	InstanceDegraded InstanceHealth = "degraded"
	// InstanceUnhealthy: three or more failed; tenement restarts it with
	// backoff.
	InstanceUnhealthy InstanceHealth = "unhealthy"
	// InstanceFailed: tenement spent its restart budget and gave up.
	InstanceFailed InstanceHealth = "failed"
)

// InstanceHealths lists every word tenement uses.
var InstanceHealths = []InstanceHealth{InstanceHealthy, InstanceHealthUnknown, InstanceDegraded, InstanceUnhealthy, InstanceFailed}

// Serves reports whether a copy in this health can take traffic: running,
// and neither being restarted nor given up on.
func (h InstanceHealth) Serves() bool { return h != InstanceUnhealthy && h != InstanceFailed }
