package desired

import (
	"fmt"
	"strconv"
	"time"

	"github.com/slum-fleet/slum/names"
	"github.com/slum-fleet/slum/observed"
)

// ServerState is a server's scheduling state.
type ServerState string

const (
	// ServerActive servers take new placements.
	ServerActive ServerState = "active"
	// ServerCordoned servers keep what they run but take nothing new.
	ServerCordoned ServerState = "cordoned"
	// ServerDraining servers are cordoned and have had their instances
	// placed elsewhere; the controller moves them.
	ServerDraining ServerState = "draining"
)

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

// FailoverPolicy says what happens to a tenant's instances when their
// server dies.
type FailoverPolicy string

const (
	// FailoverMove places them on a healthy server and starts them there.
	// Their data does not come along: it lives on the dead server's disk.
	FailoverMove FailoverPolicy = "move"
	// FailoverNone leaves them where they are, down with their server: for
	// tenants whose data lives only on that disk.
	FailoverNone FailoverPolicy = "none"
)

// ServingPolicy says which of a tenant's running copies take traffic.
type ServingPolicy string

const (
	// ServingOne: one copy serves at a time; the others are warm spares,
	// and one of them serves at once when the serving copy is lost.
	ServingOne ServingPolicy = "one"
	// ServingAll: every running copy serves (active-active).
	ServingAll ServingPolicy = "all"
)

// Server is a tenement server of the fleet.
type Server struct {
	ID         string      `json:"id"`
	URL        string      `json:"url"`
	Region     string      `json:"region"`
	CapacityMB int64       `json:"capacity_mb"`
	Domain     string      `json:"domain"`
	Token      string      `json:"-"` // never shown
	State      ServerState `json:"state"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
}

// HasToken reports whether a token is stored, without revealing it.
func (s Server) HasToken() bool { return s.Token != "" }

// ServerStats is a server's use of its capacity.
type ServerStats struct {
	ServerID   string `json:"server_id"`
	CapacityMB int64  `json:"capacity_mb"`
	UsedMB     int64  `json:"used_mb"`
	FreeMB     int64  `json:"free_mb"`
	Tenants    int64  `json:"tenants"`
	Instances  int64  `json:"instances"`
}

// Tenant is one customer's app: a domain and its instances.
type Tenant struct {
	ID        string         `json:"id"`
	Domain    string         `json:"domain"`
	Region    string         `json:"region"`
	Failover  FailoverPolicy `json:"failover"`
	Serving   ServingPolicy  `json:"serving"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

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
func (i Instance) Key() string { return i.TenantID + ":" + i.ID }

// TenementName is the instance's name on its tenement server.
func (i Instance) TenementName() string { return TenementName(i.Process, i.TenantID, i.ID) }

// TenementID maps a tenant and one of its instance ids to the tenement
// instance id "tenant--instance" (see names.TenementID).
func TenementID(tenant, instance string) string { return names.TenementID(tenant, instance) }

// TenementName is the full tenement instance name "process:tenant--instance".
func TenementName(process, tenant, instance string) string {
	return names.TenementName(process, tenant, instance)
}

// ParseTenementName reverses TenementName. ok is false for any name slum's
// naming could not have produced; such instances are never slum's.
func ParseTenementName(name string) (process, tenant, instance string, ok bool) {
	return names.ParseTenementName(name)
}

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
	TenantID   string `json:"tenant"`
	InstanceID string `json:"instance"`
	ServerID   string `json:"server"`
	Phase      Phase  `json:"phase"`
	Health     string `json:"health"` // tenement's health word for the copy
	LastError  string `json:"last_error"`
	// Message says why the instance is where it is, when that is worth
	// saying: "failed over from s1 (dead)", "no server can take 256 MB".
	Message            string    `json:"message"`
	Attempts           int64     `json:"attempts"`
	ObservedGeneration int64     `json:"observed_generation"`
	UpdatedAt          time.Time `json:"updated_at"`
}

// Key is the instance's "tenant:instance".
func (s InstanceStatus) Key() string { return s.TenantID + ":" + s.InstanceID }

// FailoverState is where a server is in failover, as the controller sees
// it.
type FailoverState string

const (
	FailoverNoneState FailoverState = ""            // nothing to do
	FailoverDone      FailoverState = "failed-over" // its instances were placed elsewhere
	FailoverHeld      FailoverState = "held"        // a safety rule holds it back (see the reason)
	FailoverFencing   FailoverState = "fencing"     // back after death: stale copies being stopped
)

