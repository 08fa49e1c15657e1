package desired

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/db"
)

// applyPlan is what an apply changes (the change set it shows) with what it
// needs to make those changes.
type applyPlan struct {
	slum.ChangeSet
	servers       []applyServer
	tenants       []applyTenant // created or updated
	instances     []applyInstance
	deleteTenants []string
	massPrune     *slum.MassPruneError // set when the plan prunes most of the fleet
	settings      *slum.Settings       // the fleet's new settings, when they change
	file          string
}

// The changes of a plan carry where they come from, for errors: the file
// position ("fleet.yaml:12") of their entry, or for pruned objects, which
// have none, the file's name.

type applyServer struct {
	op    slum.Op
	s     slum.Server
	where string
}

type applyInstance struct {
	op    slum.Op
	i     slum.Instance
	moved bool // an update that changes its server
	where string
}

type applyTenant struct {
	slum.Tenant
	exists  bool
	renamed bool // its domain changes
	where   string
}

// Apply makes the desired state match the fleet file src, in one
// transaction: either every change lands or none does. The file is
// parsed and checked in full first. A dry run checks exactly what an
// apply checks, so the two succeed or fail alike. When a prune is refused
// for deleting most of the fleet, the change set comes back with the
// MassPruneError, so that it can be shown.
func (s *Store) Apply(ctx context.Context, src slum.FileSource, opt slum.ApplyOptions) (*slum.ChangeSet, error) {
	f, err := Receive(src)
	if err != nil {
		return nil, err
	}
	return s.applyFile(ctx, f, opt)
}

func (s *Store) applyFile(ctx context.Context, f *File, opt slum.ApplyOptions) (*slum.ChangeSet, error) {
	var plan *applyPlan
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
	var mass *slum.MassPruneError
	if errors.As(err, &mass) {
		return &plan.ChangeSet, err
	}
	if err != nil {
		return nil, err
	}
	return &plan.ChangeSet, nil
}

// errDryRun rolls back a transaction that only planned.
var errDryRun = fmt.Errorf("dry run")

type current struct {
	settings  slum.Settings
	servers   map[string]slum.Server
	tenants   map[string]slum.Tenant
	instances map[slum.InstanceKey]slum.Instance
	order     []slum.InstanceKey // in database order
}

func loadCurrent(ctx context.Context, q *db.Queries) (*current, error) {
	c := &current{servers: map[string]slum.Server{}, tenants: map[string]slum.Tenant{}, instances: map[slum.InstanceKey]slum.Instance{}}
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
	c.order = make([]slum.InstanceKey, 0, len(ins))
	for _, r := range ins {
		in := toInstance(r)
		c.instances[in.Key()] = in
		c.order = append(c.order, in.Key())
	}
	return c, nil
}

