package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/routes"
)

// fleet is the fleet as the watcher last read it, by object: read whole
// once, then kept up to date from the change log. Only the watcher's
// goroutine touches it.
type fleet struct {
	settings  slum.Settings
	servers   map[string]slum.Server
	stats     map[string]slum.ServerStats
	tenants   map[string]slum.Tenant
	instances map[string]slum.Instance // by key
	byTenant  map[string][]string      // instance keys by tenant
	sstat     map[string]*slum.ServerStatus
	tstat     map[string]*slum.TenantStatus
	istat     map[string]*slum.InstanceStatus
}

// newFleet indexes a whole read of the fleet.
func newFleet(snap *slum.Snapshot, stats []slum.ServerStats, sstat []slum.ServerStatus, tstat []slum.TenantStatus, istat []slum.InstanceStatus) *fleet {
	f := &fleet{settings: snap.Settings,
		servers: make(map[string]slum.Server, len(snap.Servers)), stats: make(map[string]slum.ServerStats, len(stats)),
		tenants: make(map[string]slum.Tenant, len(snap.Tenants)), instances: make(map[string]slum.Instance, len(snap.Instances)),
		byTenant: make(map[string][]string, len(snap.Tenants)),
		sstat:    make(map[string]*slum.ServerStatus, len(sstat)), tstat: make(map[string]*slum.TenantStatus, len(tstat)),
		istat: make(map[string]*slum.InstanceStatus, len(istat))}
	for _, s := range snap.Servers {
		f.servers[s.ID] = s
	}
	for _, s := range stats {
		f.stats[s.ServerID] = s
	}
	for _, t := range snap.Tenants {
		f.tenants[t.ID] = t
	}
	for _, in := range snap.Instances {
		f.putInstance(string(in.Key()), &in)
	}
	for i := range sstat {
		f.sstat[sstat[i].ServerID] = &sstat[i]
	}
	for i := range tstat {
		f.tstat[tstat[i].TenantID] = &tstat[i]
	}
	for i := range istat {
		f.istat[string(istat[i].Key())] = &istat[i]
	}
	return f
}

// putInstance records an instance (nil: gone).
func (f *fleet) putInstance(key string, in *slum.Instance) {
	tenant, _, _ := strings.Cut(key, ":")
	_, had := f.instances[key]
	switch {
	case in == nil && had:
		delete(f.instances, key)
		f.byTenant[tenant] = slices.DeleteFunc(f.byTenant[tenant], func(k string) bool { return k == key })
		if len(f.byTenant[tenant]) == 0 {
			delete(f.byTenant, tenant)
		}
	case in != nil:
		f.instances[key] = *in
		if !had {
			ks := append(f.byTenant[tenant], key)
			slices.Sort(ks)
			f.byTenant[tenant] = ks
		}
	}
}

func put[V any](m map[string]V, id string, v *V) {
	if v == nil {
		delete(m, id)
	} else {
		m[id] = *v
	}
}

func putPtr[V any](m map[string]*V, id string, v *V) {
	if v == nil {
		delete(m, id)
	} else {
		m[id] = v
	}
}

// dirty says which objects of a view to make again; nil: all of them.
type dirty struct {
	settings                    bool
	servers, tenants, instances map[string]bool
	routes                      map[string]bool // by tenant
}

func (d *dirty) empty() bool {
	return !d.settings && len(d.servers)+len(d.tenants)+len(d.instances)+len(d.routes) == 0
}

// apply brings f up to date with what changed and says which objects of
// the view it touches.
func (f *fleet) apply(c *slum.Changed) *dirty {
	d := &dirty{servers: map[string]bool{}, tenants: map[string]bool{}, instances: map[string]bool{}, routes: map[string]bool{}}
	if c.Settings != nil {
		f.settings, d.settings = *c.Settings, true
	}
	// Servers a route shows (their URL, domain, health) changed: the
	// routes of the tenants they serve do too.
	routed := map[string]bool{}
	for id, s := range c.Servers {
		put(f.servers, id, s)
		d.servers[id], routed[id] = true, true
	}
	for id, s := range c.Stats {
		put(f.stats, id, s)
		d.servers[id] = true
	}
	for id, s := range c.ServerStatus {
		if old := f.sstat[id]; old == nil || s == nil || old.Health != s.Health {
			routed[id] = true
		}
		putPtr(f.sstat, id, s)
		d.servers[id] = true
	}
	for id, t := range c.Tenants {
		put(f.tenants, id, t)
		d.tenants[id], d.routes[id] = true, true
	}
	for id, s := range c.TenantStatus {
		putPtr(f.tstat, id, s)
		d.tenants[id], d.routes[id] = true, true
	}
	for key, in := range c.Instances {
		f.putInstance(string(key), in)
		d.instances[string(key)], d.routes[key.Tenant()] = true, true
	}
	for key, s := range c.InstanceStatus {
		putPtr(f.istat, string(key), s)
		d.instances[string(key)] = true
	}
	if len(routed) > 0 {
		for id, st := range f.tstat {
			for _, cs := range [][]slum.CopyRef{st.Serving, st.Spares} {
				for _, c := range cs {
					if routed[c.Server] {
						d.routes[id] = true
					}
				}
			}
		}
	}
	return d
}

