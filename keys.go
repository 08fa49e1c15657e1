package slum

import (
	"strconv"
	"strings"

	"github.com/slum-fleet/slum/names"
)

// InstanceKey names an instance within the fleet: "tenant:instance". It is
// made with KeyOf (or ParseInstanceKey from what a user typed) and taken
// apart with Split, never built or cut by hand.
type InstanceKey string

// KeyOf is the key of a tenant's instance.
func KeyOf(tenant, instance string) InstanceKey { return InstanceKey(tenant + ":" + instance) }

// ParseInstanceKey checks a key a user gave: two valid ids joined by ':'.
func ParseInstanceKey(s string) (InstanceKey, error) {
	tenant, instance, ok := strings.Cut(s, ":")
	if !ok {
		return "", invalid("instance", s, "must be tenant:instance")
	}
	if p := names.IDProblem(tenant); p != "" {
		return "", invalid("tenant id", tenant, p)
	}
	if p := names.IDProblem(instance); p != "" {
		return "", invalid("instance id", instance, p)
	}
	return InstanceKey(s), nil
}

// Split returns the tenant and the instance id.
func (k InstanceKey) Split() (tenant, instance string) {
	tenant, instance, _ = strings.Cut(string(k), ":")
	return tenant, instance
}

// Tenant is the tenant the instance belongs to.
func (k InstanceKey) Tenant() string { t, _ := k.Split(); return t }

func (k InstanceKey) String() string { return string(k) }

// ObjectKind is what kind of object an event is about.
type ObjectKind string

const (
	ObjectServer   ObjectKind = "server"
	ObjectTenant   ObjectKind = "tenant"
	ObjectInstance ObjectKind = "instance"
	ObjectHold     ObjectKind = "hold"
	ObjectSettings ObjectKind = "settings"
	ObjectAPIToken ObjectKind = "api-token"
	// ObjectController is one running controller (slum run), by its
	// lease holder's name.
	ObjectController ObjectKind = "controller"
	// ObjectFleet is the fleet as a whole (applies, settings).
	ObjectFleet ObjectKind = "fleet"
)

// ObjectRef names what an event is about: "server/eu-1", "tenant/alice",
// "instance/alice:prod", "fleet", or a copy slum does not manage,
// "server/eu-1/api:x". It is made by the constructors below and read with
// Kind and ID.
type ObjectRef string

// ServerRef names a server.
func ServerRef(id string) ObjectRef { return ObjectRef(string(ObjectServer) + "/" + id) }

// TenantRef names a tenant.
func TenantRef(id string) ObjectRef { return ObjectRef(string(ObjectTenant) + "/" + id) }

// InstanceRef names an instance.
func InstanceRef(k InstanceKey) ObjectRef { return ObjectRef(string(ObjectInstance) + "/" + string(k)) }

// HoldRef names a held plan.
func HoldRef(id int64) ObjectRef {
	return ObjectRef(string(ObjectHold) + "/" + strconv.FormatInt(id, 10))
}

// APITokenRef names an API token.
func APITokenRef(id int64) ObjectRef {
	return ObjectRef(string(ObjectAPIToken) + "/" + strconv.FormatInt(id, 10))
}

// ControllerRef names a controller by its lease holder's name.
func ControllerRef(holder string) ObjectRef {
	return ObjectRef(string(ObjectController) + "/" + holder)
}

// CopyOnServerRef names a tenement instance on a server that is no
// instance of the fleet's (an unmanaged or stale copy).
func CopyOnServerRef(server, name string) ObjectRef { return ServerRef(server) + ObjectRef("/"+name) }

// FleetRef names the fleet as a whole.
const FleetRef = ObjectRef(ObjectFleet)

// Kind is the kind of object named.
func (r ObjectRef) Kind() ObjectKind {
	k, _, _ := strings.Cut(string(r), "/")
	return ObjectKind(k)
}

// ID is the object's id within its kind ("" for the fleet); an instance's
// is its key.
func (r ObjectRef) ID() string {
	_, id, _ := strings.Cut(string(r), "/")
	return id
}

func (r ObjectRef) String() string { return string(r) }
