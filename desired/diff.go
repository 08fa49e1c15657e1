package desired

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/slum-fleet/slum"
)

// Current is the fleet a fleet file is compared with, read in the
// transaction that applies the file.
type Current struct {
	Snapshot *slum.Snapshot // servers, tenants, settings; instances in database order
	// Placed counts, by server, the copies the controller has yet to stop
	// there (its ledger entries).
	Placed map[string]int64
}

// Delta is what applying a fleet file changes: the change set it shows,
// with each edit in the form the store writes it. Edits carry where they
// come from, for errors: the file position ("fleet.yaml:12") of their
// entry, or the file's name for pruned objects, which have none.
type Delta struct {
	slum.ChangeSet
	File          string
	Settings      *slum.Settings // the fleet's new settings, when they change
	Servers       []ServerEdit
	Tenants       []TenantEdit // created or updated
	Instances     []InstanceEdit
	DeleteTenants []string
	// MassPrune is set when the delta prunes most of the fleet.
	MassPrune *slum.MassPruneError
}

// ServerEdit creates, updates or deletes a server.
type ServerEdit struct {
	Op     slum.Op
	Server slum.Server
	Where  string
}

// TenantEdit creates or updates a tenant.
type TenantEdit struct {
	slum.Tenant
	Exists  bool
	Renamed bool // its domain changes
	Where   string
}

// InstanceEdit creates, updates or deletes an instance.
type InstanceEdit struct {
	Op       slum.Op
	Instance slum.Instance
	Moved    bool // an update that changes its server
	Where    string
}

// Diff works out what applying f to cur changes, checking everything an
// apply checks: tokens of new servers, servers that exist and take new
// instances, anti-affinity, capacity, unique domains, settings, and that
// a pruned server has no copies left to stop. It changes nothing.
func Diff(f *File, cur Current, prune bool) (*Delta, error) {
	d := newDiffer(f, cur, prune)
	steps := []func() error{d.servers, d.pruneServers, d.tenants, d.unlisted, d.placeNew, d.check, d.settings}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	d.assemble()
	return d.out, nil
}

// differ is one Diff in progress.
type differ struct {
	f     *File
	cur   Current
	prune bool
	out   *Delta

	oldServers   map[string]slum.Server
	oldTenants   map[string]slum.Tenant
	oldInstances map[slum.InstanceKey]int // index in cur.Snapshot.Instances
	named        []bool                   // by that index: the file names the instance

	final         map[string]slum.Server // the servers after the apply
	serverAt      map[string]string      // file position of each server the file names
	deleteServers []string
	finalTenants  map[string]slum.Tenant
	tenantAt      map[string]int // line of each tenant the file names
	placer        *Placer
	firstOn       map[string]string // file position of the first instance the file places on each server
	toPlace       []InstanceEdit
	deletedInsts  int

	serverChanges, tenantChanges, instanceChanges []slum.Change
}

func newDiffer(f *File, cur Current, prune bool) *differ {
	s := cur.Snapshot
	d := &differ{f: f, cur: cur, prune: prune, out: &Delta{File: f.Name},
		oldServers: make(map[string]slum.Server, len(s.Servers)), oldTenants: make(map[string]slum.Tenant, len(s.Tenants)),
		oldInstances: make(map[slum.InstanceKey]int, len(s.Instances)), named: make([]bool, len(s.Instances)),
		final: make(map[string]slum.Server, len(f.Servers)), serverAt: make(map[string]string, len(f.Servers)),
		finalTenants: make(map[string]slum.Tenant, max(len(f.Tenants), len(s.Tenants))),
		tenantAt:     make(map[string]int, len(f.Tenants)),
		placer:       NewPlacer(), firstOn: map[string]string{}}
	for _, srv := range s.Servers {
		d.oldServers[srv.ID] = srv
	}
	for _, t := range s.Tenants {
		d.oldTenants[t.ID] = t
	}
	for i, in := range s.Instances {
		d.oldInstances[in.Key()] = i
	}
	return d
}

// instances counts the instances the file names.
func (f *File) instances() int {
	n := 0
	for _, t := range f.Tenants {
		n += len(t.Instances)
	}
	return n
}

func (d *differ) where(line int) string { return fmt.Sprintf("%s:%d", d.f.Name, line) }

