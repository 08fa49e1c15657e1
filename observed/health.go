package observed

import (
	"errors"
	"time"

	"github.com/slum-fleet/slum"
)

// DetectorPolicy says when missed probes make a server suspect and dead.
type DetectorPolicy struct {
	SuspectAfter int // failed probes in a row
	DeadAfter    int // failed probes in a row; at least SuspectAfter
}

// Detector turns probe and list results into a server's health. It is a
// pure state machine: each call takes the time and a result.
type Detector struct {
	st           slum.HealthState
	unauthorized bool
}

// NewDetector starts tracking a server at now.
func NewDetector(now time.Time) *Detector {
	return &Detector{st: slum.HealthState{Health: slum.HealthUnknown, Since: now}}
}

// State returns the current health.
func (d *Detector) State() slum.HealthState { return d.st }

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
		next = slum.HealthDead
	case d.st.Failures >= max(p.SuspectAfter, 1):
		// A dead server stays dead until it answers: no bouncing
		// through suspect on the way down.
		if next != slum.HealthDead {
			next = slum.HealthSuspect
		}
	case d.unauthorized:
		next = slum.HealthUnauthorized
	case !d.st.LastSeen.IsZero():
		next = slum.HealthOnline
	}
	if next == d.st.Health {
		return false
	}
	if next == slum.HealthDead {
		d.st.LastDead = now
	}
	d.st.Health, d.st.Since = next, now
	return true
}