// ServerStatus is what the controller last observed of a server.
type ServerStatus struct {
	ServerID            string          `json:"server"`
	Health              observed.Health `json:"health"`
	HealthSince         time.Time       `json:"health_since"`
	LastError           string          `json:"last_error"`
	ConsecutiveFailures int64           `json:"consecutive_failures"`
	LastSeenAt          time.Time       `json:"last_seen_at"`
	// Listed: the last instance list succeeded, so Instances, Unmanaged
	// and PendingStops are current. Otherwise they are unknown.
	Listed         bool          `json:"listed"`
	Instances      int64         `json:"instances"`
	Unmanaged      int64         `json:"unmanaged"`
	PendingStops   int64         `json:"pending_stops"`
	Failover       FailoverState `json:"failover"`
	FailoverReason string        `json:"failover_reason"`
	UpdatedAt      time.Time     `json:"updated_at"`
}

// CopyRef names one copy of an instance: the instance and the server it
// runs on. It is usually the server the instance is placed on; while a
// move waits for its new copy, it is the old one.
type CopyRef struct {
	Instance string `json:"instance"` // instance id within its tenant
	Server   string `json:"server"`
}

func (c CopyRef) String() string { return c.Instance + "@" + c.Server }

// TenantStatus says which of a tenant's copies serve it now, as the
// controller decided. Status, the API and every router read it.
type TenantStatus struct {
	TenantID  string    `json:"tenant"`
	Serving   []CopyRef `json:"serving"` // preferred first
	Spares    []CopyRef `json:"spares"`  // running copies that do not serve
	Reason    string    `json:"reason"`  // why nothing serves, when nothing does
	ChangedAt time.Time `json:"changed_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// EventReason is what an event says happened, in one word.
type EventReason string

// Reasons of desired-state changes, written by the Store.
const (
	ReasonAdded      EventReason = "Added"
	ReasonUpdated    EventReason = "Updated"
	ReasonRemoved    EventReason = "Removed"
	ReasonCordoned   EventReason = "Cordoned"
	ReasonUncordoned EventReason = "Uncordoned"
	ReasonDraining   EventReason = "Draining"
	ReasonPlaced     EventReason = "Placed"
	ReasonStarted    EventReason = "Started"
	ReasonStopped    EventReason = "Stopped"
	ReasonMoved      EventReason = "Moved"
	ReasonApplied    EventReason = "Applied"
	ReasonApproved   EventReason = "Approved"
	ReasonSettings   EventReason = "SettingsChanged"
	// ReasonRescheduled: failover (or fail-back) placed an instance on
	// another server.
	ReasonRescheduled EventReason = "Rescheduled"
)

// Reasons of what the controller saw and did.
const (
	ReasonSpawned         EventReason = "Spawned"
	ReasonParked          EventReason = "Parked"
	ReasonRetrying        EventReason = "Retrying"
	ReasonUnmanaged       EventReason = "Unmanaged"
	ReasonHeld            EventReason = "Held" // a safety rule held a plan back
	ReasonReleased        EventReason = "Released"
	ReasonServerOnline    EventReason = "ServerOnline"
	ReasonServerSuspect   EventReason = "ServerSuspect"
	ReasonServerDead      EventReason = "ServerDead"
	ReasonUnauthorized    EventReason = "ServerUnauthorized"
	ReasonFailoverStarted EventReason = "FailoverStarted"
	ReasonFailoverBlocked EventReason = "FailoverBlocked"
	ReasonFenced          EventReason = "Fenced"
	ReasonUnplaceable     EventReason = "Unplaceable"
	ReasonServingChanged  EventReason = "ServingChanged"
	ReasonReplaced        EventReason = "Replaced" // a failed-over instance runs again
)

// Event is one line of the event log.
type Event struct {
	ID      int64       `json:"id"`
	At      time.Time   `json:"at"`
	Object  string      `json:"object"`
	Reason  EventReason `json:"reason"`
	Message string      `json:"message"`
}

// Placement is one entry of the ownership ledger: a tenement instance slum
// asked a server to run.
type Placement struct {
	ServerID   string
	Name       string
	TenantID   string
	InstanceID string
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// convert maps rows read from the database to the API's types.
func convert[R, T any](rows []R, err error, what string, fn func(R) T) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = fn(r)
	}
	return out, nil
}
