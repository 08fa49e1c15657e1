package slum

import "time"

// HoldKind names the safety rule that held a plan back.
type HoldKind string

const (
	// HoldMassStop: the plan would stop more of the fleet than the
	// mass-stop guard allows (an emptied or wrong database).
	HoldMassStop HoldKind = "mass-stop"
	// HoldPartition: so many servers look dead at once that the
	// controller assumes it is the one cut off, and fails nothing over.
	HoldPartition HoldKind = "partition"
)

// HoldState is where a hold is.
type HoldState string

const (
	HoldHeld     HoldState = "held"     // waiting for the operator
	HoldApproved HoldState = "approved" // approved once; the controller carries it out
	HoldDone     HoldState = "done"     // carried out after approval
	HoldCleared  HoldState = "cleared"  // the plan went away by itself
)

// Hold is a plan a safety rule held back. Approving it lets that exact plan
// (its fingerprint) go ahead once; a different plan is a new hold.
type Hold struct {
	ID          int64     `json:"id"`
	Kind        HoldKind  `json:"kind"`
	Fingerprint string    `json:"fingerprint"`
	Summary     string    `json:"summary"`
	Detail      string    `json:"detail"` // JSON: the withheld actions
	State       HoldState `json:"state"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	ApprovedAt  time.Time `json:"approved_at"`
	ApprovedBy  string    `json:"approved_by"`
}

// HoldSpec is a held plan as the controller sees it now.
type HoldSpec struct {
	Kind        HoldKind
	Fingerprint string
	Summary     string
	Detail      string
}
