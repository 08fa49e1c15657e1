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

// ControllerLease is the lease a leading controller holds on its fleet
// database (package leader takes and renews it).
const ControllerLease = "controller"