// servers works out the final set of servers the file names, and what
// changes of them.
func (d *differ) servers() error {
	for i, fs := range d.f.Servers {
		want := fs.Server
		old, exists := d.oldServers[want.ID]
		at := d.where(fs.Line)
		d.serverAt[want.ID] = at
		if !fs.TokenSet {
			want.Token = old.Token
		}
		if !exists && want.Token == "" && !fs.NoToken {
			reason := "is a new server without a token: give token_env or token_file (its tenement admin token), or no_token: true to add it without one"
			if fs.TokenEnv != "" || fs.TokenFile != "" {
				reason = "has a token source that was not read (ResolveTokens)"
			}
			return &slum.FieldError{Where: at, Field: fmt.Sprintf("servers[%d]", i), Value: want.ID, Reason: reason}
		}
		if !fs.StateSet {
			want.State = old.State
			if want.State == "" {
				want.State = slum.ServerActive
			}
		}
		d.final[want.ID] = want
		if !exists {
			d.out.Servers = append(d.out.Servers, ServerEdit{slum.OpCreate, want, at})
			d.serverChanges = append(d.serverChanges, slum.Change{Op: slum.OpCreate, Kind: slum.ObjectServer, ID: want.ID, Fields: []slum.FieldChange{
				{Field: "url", New: want.URL}, {Field: "capacity_mb", New: itoa(want.CapacityMB)}}})
			continue
		}
		fc := fieldChanges{}
		fc.add("url", old.URL, want.URL)
		fc.add("region", old.Region, want.Region)
		fc.add("capacity_mb", itoa(old.CapacityMB), itoa(want.CapacityMB))
		fc.add("domain", old.Domain, want.Domain)
		fc.add("state", string(old.State), string(want.State))
		if old.Token != want.Token {
			fc = append(fc, slum.FieldChange{Field: "token", Old: hiddenOrNone(old.Token), New: hiddenOrNone(want.Token)})
		}
		if len(fc) > 0 {
			want.CreatedAt = old.CreatedAt
			d.out.Servers = append(d.out.Servers, ServerEdit{slum.OpUpdate, want, at})
			d.serverChanges = append(d.serverChanges, slum.Change{Op: slum.OpUpdate, Kind: slum.ObjectServer, ID: want.ID, Fields: fc})
		}
	}
	for _, srv := range d.placerServers() {
		d.placer.AddServer(srv, "")
	}
	return nil
}

// placerServers keeps the servers the file does not name (or prunes
// them) and returns the final set.
func (d *differ) placerServers() []slum.Server {
	for id, s := range d.oldServers {
		if _, named := d.final[id]; named {
			continue
		}
		if d.prune {
			d.deleteServers = append(d.deleteServers, id)
		} else {
			d.final[id] = s
			d.out.Unlisted++
		}
	}
	sort.Strings(d.deleteServers)
	out := make([]slum.Server, 0, len(d.final))
	for _, s := range d.final {
		out = append(out, s)
	}
	return out
}

// pruneServers refuses to prune a server the controller has copies on
// still to stop (the rules of 'server remove'): they would run on
// unwatched once their ledger entries went with the server.
func (d *differ) pruneServers() error {
	for _, id := range d.deleteServers {
		if n := d.cur.Placed[id]; n > 0 {
			return fmt.Errorf("%s: prune server %s: %w: the controller has yet to stop %d instances it placed there; "+
				"keep %s in the file until they are stopped (see 'slum instance list --server %s'), then prune it",
				d.f.Name, id, slum.ErrConflict, n, id, id)
		}
	}
	return nil
}

// tenants works out each tenant the file names and its instances.
func (d *differ) tenants() error {
	for _, ft := range d.f.Tenants {
		t := ft.Tenant
		NormalizeTenant(&t)
		d.finalTenants[t.ID], d.tenantAt[t.ID] = t, ft.Line
		old, exists := d.oldTenants[t.ID]
		switch {
		case !exists:
			d.out.Tenants = append(d.out.Tenants, TenantEdit{Tenant: t, Where: d.where(ft.Line)})
			d.tenantChanges = append(d.tenantChanges, slum.Change{Op: slum.OpCreate, Kind: slum.ObjectTenant, ID: t.ID, Fields: []slum.FieldChange{{Field: "domain", New: t.Domain}}})
		default:
			fc := fieldChanges{}
			fc.add("domain", old.Domain, t.Domain)
			fc.add("region", old.Region, t.Region)
			fc.add("failover", string(old.Failover), string(t.Failover))
			fc.add("serving", string(old.Serving), string(t.Serving))
			fc.add("data", string(old.Data), string(t.Data))
			fc.add("replica", old.Replica, t.Replica)
			if len(fc) > 0 {
				d.out.Tenants = append(d.out.Tenants, TenantEdit{Tenant: t, Exists: true, Renamed: old.Domain != t.Domain, Where: d.where(ft.Line)})
				d.tenantChanges = append(d.tenantChanges, slum.Change{Op: slum.OpUpdate, Kind: slum.ObjectTenant, ID: t.ID, Fields: fc})
			}
		}
		for rank, fi := range ft.Instances {
			want := fi.Instance
			want.Rank = int64(rank)
			if err := d.instance(want, fi.Line); err != nil {
				return err
			}
		}
	}
	return nil
}

