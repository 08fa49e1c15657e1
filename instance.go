package slum

import (
	"time"

	"github.com/slum-fleet/slum/names"
)

// DefaultMemoryMB is an instance's memory when none is given.
const DefaultMemoryMB = 256

// InstanceSpec asks for an instance. ServerID "" lets slum place it;
// MemoryMB 0 and Mode "" mean "not given": the defaults for a new
// instance, the current values for an existing one.
type InstanceSpec struct {
	TenantID string
	ID       string
	Process  string
	ServerID string
	MemoryMB int64
	Mode     Mode
}

// Reschedule is a failover (or fail-back) move the controller decided: the
// instance's current server changes, its home stays.
type Reschedule struct {
	TenantID   string `json:"tenant"`
	InstanceID string `json:"instance"`
	From       string `json:"from"`
	To         string `json:"to"`
	// Generation the move was planned at: it is made only if nothing
	// changed the instance since.
	Generation int64  `json:"generation"`
	Reason     string `json:"reason"`
}

// Key is the instance's "tenant:instance".
func (r Reschedule) Key() InstanceKey { return KeyOf(r.TenantID, r.InstanceID) }

// Rescheduled is what a Reschedule did.
type Rescheduled struct {
	Moves     []Reschedule // the moves made
	Instances []Instance   // the moved instances, as now stored
	// Revision is the desired-state revision the moves committed as.
	Revision int64
}

// Move is one instance placed on another server.
type Move struct {
	Instance InstanceKey `json:"instance"`
	From     string      `json:"from"`
	To       string      `json:"to"`
}

// DesiredState says whether an instance should run.
type DesiredState string

const (
	StateRunning DesiredState = "running"
	StateStopped DesiredState = "stopped"
)

// Mode says how the controller treats an absent instance.
type Mode string

const (
	// ModeAlways instances are kept running: absent means spawn it.
	ModeAlways Mode = "always"
	// ModeOnDemand instances belong to a tenement service that scales to
	// zero: absent is normal, and the next request wakes it.
	ModeOnDemand Mode = "on-demand"
)

// Instance is a desired placement of one of a tenant's instances.
type Instance struct {
	TenantID string `json:"tenant"`
	ID       string `json:"id"`
	Process  string `json:"process"`
	ServerID string `json:"server"`
	// HomeServerID is where the instance was declared: the server a fleet
	// file or command named, or where slum first placed it. It differs
	// from ServerID while the instance runs elsewhere after a failover.
	HomeServerID string       `json:"home_server"`
	MemoryMB     int64        `json:"memory_mb"`
	DesiredState DesiredState `json:"desired_state"`
	Mode         Mode         `json:"mode"`
	// Rank orders a tenant's copies: with one serving copy at a time, the
	// lowest rank that runs serves.
	Rank       int64     `json:"rank"`
	Generation int64     `json:"generation"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Key is the instance's name in slum: "tenant:instance".
func (i Instance) Key() InstanceKey { return KeyOf(i.TenantID, i.ID) }

// TenementName is the instance's name on its tenement server.
func (i Instance) TenementName() string { return names.TenementName(i.Process, i.TenantID, i.ID) }

// FailedOver reports whether the instance runs away from its home server.
func (i Instance) FailedOver() bool { return i.HomeServerID != "" && i.HomeServerID != i.ServerID }

// Phase is where an instance is, as the controller last saw it.
type Phase string

const (
	PhasePending Phase = "pending" // being spawned or stopped
	PhaseRunning Phase = "running"
	PhaseFailed  Phase = "failed"  // tenement gave up on it, or slum's calls fail permanently
	PhaseUnknown Phase = "unknown" // its server cannot be observed
	PhaseStopped Phase = "stopped" // desired stopped, and absent
	PhaseIdle    Phase = "idle"    // on-demand and scaled to zero
	// PhaseDown: its server is dead and it is not moved (failover none,
	// or failover held back).
	PhaseDown Phase = "down"
	// PhaseUnplaceable: its server is dead and no healthy server can take
	// it; it is placed as soon as one can.
	PhaseUnplaceable Phase = "unplaceable"
)

// Phases lists every phase, in the order overviews show them.
var Phases = []Phase{PhaseRunning, PhaseIdle, PhaseStopped, PhasePending, PhaseFailed, PhaseUnknown, PhaseDown, PhaseUnplaceable}

// InstanceStatus is what the controller last observed of an instance.
type InstanceStatus struct {
	TenantID   string         `json:"tenant"`
	InstanceID string         `json:"instance"`
	ServerID   string         `json:"server"`
	Phase      Phase          `json:"phase"`
	Health     InstanceHealth `json:"health"` // tenement's word for the copy
	LastError  string         `json:"last_error"`
	// Message says why the instance is where it is, when that is worth
	// saying: "failed over from s1 (dead)", "no server can take 256 MB".
	Message            string    `json:"message"`
	Attempts           int64     `json:"attempts"`
	ObservedGeneration int64     `json:"observed_generation"`
	UpdatedAt          time.Time `json:"updated_at"`
}

// Key is the instance's "tenant:instance".
func (s InstanceStatus) Key() InstanceKey { return KeyOf(s.TenantID, s.InstanceID) }

// Placement is one entry of the ownership ledger: a tenement instance slum
// asked a server to run.
type Placement struct {
	ServerID   string
	Name       string
	TenantID   string
	InstanceID string
}