// routeSource is what routes.Build needs for the tenants named (nil: all).
func (f *fleet) routeSource(tenants map[string]bool) routes.Source {
	src := routes.Source{Servers: make([]slum.Server, 0, len(f.servers)), Health: make(map[string]slum.Health, len(f.sstat)),
		Serving: map[string]slum.TenantStatus{}}
	for _, s := range f.servers {
		src.Servers = append(src.Servers, s)
	}
	for id, s := range f.sstat {
		src.Health[id] = s.Health
	}
	add := func(id string) {
		t, ok := f.tenants[id]
		if !ok {
			return
		}
		src.Tenants = append(src.Tenants, t)
		for _, k := range f.byTenant[id] {
			src.Instances = append(src.Instances, f.instances[k])
		}
		if st := f.tstat[id]; st != nil {
			src.Serving[id] = *st
		}
	}
	// By id, as a whole read lists them: of two tenants with one domain
	// (never in the database), the same one routes.
	var ids []string
	if tenants == nil {
		ids = keys(f.tenants)
	} else {
		ids = keys(tenants)
	}
	slices.Sort(ids)
	for _, id := range ids {
		add(id)
	}
	return src
}

// view is the fleet as objects, each as JSON by kind and id, with what
// each was made from (so the next build marshals only what changed). The
// watcher updates its view in place until a reset is made from it; from
// then on (shared) the view never changes and the next build copies it.
type view struct {
	shared    bool
	settings  map[string]memoEntry[string]
	holds     map[string]memoEntry[string]
	servers   map[string]memoEntry[serverIn]
	tenants   map[string]memoEntry[tenantIn]
	instances map[string]memoEntry[instanceIn]
	routes    map[string]routeEntry // by domain
	routeOf   map[string]string     // each tenant's route's domain
}

// each calls fn for every object of the kinds asked for (nil: all), in
// the order resets list them.
func (v *view) each(kinds map[wire.ObjectKind]bool, fn func(kind wire.ObjectKind, id string, obj []byte)) {
	if v == nil {
		return
	}
	walk := func(kind wire.ObjectKind, ids []string, get func(string) []byte) {
		if kinds != nil && !kinds[kind] {
			return
		}
		sort.Strings(ids)
		for _, id := range ids {
			fn(kind, id, get(id))
		}
	}
	walk(wire.ObjSettings, keys(v.settings), func(id string) []byte { return v.settings[id].json })
	walk(wire.ObjServer, keys(v.servers), func(id string) []byte { return v.servers[id].json })
	walk(wire.ObjTenant, keys(v.tenants), func(id string) []byte { return v.tenants[id].json })
	walk(wire.ObjInstance, keys(v.instances), func(id string) []byte { return v.instances[id].json })
	walk(wire.ObjHold, keys(v.holds), func(id string) []byte { return v.holds[id].json })
	walk(wire.ObjRoute, keys(v.routes), func(id string) []byte { return v.routes[id].json })
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

type memoEntry[T comparable] struct {
	in   T
	json []byte
}

type routeEntry struct {
	r    routes.Route
	json []byte
}

type serverIn struct {
	s      slum.Server
	stats  slum.ServerStats
	status slum.ServerStatus
	has    bool
}

type tenantIn struct {
	t                slum.Tenant
	serving, spares  string
	reason           string
	changed, updated time.Time
	has              bool
}

type instanceIn struct {
	in     slum.Instance
	status slum.InstanceStatus
	has    bool
}

// builder collects the changes of one build.
type builder struct {
	changes []wire.Change
}

// remember puts the object made from in into cur: the previous JSON when
// in is the same, else obj() marshalled now, which is a change. old and
// cur may be the same map.
func remember[T comparable](b *builder, kind wire.ObjectKind, old, cur map[string]memoEntry[T], id string, in T, obj func() any) {
	if e, ok := old[id]; ok && e.in == in {
		cur[id] = e
		return
	}
	data, err := json.Marshal(obj())
	if err != nil {
		return
	}
	cur[id] = memoEntry[T]{in, data}
	b.changes = append(b.changes, wire.Change{Kind: kind, ID: id, Op: wire.OpPut, Object: data})
}

// drop removes id from m, a deletion when it was there.
func drop[V any](b *builder, kind wire.ObjectKind, m map[string]V, id string) {
	if _, ok := m[id]; ok {
		delete(m, id)
		b.changes = append(b.changes, wire.Change{Kind: kind, ID: id, Op: wire.OpDelete})
	}
}

// gone lists what old has and cur does not as deletions.
func gone[V any](b *builder, kind wire.ObjectKind, old, cur map[string]V) {
	for id := range old {
		if _, ok := cur[id]; !ok {
			b.changes = append(b.changes, wire.Change{Kind: kind, ID: id, Op: wire.OpDelete})
		}
	}
}

func copies(cs []slum.CopyRef) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.Instance)
		b.WriteByte('@')
		b.WriteString(c.Server)
		b.WriteByte(',')
	}
	return b.String()
}

