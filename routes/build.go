package routes

import (
	"slices"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/names"
)

// Source is what a route table is built from: the desired state and who
// the controller decided serves each tenant. The controller builds it from
// its plans; a router on the database or behind the API builds it from the
// same values as stored, so they all route alike.
type Source struct {
	Revision  int64
	Servers   []slum.Server
	Health    map[string]slum.Health // by server; missing: unknown
	Tenants   []slum.Tenant
	Instances []slum.Instance
	Serving   map[string]slum.TenantStatus // by tenant
}

// Build makes the route table. A tenant's backends are its serving copies
// (an instance on a server: usually where it is placed, or its old copy
// while a move waits for the new one); a copy on a server known to be dead
// is never a backend, whatever the serving list says (it may be older than
// the server's death).
func Build(src Source) *Table {
	servers := make(map[string]*slum.Server, len(src.Servers))
	for i := range src.Servers {
		servers[src.Servers[i].ID] = &src.Servers[i]
	}
	byKey := make(map[slum.InstanceKey]*slum.Instance, len(src.Instances))
	for i := range src.Instances {
		byKey[src.Instances[i].Key()] = &src.Instances[i]
	}
	backend := func(tenant string, c slum.CopyRef) (Backend, bool) {
		in, ok := byKey[slum.KeyOf(tenant, c.Instance)]
		if !ok {
			return Backend{}, false
		}
		s, ok := servers[c.Server]
		if !ok || src.Health[s.ID] == slum.HealthDead {
			return Backend{}, false
		}
		return Backend{Instance: in.Key(), Server: s.ID, URL: s.URL,
			Host:     names.TenementID(in.TenantID, in.ID) + "." + in.Process + "." + s.Domain,
			OnDemand: in.Mode == slum.ModeOnDemand}, true
	}
	rs := make([]Route, 0, len(src.Tenants))
	for _, t := range src.Tenants {
		r := Route{Tenant: t.ID, Domain: t.Domain}
		st, ok := src.Serving[t.ID]
		if !ok {
			r.Reason = "the controller has not decided who serves it yet"
		}
		for _, c := range st.Serving {
			if b, ok := backend(t.ID, c); ok {
				r.Backends = append(r.Backends, b)
			}
		}
		for _, c := range st.Spares {
			if b, ok := backend(t.ID, c); ok {
				r.Spares = append(r.Spares, b)
			}
		}
		if len(r.Backends) == 0 && r.Reason == "" {
			r.Reason = st.Reason
			if r.Reason == "" {
				r.Reason = "no copy serves it now"
			}
		}
		rs = append(rs, r)
	}
	return New(src.Revision, rs)
}

// Choice is who serves one tenant: its serving copies, preferred first,
// its running spares, and why nothing serves it when nothing does.
type Choice struct {
	Tenant  string
	Serving []slum.CopyRef
	Spares  []slum.CopyRef
	Reason  string
}

// Decision is what a controller decided that routes depend on, beside
// the desired state at its revision: the health of each server and who
// serves each tenant, both in the desired state's order. A plan is one.
type Decision interface {
	Revision() int64
	Servers() int
	Health(server int) slum.Health
	Tenants() int
	Choice(tenant int) Choice
}

// Changed reports whether next implies another route table than last
// (nil: no table was built yet): another revision, a server's health, or
// who serves a tenant. Copies are compared by identity first, so a
// decision that reuses the last one's lists is compared in passing.
func Changed(last, next Decision) bool {
	if last == nil || last.Revision() != next.Revision() || last.Servers() != next.Servers() || last.Tenants() != next.Tenants() {
		return true
	}
	for i := range next.Servers() {
		if next.Health(i) != last.Health(i) {
			return true
		}
	}
	same := func(x, y []slum.CopyRef) bool {
		return len(x) == len(y) && (len(x) == 0 || &x[0] == &y[0] || slices.Equal(x, y))
	}
	for i := range next.Tenants() {
		a, b := last.Choice(i), next.Choice(i)
		if a.Tenant != b.Tenant || a.Reason != b.Reason || !same(a.Serving, b.Serving) || !same(a.Spares, b.Spares) {
			return true
		}
	}
	return false
}

// Decided builds the route table of a decision on the desired state of
// servers, tenants and instances at its revision.
func Decided(servers []slum.Server, tenants []slum.Tenant, instances []slum.Instance, d Decision) *Table {
	health := make(map[string]slum.Health, len(servers))
	for i := range min(d.Servers(), len(servers)) {
		health[servers[i].ID] = d.Health(i)
	}
	serving := make(map[string]slum.TenantStatus, d.Tenants())
	for i := range d.Tenants() {
		c := d.Choice(i)
		serving[c.Tenant] = slum.TenantStatus{TenantID: c.Tenant, Serving: c.Serving, Spares: c.Spares, Reason: c.Reason}
	}
	return Build(Source{Revision: d.Revision(), Servers: servers, Health: health, Tenants: tenants, Instances: instances, Serving: serving})
}
