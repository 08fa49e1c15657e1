package wire

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/slum-fleet/slum"
)

// The watch: GET /v1/watch is a stream of server-sent events. The first
// message is a reset (the whole fleet, as objects) unless the client
// resumes (Last-Event-ID, or ?since=) from a message the server still
// remembers: then it gets every batch of changes since, and nothing else.
// Each message's SSE id resumes after it. ?kinds=route,server limits the
// objects (and "event" the event log) a client is sent; router tokens are
// sent routes only.

// SSE event names.
const (
	EventReset   = "reset"
	EventChanges = "changes"
)

// ObjectKind is a kind of object the watch streams.
type ObjectKind string

const (
	ObjServer   ObjectKind = "server"   // ServerView, by server id
	ObjTenant   ObjectKind = "tenant"   // TenantView, by tenant id
	ObjInstance ObjectKind = "instance" // InstanceView, by tenant:instance
	ObjHold     ObjectKind = "hold"     // desired.Hold held or approved now, by hold id
	ObjRoute    ObjectKind = "route"    // routes.Route, by domain
	ObjSettings ObjectKind = "settings" // desired.Settings, id "fleet"
	// ObjEvent is no object but the event log: "event" in ?kinds=
	// asks for it.
	ObjEvent ObjectKind = "event"
)

// ObjectKinds lists every kind a watch may ask for, in the order a reset
// lists them.
var ObjectKinds = []ObjectKind{ObjSettings, ObjServer, ObjTenant, ObjInstance, ObjHold, ObjRoute, ObjEvent}

// ParseKinds reads ?kinds=: comma-separated kinds; empty means all.
func ParseKinds(s string) (map[ObjectKind]bool, error) {
	if s == "" {
		return nil, nil
	}
	out := map[ObjectKind]bool{}
	for _, k := range strings.Split(s, ",") {
		known := false
		for _, o := range ObjectKinds {
			known = known || ObjectKind(k) == o
		}
		if !known {
			return nil, &slum.FieldError{Field: "kinds", Value: k, Reason: "is not a kind the watch streams (settings, server, tenant, instance, hold, route, event)"}
		}
		out[ObjectKind(k)] = true
	}
	return out, nil
}

// ServerView is a server with its capacity use and what the controller
// last saw of it (Status is nil until a controller reported it).
type ServerView struct {
	Server
	Stats  slum.ServerStats   `json:"stats"`
	Status *slum.ServerStatus `json:"status"`
}

// TenantView is a tenant with who serves it now.
type TenantView struct {
	slum.Tenant
	Status *slum.TenantStatus `json:"status"`
}

// InstanceView is an instance with what the controller last saw of it.
type InstanceView struct {
	slum.Instance
	Key    string               `json:"key"`
	Status *slum.InstanceStatus `json:"status"`
}

// ChangeOp is what a change does to an object.
type ChangeOp string

const (
	OpPut    ChangeOp = "put"    // the object is new or changed: Object is all of it
	OpDelete ChangeOp = "delete" // the object is gone
)

// Change is one object put or deleted.
type Change struct {
	Kind   ObjectKind `json:"kind"`
	ID     string     `json:"id"`
	Op     ChangeOp   `json:"op"`
	Object Raw        `json:"object,omitempty"`
}

// Reset is the whole fleet: every object (as puts) and the latest events.
// A client drops what it had and takes this.
type Reset struct {
	Stream         string       `json:"stream"`
	Seq            int64        `json:"seq"`
	Revision       int64        `json:"revision"`
	StatusRevision int64        `json:"status_revision"`
	Objects        []Change     `json:"objects"`
	Events         []slum.Event `json:"events"`
}

// Batch is what changed since the previous message: objects, and events
// written to the event log, oldest first.
type Batch struct {
	Seq            int64        `json:"seq"`
	Revision       int64        `json:"revision"`
	StatusRevision int64        `json:"status_revision"`
	Changes        []Change     `json:"changes"`
	Events         []slum.Event `json:"events,omitempty"`
}

// EventID is the SSE id of message seq of a stream: what a client sends
// back (Last-Event-ID) to resume after it.
func EventID(stream string, seq int64) string { return stream + "." + strconv.FormatInt(seq, 10) }

// ParseEventID reverses EventID.
func ParseEventID(id string) (stream string, seq int64, err error) {
	stream, n, ok := strings.Cut(id, ".")
	if ok {
		seq, err = strconv.ParseInt(n, 10, 64)
	}
	if !ok || err != nil || stream == "" || seq < 0 {
		return "", 0, fmt.Errorf("%w: event id %q is not one the watch sent", slum.ErrInvalid, id)
	}
	return stream, seq, nil
}