func makePlan(ctx context.Context, q *db.Queries, f *File, prune bool) (*applyPlan, error) {
	cur, err := loadCurrent(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read desired state: %w", err)
	}
	plan := &applyPlan{}
	where := func(line int) string { return fmt.Sprintf("%s:%d", f.Name, line) }

	// Servers: the final set, and what changes.
	final := map[string]slum.Server{}
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
			return nil, &slum.FieldError{Where: where(fs.Line), Field: fmt.Sprintf("servers[%d]", i), Value: want.ID, Reason: reason}
		}
		if !fs.StateSet {
			want.State = old.State
			if want.State == "" {
				want.State = slum.ServerActive
			}
		}
		final[want.ID] = want
		if !exists {
			plan.servers = append(plan.servers, applyServer{slum.OpCreate, want, where(fs.Line)})
			plan.Changes = append(plan.Changes, slum.Change{Op: slum.OpCreate, Kind: "server", ID: want.ID, Fields: []slum.FieldChange{
				{Field: "url", New: want.URL}, {Field: "capacity_mb", New: itoa(want.CapacityMB)}}})
			continue
		}
		var fc []slum.FieldChange
		diff := func(field, o, n string) {
			if o != n {
				fc = append(fc, slum.FieldChange{Field: field, Old: o, New: n})
			}
		}
		diff("url", old.URL, want.URL)
		diff("region", old.Region, want.Region)
		diff("capacity_mb", itoa(old.CapacityMB), itoa(want.CapacityMB))
		diff("domain", old.Domain, want.Domain)
		diff("state", string(old.State), string(want.State))
		if old.Token != want.Token {
			fc = append(fc, slum.FieldChange{Field: "token", Old: hiddenOrNone(old.Token), New: hiddenOrNone(want.Token)})
		}
		if len(fc) > 0 {
			want.CreatedAt = old.CreatedAt
			plan.servers = append(plan.servers, applyServer{slum.OpUpdate, want, where(fs.Line)})
			plan.Changes = append(plan.Changes, slum.Change{Op: slum.OpUpdate, Kind: "server", ID: want.ID, Fields: fc})
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
				f.Name, id, slum.ErrConflict, n, id, id)
		}
	}

	// Tenants.
	finalTenants := map[string]slum.Tenant{}
	tenantAt := map[string]string{}
	fileInstances := map[slum.InstanceKey]bool{}
	var tenantChanges, instanceChanges []slum.Change
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
			tenantChanges = append(tenantChanges, slum.Change{Op: slum.OpCreate, Kind: "tenant", ID: t.ID, Fields: []slum.FieldChange{{Field: "domain", New: t.Domain}}})
		case old.Domain != t.Domain || old.Region != t.Region || old.Failover != t.Failover || old.Serving != t.Serving:
			var fc []slum.FieldChange
			if old.Domain != t.Domain {
				fc = append(fc, slum.FieldChange{Field: "domain", Old: old.Domain, New: t.Domain})
			}
			if old.Region != t.Region {
				fc = append(fc, slum.FieldChange{Field: "region", Old: old.Region, New: t.Region})
			}
			if old.Failover != t.Failover {
				fc = append(fc, slum.FieldChange{Field: "failover", Old: string(old.Failover), New: string(t.Failover)})
			}
			if old.Serving != t.Serving {
				fc = append(fc, slum.FieldChange{Field: "serving", Old: string(old.Serving), New: string(t.Serving)})
			}
			plan.tenants = append(plan.tenants, applyTenant{Tenant: t, exists: true, renamed: old.Domain != t.Domain, where: where(ft.Line)})
			tenantChanges = append(tenantChanges, slum.Change{Op: slum.OpUpdate, Kind: "tenant", ID: t.ID, Fields: fc})
		}
		for rank, fi := range ft.Instances {
			want := fi.Instance
			want.Rank = int64(rank)
			key := want.Key()
			at := where(fi.Line)
			fileInstances[key] = true
			if want.ServerID != "" {
				if _, ok := final[want.ServerID]; !ok {
					return nil, &slum.FieldError{Where: at, Field: "instance " + string(key) + " server", Value: want.ServerID, Reason: "is not a server of the fleet"}
				}
			}
			old, exists := cur.instances[key]
			if !exists {
				if want.ServerID == "" {
					toPlace = append(toPlace, applyInstance{op: slum.OpCreate, i: want, where: at})
					continue
				}
				if final[want.ServerID].State != slum.ServerActive {
					return nil, &slum.FieldError{Where: at, Field: "instance " + string(key) + " server", Value: want.ServerID, Reason: "is " + string(final[want.ServerID].State) + " and takes no new instances"}
				}
				if err := takeChecked(p, want, at); err != nil {
					return nil, err
				}
				noteFirst(firstOn, want.ServerID, at)
				plan.instances = append(plan.instances, applyInstance{op: slum.OpCreate, i: want, where: at})
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
					return nil, &slum.FieldError{Where: at, Field: "instance " + string(key) + " server", Value: "",
						Reason: "its current server " + want.ServerID + " is pruned; name the server to move it to"}
				}
			case old.FailedOver() && want.ServerID == old.HomeServerID:
				want.ServerID = old.ServerID
				plan.Notes = append(plan.Notes, fmt.Sprintf("instance %s is declared on %s and failed over to %s: it stays there (fail-back is a fleet setting; 'slum tenant move' moves it)",
					key, old.HomeServerID, old.ServerID))
			default:
				want.HomeServerID = want.ServerID // declared somewhere new: a move, or adopting where it failed over to
			}
			if want.ServerID != old.ServerID && final[want.ServerID].State != slum.ServerActive {
				return nil, &slum.FieldError{Where: at, Field: "instance " + string(key) + " server", Value: want.ServerID, Reason: "is " + string(final[want.ServerID].State) + " and takes no new instances"}
			}
			want.Generation, want.CreatedAt = old.Generation, old.CreatedAt
			if err := takeChecked(p, want, at); err != nil {
				return nil, err
			}
			noteFirst(firstOn, want.ServerID, at)
			var fc []slum.FieldChange
			diff := func(field, o, n string) {
				if o != n {
					fc = append(fc, slum.FieldChange{Field: field, Old: o, New: n})
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
				plan.instances = append(plan.instances, applyInstance{slum.OpUpdate, want, old.ServerID != want.ServerID, at})
				instanceChanges = append(instanceChanges, slum.Change{Op: slum.OpUpdate, Kind: "instance", ID: string(key), Fields: fc, Note: note})
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
		plan.instances = append(plan.instances, applyInstance{op: slum.OpDelete, i: in, where: f.Name})
		instanceChanges = append(instanceChanges, slum.Change{Op: slum.OpDelete, Kind: "instance", ID: string(key), Note: note})
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
		tenantChanges = append(tenantChanges, slum.Change{Op: slum.OpDelete, Kind: "tenant", ID: id})
	}
	for _, id := range deleteServers {
		plan.servers = append(plan.servers, applyServer{op: slum.OpDelete, s: cur.servers[id], where: f.Name})
	}
	plan.Changes = append(plan.Changes, tenantChanges...)
	plan.Changes = append(plan.Changes, instanceChanges...)
	for _, id := range deleteServers {
		plan.Changes = append(plan.Changes, slum.Change{Op: slum.OpDelete, Kind: "server", ID: id})
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
			plan.Changes = append([]slum.Change{{Op: slum.OpUpdate, Kind: "settings", ID: "fleet", Fields: fc}}, plan.Changes...)
		}
	}

	mass := &slum.MassPruneError{File: f.Name,
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
	return fmt.Errorf("%s: %w: more instances than capacity_mb allows on %s", at, slum.ErrNoCapacity, strings.Join(over, ", "))
}