// instance works out one instance the file names, at line of the file.
// Its position and field names are made into text only for what is kept
// (an edit, an error): most instances of a re-applied file change nothing.
func (d *differ) instance(want slum.Instance, line int) error {
	key := want.Key()
	serverField := func() string { return "instance " + string(key) + " server" }
	if want.ServerID != "" {
		if _, ok := d.final[want.ServerID]; !ok {
			return &slum.FieldError{Where: d.where(line), Field: serverField(), Value: want.ServerID, Reason: "is not a server of the fleet"}
		}
	}
	takesNew := func(server string) error {
		if st := d.final[server].State; st != slum.ServerActive {
			return &slum.FieldError{Where: d.where(line), Field: serverField(), Value: server, Reason: "is " + string(st) + " and takes no new instances"}
		}
		return nil
	}
	i, exists := d.oldInstances[key]
	if !exists {
		at := d.where(line)
		if want.ServerID == "" {
			d.toPlace = append(d.toPlace, InstanceEdit{Op: slum.OpCreate, Instance: want, Where: at})
			return nil
		}
		if err := takesNew(want.ServerID); err != nil {
			return err
		}
		if err := d.take(want, line); err != nil {
			return err
		}
		d.out.Instances = append(d.out.Instances, InstanceEdit{Op: slum.OpCreate, Instance: want, Where: at})
		d.instanceChanges = append(d.instanceChanges, instanceCreated(want))
		return nil
	}
	// The file declares where an instance lives (its home); failover may
	// have it running elsewhere for now. Naming its home again keeps it
	// where it runs: re-applying a file must not move an instance back
	// onto the server it failed over from.
	d.named[i] = true
	old := &d.cur.Snapshot.Instances[i]
	want.HomeServerID = old.HomeServerID
	switch {
	case want.ServerID == "":
		want.ServerID = old.ServerID
		if _, ok := d.final[want.ServerID]; !ok {
			return &slum.FieldError{Where: d.where(line), Field: serverField(), Value: "",
				Reason: "its current server " + want.ServerID + " is pruned; name the server to move it to"}
		}
	case old.FailedOver() && want.ServerID == old.HomeServerID:
		want.ServerID = old.ServerID
		d.out.Notes = append(d.out.Notes, fmt.Sprintf("instance %s is declared on %s and failed over to %s: it stays there (fail-back is a fleet setting; 'slum tenant move' moves it)",
			key, old.HomeServerID, old.ServerID))
	default:
		want.HomeServerID = want.ServerID // declared somewhere new: a move, or adopting where it failed over to
	}
	if want.ServerID != old.ServerID {
		if err := takesNew(want.ServerID); err != nil {
			return err
		}
	}
	want.Generation, want.CreatedAt = old.Generation, old.CreatedAt
	if err := d.take(want, line); err != nil {
		return err
	}
	d.instanceUpdated(old, want, line)
	return nil
}

// instanceUpdated records the changes of an instance the fleet has.
func (d *differ) instanceUpdated(old *slum.Instance, want slum.Instance, line int) {
	if old.Process == want.Process && old.ServerID == want.ServerID && old.MemoryMB == want.MemoryMB && old.DesiredState == want.DesiredState &&
		old.Mode == want.Mode && old.Rank == want.Rank && old.HomeServerID == want.HomeServerID {
		return // the common case, without formatting the numbers
	}
	fc := fieldChanges{}
	fc.add("process", old.Process, want.Process)
	fc.add("server", old.ServerID, want.ServerID)
	fc.add("memory_mb", itoa(old.MemoryMB), itoa(want.MemoryMB))
	fc.add("state", string(old.DesiredState), string(want.DesiredState))
	fc.add("mode", string(old.Mode), string(want.Mode))
	fc.add("rank", itoa(old.Rank), itoa(want.Rank))
	fc.add("home", old.HomeServerID, want.HomeServerID)
	if len(fc) == 0 {
		return
	}
	moved := old.ServerID != want.ServerID
	note := ""
	if moved {
		note = MoveNote
		d.out.Stops = append(d.out.Stops, slum.StoppedCopy{Instance: want.Key(), Server: old.ServerID, Moved: true})
	}
	d.out.Instances = append(d.out.Instances, InstanceEdit{slum.OpUpdate, want, moved, d.where(line)})
	d.instanceChanges = append(d.instanceChanges, slum.Change{Op: slum.OpUpdate, Kind: slum.ObjectInstance, ID: string(want.Key()), Fields: fc, Note: note})
}

