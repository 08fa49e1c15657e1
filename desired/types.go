package desired

import (
	"fmt"
	"strconv"
	"time"

	"github.com/slum-fleet/slum/names"
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
	ID        string    `json:"id"`
	Domain    string    `json:"domain"`
	Region    string    `json:"region"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Instance is a desired placement of one of a tenant's instances.
type Instance struct {
	TenantID     string       `json:"tenant"`
	ID           string       `json:"id"`
	Process      string       `json:"process"`
	ServerID     string       `json:"server"`
	MemoryMB     int64        `json:"memory_mb"`
	DesiredState DesiredState `json:"desired_state"`
	Mode         Mode         `json:"mode"`
	Generation   int64        `json:"generation"`
	CreatedAt    time.Time    `json:"created_at"`
	UpdatedAt    time.Time    `json:"updated_at"`
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

// InstanceStatus is what the controller last observed of an instance.
type InstanceStatus struct {
	TenantID           string    `json:"tenant"`
	InstanceID         string    `json:"instance"`
	ServerID           string    `json:"server"`
	Phase              string    `json:"phase"`
	Health             string    `json:"health"`
	LastError          string    `json:"last_error"`
	Attempts           int64     `json:"attempts"`
	ObservedGeneration int64     `json:"observed_generation"`
	UpdatedAt          time.Time `json:"updated_at"`
}

// ServerStatus is what the controller last observed of a server.
type ServerStatus struct {
	ServerID            string    `json:"server"`
	Health              string    `json:"health"`
	LastError           string    `json:"last_error"`
	ConsecutiveFailures int64     `json:"consecutive_failures"`
	LastSeenAt          time.Time `json:"last_seen_at"`
	Instances           int64     `json:"instances"`
	Unmanaged           int64     `json:"unmanaged"`
	UpdatedAt           time.Time `json:"updated_at"`
}

// Event is one line of the event log.
type Event struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Object  string    `json:"object"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
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
