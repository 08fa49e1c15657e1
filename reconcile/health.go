package reconcile

import (
	"errors"
	"time"

	"github.com/slum-fleet/slum/observed"
)

// Health is a server's reachability as the controller sees it.
type Health string

const (
	HealthUnknown Health = "unknown" // not polled yet
	HealthOnline  Health = "online"
	// HealthSuspect servers missed at least SuspectAfter polls in a row.
	HealthSuspect Health = "suspect"
	// HealthOffline servers have not answered for OfflineAfter.
	HealthOffline Health = "offline"
	// HealthUnauthorized servers answer but reject slum's token. They are
	// alive: nothing is moved off them.
	HealthUnauthorized Health = "unauthorized"
)

// HealthPolicy sets when a server is suspect and when offline.
type HealthPolicy struct {
	SuspectAfter int           // missed polls in a row
	OfflineAfter time.Duration // since the last answer (or since start)
}

// serverHealth tracks one server's polls. It is a pure state machine:
// observe takes the time and the poll's result.
type serverHealth struct {
	state    Health
	failures int
	lastSeen time.Time // last time the server answered at all
	since    time.Time // when tracking began
	lastErr  string
}

func newServerHealth(now time.Time) *serverHealth {
	return &serverHealth{state: HealthUnknown, since: now}
}

// observe records a poll and returns the previous state when it changed.
func (h *serverHealth) observe(now time.Time, err error, p HealthPolicy) (prev Health, changed bool) {
	prev = h.state
	switch {
	case err == nil:
		h.state, h.failures, h.lastSeen, h.lastErr = HealthOnline, 0, now, ""
	case errors.Is(err, observed.ErrUnauthorized):
		h.state, h.failures, h.lastSeen, h.lastErr = HealthUnauthorized, 0, now, err.Error()
	case errors.Is(err, observed.ErrRateLimited):
		// It answered; it just will not talk to anyone for a while.
		h.failures, h.lastSeen, h.lastErr = 0, now, err.Error()
		if h.state == HealthUnknown || h.state == HealthSuspect || h.state == HealthOffline {
			h.state = HealthOnline
		}
	default:
		h.failures++
		h.lastErr = err.Error()
		ref := h.lastSeen
		if ref.IsZero() {
			ref = h.since
		}
		switch {
		case now.Sub(ref) >= p.OfflineAfter:
			h.state = HealthOffline
		case h.failures >= p.SuspectAfter:
			h.state = HealthSuspect
		}
	}
	return prev, prev != h.state
}
