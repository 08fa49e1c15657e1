package slum

import (
	"errors"
	"time"
)

// Lease is a named, expiring claim on the fleet database: the controller
// holds one so that two never act on one fleet at once. Epoch grows each
// time the lease changes hands.
type Lease struct {
	Name      string    `json:"name"`
	Holder    string    `json:"holder"`
	Epoch     int64     `json:"epoch"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Fence is the lease a write is made under. Every write of the controller
// carries one and is refused with ErrFenced unless that lease is still held
// by that holder at that epoch (a fencing token).
type Fence struct {
	Lease  string
	Holder string
	Epoch  int64
}

// Fence returns the fencing token of the lease.
func (l Lease) Fence() Fence { return Fence{Lease: l.Name, Holder: l.Holder, Epoch: l.Epoch} }

// ErrFenced: the write's lease changed hands; the writer must stop acting.
var ErrFenced = errors.New("fenced: the lease is held by another controller")

// Leadership is who leads the fleet's controllers and who stands by, as
// the database saw it at At (its clock, which every controller shares;
// the ages are by it too, so a reader's own clock does not matter).
type Leadership struct {
	At time.Time `json:"at"`
	// Leader holds the controller lease; "" when no controller ever has
	// or the last one gave it up.
	Leader    string    `json:"leader"`
	Epoch     int64     `json:"epoch"`
	ExpiresAt time.Time `json:"expires_at"`
	// Expired: the leader's lease lapsed and no standby took it yet.
	Expired bool `json:"expired"`
	// RenewedAgoMS is how long since the leader last renewed its lease
	// (milliseconds); -1 when it left no heartbeat.
	RenewedAgoMS int64 `json:"renewed_ago_ms"`
	// Standbys are the other controllers heard from lately.
	Standbys []Controller `json:"standbys"`
}

// Controller is one running controller (slum run) on the fleet.
type Controller struct {
	Holder    string    `json:"holder"`
	StartedAt time.Time `json:"started_at"`
	SeenAt    time.Time `json:"seen_at"`
	SeenAgoMS int64     `json:"seen_ago_ms"`
}

// ControllerLease is the lease the leading controller holds.
const ControllerLease = "controller"