// MoveNote is what a change that moves an instance says of its old copy.
const MoveNote = "moves: the old copy is stopped, which deletes its data where storage_persist = false"

// take counts an instance on its server, refusing a second instance of a
// tenant's process there. line is its line in the file, -1 for an
// instance the file does not name.
func (d *differ) take(in slum.Instance, line int) error {
	if d.placer.runs(in.TenantID, in.Process, in.ServerID) {
		where := ""
		if line >= 0 {
			where = d.where(line)
		}
		return &slum.FieldError{Where: where, Field: "instance " + string(in.Key()) + " server", Value: in.ServerID,
			Reason: "already runs another instance of " + in.TenantID + "'s " + in.Process + " (a tenant's instances of one process never share a server)"}
	}
	d.placer.Take(in)
	if _, ok := d.firstOn[in.ServerID]; !ok && line >= 0 {
		d.firstOn[in.ServerID] = d.where(line)
	}
	return nil
}

// unlisted keeps what the file does not name, or deletes it when pruning.
func (d *differ) unlisted() error {
	for id, t := range d.oldTenants {
		if _, named := d.finalTenants[id]; named {
			continue
		}
		if d.prune {
			d.out.DeleteTenants = append(d.out.DeleteTenants, id)
		} else {
			d.finalTenants[id] = t
			d.out.Unlisted++
		}
	}
	sort.Strings(d.out.DeleteTenants)
	for i, in := range d.cur.Snapshot.Instances {
		if d.named[i] {
			continue
		}
		key := in.Key()
		if !d.prune {
			d.out.Unlisted++
			if err := d.take(in, -1); err != nil {
				return err
			}
			continue
		}
		d.deletedInsts++
		note := "its copy on " + in.ServerID + " is stopped"
		if slices.Contains(d.deleteServers, in.ServerID) {
			// Pruning the server needs its ledger empty: nothing of
			// slum's runs there.
			note = "it does not run: the controller has no copy of it on " + in.ServerID
		} else {
			d.out.Stops = append(d.out.Stops, slum.StoppedCopy{Instance: key, Server: in.ServerID})
		}
		d.out.Instances = append(d.out.Instances, InstanceEdit{Op: slum.OpDelete, Instance: in, Where: d.f.Name})
		d.instanceChanges = append(d.instanceChanges, slum.Change{Op: slum.OpDelete, Kind: slum.ObjectInstance, ID: string(key), Note: note})
	}
	return nil
}

// placeNew places new instances without a server, after everything named
// is counted, in file order.
func (d *differ) placeNew() error {
	for _, e := range d.toPlace {
		t := d.finalTenants[e.Instance.TenantID]
		srv, err := d.placer.Place(e.Instance.TenantID, t.Region, e.Instance.Process, e.Instance.MemoryMB, "")
		if err != nil {
			return fmt.Errorf("%s: place %s: %w", e.Where, e.Instance.Key(), err)
		}
		e.Instance.ServerID = srv
		d.placer.Take(e.Instance)
		d.out.Instances = append(d.out.Instances, e)
		d.instanceChanges = append(d.instanceChanges, instanceCreated(e.Instance))
	}
	return nil
}

// check refuses a fleet over capacity or with a domain twice.
func (d *differ) check() error {
	if err := checkCapacity(d.placer, d.f.Name, d.serverAt, d.firstOn); err != nil {
		return err
	}
	return checkDomains(d.f.Name, d.finalTenants, d.tenantAt)
}

