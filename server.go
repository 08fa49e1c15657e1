package slum

import "time"

// ServerUpdate names the fields to change; nil leaves one as it is.
type ServerUpdate struct {
	URL        *string
	Region     *string
	CapacityMB *int64
	Domain     *string
	Token      *string
}

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

// FailoverState is where a server is in failover, as the controller sees
// it.
type FailoverState string

const (
	FailoverDone    FailoverState = "failed-over" // its instances were placed elsewhere
	FailoverHeld    FailoverState = "held"        // a safety rule holds it back (see the reason)
	FailoverFencing FailoverState = "fencing"     // back after death: stale copies being stopped
)

// ServerStatus is what the controller last observed of a server.
type ServerStatus struct {
	ServerID            string    `json:"server"`
	Health              Health    `json:"health"`
	HealthSince         time.Time `json:"health_since"`
	LastError           string    `json:"last_error"`
	ConsecutiveFailures int64     `json:"consecutive_failures"`
	LastSeenAt          time.Time `json:"last_seen_at"`
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
