package desired

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/slum-fleet/slum/db"
)

// Op is what a change does.
type Op string

const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// FieldChange is one field's old and new value. Tokens show as "(hidden)".
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Change is one object created, updated or deleted by an apply.
type Change struct {
	Op     Op            `json:"op"`
	Kind   string        `json:"kind"` // server, tenant or instance
	ID     string        `json:"id"`   // instances: tenant:instance
	Fields []FieldChange `json:"fields,omitempty"`
	Note   string        `json:"note,omitempty"`
}

func (c Change) String() string {
	sign := map[Op]string{OpCreate: "+", OpUpdate: "~", OpDelete: "-"}[c.Op]
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", sign, c.Kind, c.ID)
	if len(c.Fields) > 0 {
		parts := make([]string, len(c.Fields))
		for i, f := range c.Fields {
			if c.Op == OpCreate {
				parts[i] = f.Field + "=" + f.New
			} else {
				parts[i] = fmt.Sprintf("%s: %s -> %s", f.Field, orNone(f.Old), orNone(f.New))
			}
		}
		sep := ", "
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, sep))
	}
	if c.Note != "" {
		b.WriteString("  # " + c.Note)
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// Plan is what an apply changes, in the order it changes it.
type Plan struct {
	Changes []Change `json:"changes"`
	// Notes say what differs from the file but is left as it is on
	// purpose, such as instances that failed over.
	Notes []string `json:"notes,omitempty"`
	// Unlisted counts objects in the database the file does not name; they
	// are kept unless the apply prunes.
	Unlisted int `json:"unlisted"`

	servers       []applyServer
	tenants       []applyTenant // created or updated
	instances     []applyInstance
	deleteTenants []string
	massPrune     *MassPruneError // set when the plan prunes most of the fleet
	settings      *Settings       // the fleet's new settings, when they change
	file          string
}

// The changes of a plan carry where they come from, for errors: the file
// position ("fleet.yaml:12") of their entry, or for pruned objects, which
// have none, the file's name.

type applyServer struct {
	op    Op
	s     Server
	where string
}

type applyInstance struct {
	op    Op
	i     Instance
	moved bool // an update that changes its server
	where string
}

type applyTenant struct {
	Tenant
	exists  bool
	renamed bool // its domain changes
	where   string
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Changes) == 0 }

// Counts returns how many objects are created, updated and deleted.
func (p *Plan) Counts() (create, update, del int) {
	for _, c := range p.Changes {
		switch c.Op {
		case OpCreate:
			create++
		case OpUpdate:
			update++
		case OpDelete:
			del++
		}
	}
	return
}

// Summary is a one-line account of the plan.
func (p *Plan) Summary() string {
	c, u, d := p.Counts()
	return fmt.Sprintf("%d to create, %d to update, %d to delete", c, u, d)
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	Prune  bool // delete what the file does not name
	DryRun bool // plan only
	// AllowMassPrune lets a prune delete more than half of the fleet's
	// servers, tenants or instances; without it such a prune is refused
	// with a MassPruneError, as a file left incomplete by mistake would
	// otherwise empty the fleet.
	AllowMassPrune bool
}

// Diff returns what Apply would change, changing nothing.
func (s *Store) Diff(ctx context.Context, f *File, prune bool) (*Plan, error) {
	return s.Apply(ctx, f, ApplyOptions{Prune: prune, DryRun: true})
}

