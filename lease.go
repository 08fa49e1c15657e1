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
// the database saw it at At: by its clock, which every controller shares,
// so a reader's own clock does not matter.
type Leadership struct {
	At time.Time `json:"at"`
	// Leader holds the controller lease; "" when the last one gave it up.
	Leader    string    `json:"leader"`
	Epoch     int64     `json:"epoch"`
	ExpiresAt time.Time `json:"expires_at"`
	// Live: the lease has not lapsed. A lease that is not live means no
	// controller acts on the fleet (until a standby takes it).
	Live bool `json:"live"`
	// RenewedAt is when the leader last renewed its lease; zero when it
	// left no heartbeat.
	RenewedAt time.Time `json:"renewed_at"`
	// Standbys are the other controllers heard from lately.
	Standbys []Controller `json:"standbys"`
}

// For is how long the lease has to run when live, or how long ago it
// lapsed.
func (l *Leadership) For() time.Duration { return l.ExpiresAt.Sub(l.At).Abs() }

// Ago is how long before the read t was (a renewal, a heartbeat).
func (l *Leadership) Ago(t time.Time) time.Duration { return max(0, l.At.Sub(t)) }

// Controller is one running controller (slum run) on the fleet.
type Controller struct {
	Holder    string    `json:"holder"`
	StartedAt time.Time `json:"started_at"`
	SeenAt    time.Time `json:"seen_at"`
}

// ControllerLease is the lease a leading controller holds on its fleet
// database (package leader takes and renews it).
const ControllerLease = "controller"