// takeChecked counts an instance on its server, refusing a second instance
// of a tenant's process there.
func takeChecked(p *Placer, in slum.Instance, where string) error {
	if p.runs(in.TenantID, in.Process, in.ServerID) {
		return &slum.FieldError{Where: where, Field: "instance " + string(in.Key()) + " server", Value: in.ServerID,
			Reason: "already runs another instance of " + in.TenantID + "'s " + in.Process + " (a tenant's instances of one process never share a server)"}
	}
	p.take(in)
	return nil
}

// checkDomains fails when two tenants would have one domain, at the file
// position of the one the file names (tenantAt).
func checkDomains(tenants map[string]slum.Tenant, tenantAt map[string]string) error {
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
			return fmt.Errorf("%s: %w: tenants %s and %s would both have domain %s", at, slum.ErrConflict, a, b, t.Domain)
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
func execute(ctx context.Context, q *db.Queries, plan *applyPlan, now int64) error {
	if plan.settings != nil {
		if err := setSettings(ctx, q, *plan.settings, now); err != nil {
			return fmt.Errorf("%s: %w", plan.file, err)
		}
	}
	for _, as := range plan.servers {
		switch as.op {
		case slum.OpCreate:
			if err := q.InsertServer(ctx, serverParams(as.s, now)); err != nil {
				return fmt.Errorf("%s: create server %s: %w", as.where, as.s.ID, err)
			}
		case slum.OpUpdate:
			if _, err := q.UpdateServer(ctx, updateServerParams(as.s, now)); err != nil {
				return fmt.Errorf("%s: update server %s: %w", as.where, as.s.ID, err)
			}
		}
	}
	var moved []applyInstance
	for _, ai := range plan.instances {
		switch {
		case ai.op == slum.OpDelete:
		case ai.op == slum.OpUpdate && ai.moved:
			moved = append(moved, ai)
		default:
			continue
		}
		if _, err := q.DeleteInstance(ctx, db.DeleteInstanceParams{TenantID: ai.i.TenantID, ID: ai.i.ID}); err != nil {
			return fmt.Errorf("%s: delete instance %s: %w", ai.where, ai.i.Key(), err)
		}
		if ai.op == slum.OpDelete {
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
			if _, err := q.UpdateTenant(ctx, updateTenantParams(slum.Tenant{ID: t.ID, Domain: "_" + t.ID, Region: t.Region, Failover: t.Failover, Serving: t.Serving}, now)); err != nil {
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
		if ai.op == slum.OpUpdate && !ai.moved {
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
		if ai.op == slum.OpCreate {
			if err := q.InsertInstance(ctx, insertInstanceParams(ai.i, now)); err != nil {
				return fmt.Errorf("%s: create instance %s: %w", ai.where, ai.i.Key(), err)
			}
			if err := q.DeleteRemoval(ctx, db.DeleteRemovalParams{TenantID: ai.i.TenantID, InstanceID: ai.i.ID}); err != nil {
				return fmt.Errorf("create instance %s: %w", ai.i.Key(), err)
			}
		}
	}
	for _, as := range plan.servers {
		if as.op == slum.OpDelete {
			if _, err := q.DeleteServer(ctx, as.s.ID); err != nil {
				return fmt.Errorf("%s: prune server %s: %w", as.where, as.s.ID, err)
			}
		}
	}
	return nil
}

func instanceCreated(i slum.Instance) slum.Change {
	return slum.Change{Op: slum.OpCreate, Kind: "instance", ID: string(i.Key()), Fields: []slum.FieldChange{
		{Field: "process", New: i.Process}, {Field: "server", New: i.ServerID}, {Field: "memory_mb", New: itoa(i.MemoryMB)}}}
}

// settingsChanges lists the settings that differ.
func settingsChanges(old, want slum.Settings) []slum.FieldChange {
	var fc []slum.FieldChange
	add := func(field, o, n string) {
		if o != n {
			fc = append(fc, slum.FieldChange{Field: field, Old: o, New: n})
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