// Apply makes the desired state match the fleet file, in one transaction:
// either every change lands or none does. A dry run checks exactly what an
// apply checks, so the two succeed or fail alike. When a prune is refused
// for deleting most of the fleet, the plan comes back with the
// MassPruneError, so that it can be shown.
func (s *Store) Apply(ctx context.Context, f *File, opt ApplyOptions) (*Plan, error) {
	var plan *Plan
	err := s.db.InTx(ctx, func(q *db.Queries) error {
		var err error
		if plan, err = makePlan(ctx, q, f, opt.Prune); err != nil {
			plan = nil
			return err
		}
		if err := plan.massPrune; err != nil && !opt.AllowMassPrune {
			return err
		}
		if opt.DryRun || plan.Empty() {
			return errDryRun
		}
		now := ms(s.now())
		if err := execute(ctx, q, plan, now); err != nil {
			return err
		}
		c, u, d := plan.Counts()
		if err := event(ctx, q, now, "fleet", "Applied", fmt.Sprintf("applied %s: %d created, %d updated, %d deleted", f.Name, c, u, d)); err != nil {
			return err
		}
		return q.BumpRevision(ctx)
	})
	if err == errDryRun {
		err = nil
	}
	var mass *MassPruneError
	if errors.As(err, &mass) {
		return plan, err
	}
	if err != nil {
		return nil, err
	}
	return plan, nil
}

// errDryRun rolls back a transaction that only planned.
var errDryRun = fmt.Errorf("dry run")

type current struct {
	settings  Settings
	servers   map[string]Server
	tenants   map[string]Tenant
	instances map[string]Instance // by key
	order     []string            // instance keys in database order
}