func sameRoute(a, b routes.Route) bool {
	return a.Tenant == b.Tenant && a.Domain == b.Domain && a.Reason == b.Reason &&
		slices.Equal(a.Backends, b.Backends) && slices.Equal(a.Spares, b.Spares)
}

func (b *builder) server(old, cur map[string]memoEntry[serverIn], f *fleet, id string) {
	s, ok := f.servers[id]
	if !ok {
		drop(b, wire.ObjServer, cur, id)
		return
	}
	in := serverIn{s: s, stats: f.stats[id]}
	status := f.sstat[id]
	if status != nil {
		in.status, in.has = *status, true
	}
	remember(b, wire.ObjServer, old, cur, id, in, func() any {
		return wire.ServerView{Server: wire.NewServer(s), Stats: in.stats, Status: status}
	})
}

func (b *builder) tenant(old, cur map[string]memoEntry[tenantIn], f *fleet, id string) {
	t, ok := f.tenants[id]
	if !ok {
		drop(b, wire.ObjTenant, cur, id)
		return
	}
	in := tenantIn{t: t}
	status := f.tstat[id]
	if p := status; p != nil {
		in.serving, in.spares, in.reason, in.changed, in.updated, in.has = copies(p.Serving), copies(p.Spares), p.Reason, p.ChangedAt, p.UpdatedAt, true
	}
	remember(b, wire.ObjTenant, old, cur, id, in, func() any {
		return wire.TenantView{Tenant: t, Status: status}
	})
}

func (b *builder) instance(old, cur map[string]memoEntry[instanceIn], f *fleet, key string) {
	in, ok := f.instances[key]
	if !ok {
		drop(b, wire.ObjInstance, cur, key)
		return
	}
	mi := instanceIn{in: in}
	status := f.istat[key]
	if status != nil {
		mi.status, mi.has = *status, true
	}
	remember(b, wire.ObjInstance, old, cur, key, mi, func() any {
		return wire.InstanceView{Instance: in, Key: key, Status: status}
	})
}

// route puts r into v, a change when it differs from was (the entry its
// domain had before this build).
func (b *builder) route(v *view, r routes.Route, was routeEntry, had bool) {
	e := was
	if !had || !sameRoute(was.r, r) {
		data, err := json.Marshal(r)
		if err != nil {
			return
		}
		e = routeEntry{r, data}
		b.changes = append(b.changes, wire.Change{Kind: wire.ObjRoute, ID: r.Domain, Op: wire.OpPut, Object: data})
	}
	v.routes[r.Domain] = e
	v.routeOf[r.Tenant] = r.Domain
}

