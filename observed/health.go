package observed

import (
	"errors"
	"time"
)

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

// Reachable reports whether slum can act on the server.
func (h Health) Reachable() bool { return h == HealthOnline }

// DetectorPolicy says when missed probes make a server suspect and dead.
type DetectorPolicy struct {
	SuspectAfter int // failed probes in a row
	DeadAfter    int // failed probes in a row; at least SuspectAfter
}

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

// Detector turns probe and list results into a server's health. It is a
// pure state machine: each call takes the time and a result.
type Detector struct {
	st           HealthState
	unauthorized bool
}

// NewDetector starts tracking a server at now.
func NewDetector(now time.Time) *Detector {
	return &Detector{st: HealthState{Health: HealthUnknown, Since: now}}
}

// State returns the current health.
func (d *Detector) State() HealthState { return d.st }

// Probe records a liveness probe: err nil when the server answered its
// health endpoint. It reports whether the health changed.
func (d *Detector) Probe(now time.Time, err error, p DetectorPolicy) bool {
	if err == nil || answered(err) {
		d.st.Failures, d.st.LastSeen = 0, now
		if err == nil && !d.unauthorized {
			d.st.LastErr = ""
		}
	} else {
		d.st.Failures++
		d.st.LastErr = err.Error()
	}
	return d.settle(now, p)
}

// Listed records the outcome of an authenticated list call, which tells
// whether the server accepts slum's token. Transport failures of a list
// are left to the probes.
func (d *Detector) Listed(now time.Time, err error, p DetectorPolicy) bool {
	switch {
	case err == nil:
		d.unauthorized = false
		d.st.LastSeen = now
	case errors.Is(err, ErrUnauthorized):
		d.unauthorized = true
		d.st.LastSeen = now
		d.st.LastErr = err.Error()
	default:
		return false
	}
	return d.settle(now, p)
}

// answered reports whether an error still proves the server is alive: it
// sent an HTTP answer (rate limits, 4xx).
func answered(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Status != 0 && e.Status < 500
}

func (d *Detector) settle(now time.Time, p DetectorPolicy) bool {
	next := d.st.Health
	switch {
	case p.DeadAfter > 0 && d.st.Failures >= p.DeadAfter:
		next = HealthDead
	case d.st.Failures >= max(p.SuspectAfter, 1):
		// A dead server stays dead until it answers: no bouncing
		// through suspect on the way down.
		if next != HealthDead {
			next = HealthSuspect
		}
	case d.unauthorized:
		next = HealthUnauthorized
	case !d.st.LastSeen.IsZero():
		next = HealthOnline
	}
	if next == d.st.Health {
		return false
	}
	if next == HealthDead {
		d.st.LastDead = now
	}
	d.st.Health, d.st.Since = next, now
	return true
}