func loadCurrent(ctx context.Context, q *db.Queries) (*current, error) {
	c := &current{servers: map[string]Server{}, tenants: map[string]Tenant{}, instances: map[string]Instance{}}
	var err error
	if c.settings, err = getSettings(ctx, q); err != nil {
		return nil, err
	}
	srv, err := q.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range srv {
		c.servers[r.ID] = toServer(r)
	}
	ten, err := q.ListTenants(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range ten {
		c.tenants[r.ID] = toTenant(r)
	}
	ins, err := q.ListInstances(ctx)
	if err != nil {
		return nil, err
	}
	c.order = make([]string, 0, len(ins))
	for _, r := range ins {
		in := toInstance(r)
		c.instances[in.Key()] = in
		c.order = append(c.order, in.Key())
	}
	return c, nil
}

func makePlan(ctx context.Context, q *db.Queries, f *File, prune bool) (*Plan, error) {
	cur, err := loadCurrent(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read desired state: %w", err)
	}
	plan := &Plan{}
	where := func(line int) string { return fmt.Sprintf("%s:%d", f.Name, line) }

	// Servers: the final set, and what changes.
	final := map[string]Server{}
	serverAt := map[string]string{} // file position of each server the file names
	for i, fs := range f.Servers {
		want := fs.Server
		old, exists := cur.servers[want.ID]
		serverAt[want.ID] = where(fs.Line)
		if !fs.TokenSet {
			want.Token = old.Token
		}
		if !exists && want.Token == "" && !fs.NoToken {
			reason := "is a new server without a token: give token_env or token_file (its tenement admin token), or no_token: true to add it without one"
			if fs.TokenEnv != "" || fs.TokenFile != "" {
				reason = "has a token source that was not read (ResolveTokens)"
			}
			return nil, &FieldError{Where: where(fs.Line), Field: fmt.Sprintf("servers[%d]", i), Value: want.ID, Reason: reason}
		}
		if !fs.StateSet {
			want.State = old.State
			if want.State == "" {
				want.State = ServerActive
			}
		}
		final[want.ID] = want
		if !exists {
			plan.servers = append(plan.servers, applyServer{OpCreate, want, where(fs.Line)})
			plan.Changes = append(plan.Changes, Change{Op: OpCreate, Kind: "server", ID: want.ID, Fields: []FieldChange{
				{Field: "url", New: want.URL}, {Field: "capacity_mb", New: itoa(want.CapacityMB)}}})
			continue
		}
		var fc []FieldChange
		diff := func(field, o, n string) {
			if o != n {
				fc = append(fc, FieldChange{Field: field, Old: o, New: n})
			}
		}
		diff("url", old.URL, want.URL)
		diff("region", old.Region, want.Region)
		diff("capacity_mb", itoa(old.CapacityMB), itoa(want.CapacityMB))
		diff("domain", old.Domain, want.Domain)
		diff("state", string(old.State), string(want.State))
		if old.Token != want.Token {
			fc = append(fc, FieldChange{Field: "token", Old: hiddenOrNone(old.Token), New: hiddenOrNone(want.Token)})
		}
		if len(fc) > 0 {
			want.CreatedAt = old.CreatedAt
			plan.servers = append(plan.servers, applyServer{OpUpdate, want, where(fs.Line)})
			plan.Changes = append(plan.Changes, Change{Op: OpUpdate, Kind: "server", ID: want.ID, Fields: fc})
		}
	}
	var deleteServers []string
	for id, s := range cur.servers {
		if _, named := final[id]; named {
			continue
		}
		if prune {
			deleteServers = append(deleteServers, id)
		} else {
			final[id] = s
			plan.Unlisted++
		}
	}
	sort.Strings(deleteServers)
	// A pruned server goes by the rules of 'server remove': not while the
	// controller has copies there still to stop, which would run on
	// unwatched once their ledger entries went with the server.
	for _, id := range deleteServers {
		n, err := q.CountPlacementsOnServer(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("prune server %s: %w", id, err)
		}
		if n > 0 {
			return nil, fmt.Errorf("%s: prune server %s: %w: the controller has yet to stop %d instances it placed there; "+
				"keep %s in the file until they are stopped (see 'slum instance list --server %s'), then prune it",
				f.Name, id, ErrConflict, n, id, id)
		}
	}

	// Tenants.
	finalTenants := map[string]Tenant{}
	tenantAt := map[string]string{}
	fileInstances := map[string]bool{}
	var tenantChanges, instanceChanges []Change
	p := newPlacer()
	for _, s := range final {
		p.addServer(s)
	}
	firstOn := map[string]string{} // file position of the first instance the file places on each server
	var toPlace []applyInstance
	for _, ft := range f.Tenants {
		t := ft.Tenant
		normalizeTenant(&t)
		finalTenants[t.ID] = t
		tenantAt[t.ID] = where(ft.Line)
		old, exists := cur.tenants[t.ID]
		switch {
		case !exists:
			plan.tenants = append(plan.tenants, applyTenant{Tenant: t, where: where(ft.Line)})
			tenantChanges = append(tenantChanges, Change{Op: OpCreate, Kind: "tenant", ID: t.ID, Fields: []FieldChange{{Field: "domain", New: t.Domain}}})
		case old.Domain != t.Domain || old.Region != t.Region || old.Failover != t.Failover || old.Serving != t.Serving:
			var fc []FieldChange
			if old.Domain != t.Domain {
				fc = append(fc, FieldChange{Field: "domain", Old: old.Domain, New: t.Domain})
			}
			if old.Region != t.Region {
				fc = append(fc, FieldChange{Field: "region", Old: old.Region, New: t.Region})
			}
			if old.Failover != t.Failover {
				fc = append(fc, FieldChange{Field: "failover", Old: string(old.Failover), New: string(t.Failover)})
			}
			if old.Serving != t.Serving {
				fc = append(fc, FieldChange{Field: "serving", Old: string(old.Serving), New: string(t.Serving)})
			}
			plan.tenants = append(plan.tenants, applyTenant{Tenant: t, exists: true, renamed: old.Domain != t.Domain, where: where(ft.Line)})
			tenantChanges = append(tenantChanges, Change{Op: OpUpdate, Kind: "tenant", ID: t.ID, Fields: fc})
		}
		for rank, fi := range ft.Instances {
			want := fi.Instance
			want.Rank = int64(rank)
			key := want.Key()
			at := where(fi.Line)
			fileInstances[key] = true
			if want.ServerID != "" {
				if _, ok := final[want.ServerID]; !ok {
					return nil, &FieldError{Where: at, Field: "instance " + key + " server", Value: want.ServerID, Reason: "is not a server of the fleet"}
				}
			}
			old, exists := cur.instances[key]
			if !exists {
				if want.ServerID == "" {
					toPlace = append(toPlace, applyInstance{op: OpCreate, i: want, where: at})
					continue
				}
				if final[want.ServerID].State != ServerActive {
					return nil, &FieldError{Where: at, Field: "instance " + key + " server", Value: want.ServerID, Reason: "is " + string(final[want.ServerID].State) + " and takes no new instances"}
				}
				if err := takeChecked(p, want, at); err != nil {
					return nil, err
				}
				noteFirst(firstOn, want.ServerID, at)
				plan.instances = append(plan.instances, applyInstance{op: OpCreate, i: want, where: at})
				instanceChanges = append(instanceChanges, instanceCreated(want))
				continue
			}
			// The file declares where an instance lives (its home); failover
			// may have it running elsewhere for now. Naming its home again
			// keeps it where it runs: re-applying a file must not move an
			// instance back onto the server it failed over from.
			want.HomeServerID = old.HomeServerID
			switch {
			case want.ServerID == "":
				want.ServerID = old.ServerID
				if _, ok := final[want.ServerID]; !ok {
					return nil, &FieldError{Where: at, Field: "instance " + key + " server", Value: "",
						Reason: "its current server " + want.ServerID + " is pruned; name the server to move it to"}
				}
			case old.FailedOver() && want.ServerID == old.HomeServerID:
				want.ServerID = old.ServerID
				plan.Notes = append(plan.Notes, fmt.Sprintf("instance %s is declared on %s and failed over to %s: it stays there (fail-back is a fleet setting; 'slum tenant move' moves it)",
					key, old.HomeServerID, old.ServerID))
			default:
				want.HomeServerID = want.ServerID // declared somewhere new: a move, or adopting where it failed over to
			}
			if want.ServerID != old.ServerID && final[want.ServerID].State != ServerActive {
				return nil, &FieldError{Where: at, Field: "instance " + key + " server", Value: want.ServerID, Reason: "is " + string(final[want.ServerID].State) + " and takes no new instances"}
			}
			want.Generation, want.CreatedAt = old.Generation, old.CreatedAt
			if err := takeChecked(p, want, at); err != nil {
				return nil, err
			}
			noteFirst(firstOn, want.ServerID, at)
			var fc []FieldChange
			diff := func(field, o, n string) {
				if o != n {
					fc = append(fc, FieldChange{Field: field, Old: o, New: n})
				}
			}
			diff("process", old.Process, want.Process)
			diff("server", old.ServerID, want.ServerID)
			diff("memory_mb", itoa(old.MemoryMB), itoa(want.MemoryMB))
			diff("state", string(old.DesiredState), string(want.DesiredState))
			diff("mode", string(old.Mode), string(want.Mode))
			diff("rank", itoa(old.Rank), itoa(want.Rank))
			diff("home", old.HomeServerID, want.HomeServerID)
			if len(fc) > 0 {
				note := ""
				if old.ServerID != want.ServerID {
					note = "moves: the old copy is stopped, which deletes its data where storage_persist = false"
				}
				plan.instances = append(plan.instances, applyInstance{OpUpdate, want, old.ServerID != want.ServerID, at})
				instanceChanges = append(instanceChanges, Change{Op: OpUpdate, Kind: "instance", ID: key, Fields: fc, Note: note})
			}
		}
	}

	// What the file does not name is kept, or deleted when pruning.
	var deleteTenants []string
	for id, t := range cur.tenants {
		if _, named := finalTenants[id]; named {
			continue
		}
		if prune {
			deleteTenants = append(deleteTenants, id)
		} else {
			finalTenants[id] = t
			plan.Unlisted++
		}
	}
	deletedInstances := 0
	for _, key := range cur.order {
		if fileInstances[key] {
			continue
		}
		in := cur.instances[key]
		if !prune {
			plan.Unlisted++
			if err := takeChecked(p, in, ""); err != nil {
				return nil, err
			}
			continue
		}
		deletedInstances++
		note := "its copy on " + in.ServerID + " is stopped"
		if slices.Contains(deleteServers, in.ServerID) {
			// Pruning the server needs its ledger empty: nothing of
			// slum's runs there.
			note = "it does not run: the controller has no copy of it on " + in.ServerID
		}
		plan.instances = append(plan.instances, applyInstance{op: OpDelete, i: in, where: f.Name})
		instanceChanges = append(instanceChanges, Change{Op: OpDelete, Kind: "instance", ID: key, Note: note})
	}

	// New instances without a server: placed after everything named is
	// counted, in file order.
	for _, ai := range toPlace {
		t := finalTenants[ai.i.TenantID]
		srv, err := p.place(ai.i.TenantID, t.Region, ai.i.Process, ai.i.MemoryMB, "")
		if err != nil {
			return nil, fmt.Errorf("%s: place %s: %w", ai.where, ai.i.Key(), err)
		}
		ai.i.ServerID = srv
		p.take(ai.i)
		plan.instances = append(plan.instances, ai)
		instanceChanges = append(instanceChanges, instanceCreated(ai.i))
	}

	if err := checkCapacity(p, f.Name, serverAt, firstOn); err != nil {
		return nil, err
	}
	if err := checkDomains(finalTenants, tenantAt); err != nil {
		return nil, err
	}

	sort.Strings(deleteTenants)
	for _, id := range deleteTenants {
		tenantChanges = append(tenantChanges, Change{Op: OpDelete, Kind: "tenant", ID: id})
	}
	for _, id := range deleteServers {
		plan.servers = append(plan.servers, applyServer{op: OpDelete, s: cur.servers[id], where: f.Name})
	}
	plan.Changes = append(plan.Changes, tenantChanges...)
	plan.Changes = append(plan.Changes, instanceChanges...)
	for _, id := range deleteServers {
		plan.Changes = append(plan.Changes, Change{Op: OpDelete, Kind: "server", ID: id})
	}
	plan.deleteTenants = deleteTenants
	plan.file = f.Name
	if f.Settings != nil {
		want := f.Settings.Over(cur.settings)
		if err := want.Validate(); err != nil {
			return nil, fmt.Errorf("%s:%d: settings: %w", f.Name, f.Settings.Line, err)
		}
		if fc := settingsChanges(cur.settings, want); len(fc) > 0 {
			plan.settings = &want
			plan.Changes = append([]Change{{Op: OpUpdate, Kind: "settings", ID: "fleet", Fields: fc}}, plan.Changes...)
		}
	}

	mass := &MassPruneError{File: f.Name,
		Deleted: [3]int{len(deleteServers), len(deleteTenants), deletedInstances},
		Had:     [3]int{len(cur.servers), len(cur.tenants), len(cur.instances)}}
	for i := range mass.Had {
		if mass.Deleted[i]*2 > mass.Had[i] {
			plan.massPrune = mass
		}
	}
	return plan, nil
}

func hiddenOrNone(token string) string {
	if token == "" {
		return "(none)"
	}
	return "(hidden)"
}

func noteFirst(firstOn map[string]string, server, where string) {
	if _, ok := firstOn[server]; !ok {
		firstOn[server] = where
	}
}

// checkCapacity fails when some server would hold more than its capacity,
// at the file position of the server, or else of the first instance the
// file places there.
func checkCapacity(p *Placer, name string, serverAt, firstOn map[string]string) error {
	over := p.overCommitted()
	if len(over) == 0 {
		return nil
	}
	id, _, _ := strings.Cut(over[0], " ") // "id (used MB of capacity MB)"
	at, ok := serverAt[id]
	if !ok {
		at, ok = firstOn[id]
	}
	if !ok {
		at = name
	}
	return fmt.Errorf("%s: %w: more instances than capacity_mb allows on %s", at, ErrNoCapacity, strings.Join(over, ", "))
}

// takeChecked counts an instance on its server, refusing a second instance
// of a tenant's process there.
func takeChecked(p *Placer, in Instance, where string) error {
	if p.runs(in.TenantID, in.Process, in.ServerID) {
		return &FieldError{Where: where, Field: "instance " + in.Key() + " server", Value: in.ServerID,
			Reason: "already runs another instance of " + in.TenantID + "'s " + in.Process + " (a tenant's instances of one process never share a server)"}
	}
	p.take(in)
	return nil
}

// checkDomains fails when two tenants would have one domain, at the file
// position of the one the file names (tenantAt).
func checkDomains(tenants map[string]Tenant, tenantAt map[string]string) error {
	owner := make(map[string]string, len(tenants))
	for _, t := range tenants {
		if other, dup := owner[t.Domain]; dup {
			a, b := other, t.ID
			if a > b {
				a, b = b, a
			}
			at := tenantAt[a]
			if at == "" {
				at = tenantAt[b]
			}
			return fmt.Errorf("%s: %w: tenants %s and %s would both have domain %s", at, ErrConflict, a, b, t.Domain)
		}
		owner[t.Domain] = t.ID
	}
	return nil
}

// execute writes a plan. The order keeps every constraint true at every
// statement: servers first, so instances can reference them; deletions of
// instances and tenants before anything takes their capacity, server slot
// or domain; pruned servers last. Moved instances are deleted and restored
// on their new server (generation + 1), so two instances may swap servers.
func execute(ctx context.Context, q *db.Queries, plan *Plan, now int64) error {
	if plan.settings != nil {
		if err := setSettings(ctx, q, *plan.settings, now); err != nil {
			return fmt.Errorf("%s: %w", plan.file, err)
		}
	}
	for _, as := range plan.servers {
		switch as.op {
		case OpCreate:
			if err := q.InsertServer(ctx, serverParams(as.s, now)); err != nil {
				return fmt.Errorf("%s: create server %s: %w", as.where, as.s.ID, err)
			}
		case OpUpdate:
			if _, err := q.UpdateServer(ctx, updateServerParams(as.s, now)); err != nil {
				return fmt.Errorf("%s: update server %s: %w", as.where, as.s.ID, err)
			}
		}
	}
	var moved []applyInstance
	for _, ai := range plan.instances {
		switch {
		case ai.op == OpDelete:
		case ai.op == OpUpdate && ai.moved:
			moved = append(moved, ai)
		default:
			continue
		}
		if _, err := q.DeleteInstance(ctx, db.DeleteInstanceParams{TenantID: ai.i.TenantID, ID: ai.i.ID}); err != nil {
			return fmt.Errorf("%s: delete instance %s: %w", ai.where, ai.i.Key(), err)
		}
		if ai.op == OpDelete {
			if err := q.InsertRemoval(ctx, db.InsertRemovalParams{TenantID: ai.i.TenantID, InstanceID: ai.i.ID, RemovedAt: now}); err != nil {
				return fmt.Errorf("delete instance %s: %w", ai.i.Key(), err)
			}
		}
	}
	for _, id := range plan.deleteTenants {
		if _, err := q.DeleteTenant(ctx, id); err != nil {
			return fmt.Errorf("%s: prune tenant %s: %w", plan.file, id, err)
		}
	}
	// Domains may be swapped between tenants: park changed ones on names
	// no tenant can have (validation forbids "_") before setting them.
	for _, t := range plan.tenants {
		if t.renamed {
			if _, err := q.UpdateTenant(ctx, updateTenantParams(Tenant{ID: t.ID, Domain: "_" + t.ID, Region: t.Region, Failover: t.Failover, Serving: t.Serving}, now)); err != nil {
				return fmt.Errorf("%s: update tenant %s: %w", t.where, t.ID, err)
			}
		}
	}
	for _, t := range plan.tenants {
		if t.exists {
			if _, err := q.UpdateTenant(ctx, updateTenantParams(t.Tenant, now)); err != nil {
				return fmt.Errorf("%s: update tenant %s: %w", t.where, t.ID, err)
			}
			continue
		}
		if err := q.InsertTenant(ctx, insertTenantParams(t.Tenant, now)); err != nil {
			return fmt.Errorf("%s: create tenant %s: %w", t.where, t.ID, err)
		}
	}
	for _, ai := range plan.instances {
		if ai.op == OpUpdate && !ai.moved {
			if _, err := q.UpdateInstance(ctx, updateInstanceParams(ai.i, now)); err != nil {
				return fmt.Errorf("%s: update instance %s: %w", ai.where, ai.i.Key(), err)
			}
		}
	}
	for _, ai := range moved {
		in := ai.i
		err := q.RestoreInstance(ctx, db.RestoreInstanceParams{TenantID: in.TenantID, ID: in.ID, Process: in.Process,
			ServerID: in.ServerID, HomeServerID: in.ServerID, MemoryMb: in.MemoryMB, DesiredState: string(in.DesiredState), Mode: string(in.Mode), Rank: in.Rank,
			Generation: in.Generation + 1, CreatedAt: ms(in.CreatedAt), UpdatedAt: now})
		if err != nil {
			return fmt.Errorf("%s: move instance %s: %w", ai.where, in.Key(), err)
		}
	}
	for _, ai := range plan.instances {
		if ai.op == OpCreate {
			if err := q.InsertInstance(ctx, insertInstanceParams(ai.i, now)); err != nil {
				return fmt.Errorf("%s: create instance %s: %w", ai.where, ai.i.Key(), err)
			}
			if err := q.DeleteRemoval(ctx, db.DeleteRemovalParams{TenantID: ai.i.TenantID, InstanceID: ai.i.ID}); err != nil {
				return fmt.Errorf("create instance %s: %w", ai.i.Key(), err)
			}
		}
	}
	for _, as := range plan.servers {
		if as.op == OpDelete {
			if _, err := q.DeleteServer(ctx, as.s.ID); err != nil {
				return fmt.Errorf("%s: prune server %s: %w", as.where, as.s.ID, err)
			}
		}
	}
	return nil
}

func instanceCreated(i Instance) Change {
	return Change{Op: OpCreate, Kind: "instance", ID: i.Key(), Fields: []FieldChange{
		{Field: "process", New: i.Process}, {Field: "server", New: i.ServerID}, {Field: "memory_mb", New: itoa(i.MemoryMB)}}}
}

// settingsChanges lists the settings that differ.
func settingsChanges(old, want Settings) []FieldChange {
	var fc []FieldChange
	add := func(field, o, n string) {
		if o != n {
			fc = append(fc, FieldChange{Field: field, Old: o, New: n})
		}
	}
	add("probe_interval", old.ProbeInterval.String(), want.ProbeInterval.String())
	add("probe_timeout", old.ProbeTimeout.String(), want.ProbeTimeout.String())
	add("dead_after", strconv.Itoa(old.DeadAfter), strconv.Itoa(want.DeadAfter))
	add("partition_fraction", strconv.FormatFloat(old.PartitionFraction, 'g', -1, 64), strconv.FormatFloat(want.PartitionFraction, 'g', -1, 64))
	add("failover_rate", strconv.Itoa(old.FailoverRate), strconv.Itoa(want.FailoverRate))
	add("stable_after", old.StableAfter.String(), want.StableAfter.String())
	add("failback", string(old.Failback), string(want.Failback))
	add("failback_after", old.FailbackAfter.String(), want.FailbackAfter.String())
	return fc
}