// settings works out the fleet's new settings, when the file has a
// settings block.
func (d *differ) settings() error {
	if d.f.Settings == nil {
		return nil
	}
	old := d.cur.Snapshot.Settings
	want := d.f.Settings.Over(old)
	if err := want.Validate(); err != nil {
		return fmt.Errorf("%s:%d: settings: %w", d.f.Name, d.f.Settings.Line, err)
	}
	if fc := settingsChanges(old, want); len(fc) > 0 {
		d.out.Settings = &want
		d.serverChanges = append([]slum.Change{{Op: slum.OpUpdate, Kind: slum.ObjectSettings, ID: "fleet", Fields: fc}}, d.serverChanges...)
	}
	return nil
}

// assemble puts the changes in the order they are shown and checks for a
// prune of most of the fleet.
func (d *differ) assemble() {
	for _, id := range d.out.DeleteTenants {
		d.tenantChanges = append(d.tenantChanges, slum.Change{Op: slum.OpDelete, Kind: slum.ObjectTenant, ID: id})
	}
	for _, id := range d.deleteServers {
		d.out.Servers = append(d.out.Servers, ServerEdit{Op: slum.OpDelete, Server: d.oldServers[id], Where: d.f.Name})
	}
	d.out.Changes = slices.Concat(d.serverChanges, d.tenantChanges, d.instanceChanges)
	for _, id := range d.deleteServers {
		d.out.Changes = append(d.out.Changes, slum.Change{Op: slum.OpDelete, Kind: slum.ObjectServer, ID: id})
	}
	mass := &slum.MassPruneError{File: d.f.Name,
		Deleted: [3]int{len(d.deleteServers), len(d.out.DeleteTenants), d.deletedInsts},
		Had:     [3]int{len(d.oldServers), len(d.oldTenants), len(d.oldInstances)}}
	for i := range mass.Had {
		if mass.Deleted[i]*2 > mass.Had[i] {
			d.out.MassPrune = mass
		}
	}
}

// fieldChanges collects the fields that differ.
type fieldChanges []slum.FieldChange

func (fc *fieldChanges) add(field, old, new string) {
	if old != new {
		*fc = append(*fc, slum.FieldChange{Field: field, Old: old, New: new})
	}
}

func hiddenOrNone(token string) string {
	if token == "" {
		return "(none)"
	}
	return "(hidden)"
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

// checkDomains fails when two tenants would have one domain, at the file
// position of the one the file names (tenantAt).
func checkDomains(name string, tenants map[string]slum.Tenant, tenantAt map[string]int) error {
	owner := make(map[string]string, len(tenants))
	for _, t := range tenants {
		if other, dup := owner[t.Domain]; dup {
			a, b := other, t.ID
			if a > b {
				a, b = b, a
			}
			line, ok := tenantAt[a]
			if !ok {
				line, ok = tenantAt[b]
			}
			at := name
			if ok {
				at = fmt.Sprintf("%s:%d", name, line)
			}
			return fmt.Errorf("%s: %w: tenants %s and %s would both have domain %s", at, slum.ErrConflict, a, b, t.Domain)
		}
		owner[t.Domain] = t.ID
	}
	return nil
}

func instanceCreated(i slum.Instance) slum.Change {
	return slum.Change{Op: slum.OpCreate, Kind: slum.ObjectInstance, ID: string(i.Key()), Fields: []slum.FieldChange{
		{Field: "process", New: i.Process}, {Field: "server", New: i.ServerID}, {Field: "memory_mb", New: itoa(i.MemoryMB)}}}
}

// settingsChanges lists the settings that differ.
func settingsChanges(old, want slum.Settings) []slum.FieldChange {
	fc := fieldChanges{}
	fc.add("probe_interval", old.ProbeInterval.String(), want.ProbeInterval.String())
	fc.add("probe_timeout", old.ProbeTimeout.String(), want.ProbeTimeout.String())
	fc.add("dead_after", strconv.Itoa(old.DeadAfter), strconv.Itoa(want.DeadAfter))
	fc.add("partition_fraction", strconv.FormatFloat(old.PartitionFraction, 'g', -1, 64), strconv.FormatFloat(want.PartitionFraction, 'g', -1, 64))
	fc.add("failover_rate", strconv.Itoa(old.FailoverRate), strconv.Itoa(want.FailoverRate))
	fc.add("stable_after", old.StableAfter.String(), want.StableAfter.String())
	fc.add("failback", string(old.Failback), string(want.Failback))
	fc.add("failback_after", old.FailbackAfter.String(), want.FailbackAfter.String())
	fc.add("rebalance", string(old.Rebalance), string(want.Rebalance))
	fc.add("rebalance_every", old.RebalanceEvery.String(), want.RebalanceEvery.String())
	return fc
}