// makeView turns the fleet into objects and says what changed since
// prev: every object when d is nil, else those d names. JSON is reused
// for objects made from the same values as before.
func makeView(prev *view, f *fleet, holds []slum.Hold, d *dirty) (*view, []wire.Change) {
	if prev == nil {
		prev, d = &view{}, nil
	}
	var b builder
	var v *view
	switch {
	case d == nil:
		v = &view{servers: make(map[string]memoEntry[serverIn], len(f.servers)), tenants: make(map[string]memoEntry[tenantIn], len(f.tenants)),
			instances: make(map[string]memoEntry[instanceIn], len(f.instances)), routes: make(map[string]routeEntry, len(f.tenants)),
			routeOf: make(map[string]string, len(f.tenants))}
	case prev.shared && d.empty():
		v = &view{shared: true, servers: prev.servers, tenants: prev.tenants, instances: prev.instances, routes: prev.routes, routeOf: prev.routeOf}
	case prev.shared:
		v = &view{servers: maps.Clone(prev.servers), tenants: maps.Clone(prev.tenants), instances: maps.Clone(prev.instances),
			routes: maps.Clone(prev.routes), routeOf: maps.Clone(prev.routeOf)}
	default:
		v = prev // nobody else holds it: update it in place
	}
	// Settings and holds are few: made again every time.
	oldSettings, oldHolds := prev.settings, prev.holds
	v.settings, v.holds = map[string]memoEntry[string]{}, make(map[string]memoEntry[string], len(holds))
	setJSON, _ := json.Marshal(f.settings)
	remember(&b, wire.ObjSettings, oldSettings, v.settings, "fleet", string(setJSON), func() any { return f.settings })
	for _, h := range holds {
		hj, _ := json.Marshal(h)
		remember(&b, wire.ObjHold, oldHolds, v.holds, fmt.Sprint(h.ID), string(hj), func() any { return h })
	}
	gone(&b, wire.ObjHold, oldHolds, v.holds)

	if d == nil {
		for id := range f.servers {
			b.server(prev.servers, v.servers, f, id)
		}
		gone(&b, wire.ObjServer, prev.servers, v.servers)
		for id := range f.tenants {
			b.tenant(prev.tenants, v.tenants, f, id)
		}
		gone(&b, wire.ObjTenant, prev.tenants, v.tenants)
		for key := range f.instances {
			b.instance(prev.instances, v.instances, f, key)
		}
		gone(&b, wire.ObjInstance, prev.instances, v.instances)
		for _, r := range routes.Build(f.routeSource(nil)).Routes() {
			was, had := prev.routes[r.Domain]
			b.route(v, r, was, had)
		}
		gone(&b, wire.ObjRoute, prev.routes, v.routes)
	} else {
		for id := range d.servers {
			b.server(v.servers, v.servers, f, id)
		}
		for id := range d.tenants {
			b.tenant(v.tenants, v.tenants, f, id)
		}
		for key := range d.instances {
			b.instance(v.instances, v.instances, f, key)
		}
		b.routesOf(v, f, d.routes)
	}
	sortChanges(b.changes)
	return v, b.changes
}

// routesOf makes the routes of the tenants named again. A tenant's
// domain may have changed, so its old route goes first.
func (b *builder) routesOf(v *view, f *fleet, tenants map[string]bool) {
	if len(tenants) == 0 {
		return
	}
	was := map[string]routeEntry{} // what each domain touched had before
	for id := range tenants {
		if dom, ok := v.routeOf[id]; ok {
			if e, ok := v.routes[dom]; ok {
				was[dom] = e
			}
			delete(v.routes, dom)
			delete(v.routeOf, id)
		}
	}
	made := map[string]bool{}
	for _, r := range routes.Build(f.routeSource(tenants)).Routes() {
		e, had := was[r.Domain]
		if !had {
			e, had = v.routes[r.Domain]
		}
		b.route(v, r, e, had)
		made[r.Domain] = true
	}
	for dom := range was {
		if !made[dom] {
			b.changes = append(b.changes, wire.Change{Kind: wire.ObjRoute, ID: dom, Op: wire.OpDelete})
		}
	}
}

var kindOrder = func() map[wire.ObjectKind]int {
	m := map[wire.ObjectKind]int{}
	for i, k := range wire.ObjectKinds {
		m[k] = i
	}
	return m
}()

func sortChanges(cs []wire.Change) {
	sort.Slice(cs, func(i, j int) bool {
		if a, b := kindOrder[cs[i].Kind], kindOrder[cs[j].Kind]; a != b {
			return a < b
		}
		return cs[i].ID < cs[j].ID
	})
}
