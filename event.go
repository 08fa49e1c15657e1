package slum

import "time"

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

// Reasons of a replicated tenant's single-writer lease, written by slum's
// data guard (package dataguard).
const (
	ReasonWaitingForWriter EventReason = "WaitingForWriter" // its new copy waits for the old writer
	ReasonLeaseRevoked     EventReason = "LeaseRevoked"     // the old copy's server is dead
	ReasonHandoverAsked    EventReason = "HandoverAsked"    // a moved copy is asked to hand over
	ReasonLeaseReleased    EventReason = "LeaseReleased"    // a revoked lease lapsed and was freed
	ReasonWriterTookOver   EventReason = "WriterTookOver"   // the copy where it is placed writes again
)

// Event is one line of the event log.
type Event struct {
	ID      int64       `json:"id"`
	At      time.Time   `json:"at"`
	Object  ObjectRef   `json:"object"`
	Reason  EventReason `json:"reason"`
	Message string      `json:"message"`
}
