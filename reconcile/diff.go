// Package reconcile is slum's controller: it observes every tenement server,
// diffs what runs against the desired state, and converges the fleet with a
// rate-limited work queue. Data flows one way: desired → diff → actions →
// observed. The diff is a pure function (DiffServer); Controller does the
// I/O around it.
package reconcile

import (
	"sort"

	"github.com/slum-fleet/slum/desired"
)

// Kind is what an action does.
type Kind string

const (
	Spawn Kind = "spawn"
	Stop  Kind = "stop"
)

// Action is one call to make on one server.
type Action struct {
	Kind     Kind
	ServerID string
	Name     string // process:tenant--instance
	Process  string
	ID       string // tenant--instance
	Instance string // tenant:instance, "" for a copy no longer desired anywhere
	// Generation of the desired instance this action serves; a parked
	// action is retried once it changes.
	Generation int64
	Reason     string
}

// Key identifies an action's work item: one instance on one server.
func (a Action) Key() string { return a.ServerID + "/" + a.Name }

// Phases an instance can be in.
const (
	PhasePending = "pending" // being spawned or stopped
	PhaseRunning = "running"
	PhaseFailed  = "failed"  // tenement gave up on it, or slum's calls fail permanently
	PhaseUnknown = "unknown" // its server cannot be observed
	PhaseStopped = "stopped" // desired stopped, and absent
	PhaseIdle    = "idle"    // on-demand and scaled to zero
)

// Desired is a desired instance with its names worked out once per load of
// the desired state, not once per pass.
type Desired struct {
	desired.Instance
	Name string // on tenement: process:tenant--instance
	Key  string // in slum: tenant:instance
}

// NewDesired wraps a desired instance.
func NewDesired(in desired.Instance) Desired {
	return Desired{Instance: in, Name: in.TenementName(), Key: in.Key()}
}

// Observation is what one pass saw of a desired instance.
type Observation struct {
	Instance *Desired
	Phase    string
	Health   string
	// Converged: what runs matches the desired state at Instance.Generation.
	Converged bool
}

// Hold is a stop deferred until the instance's new copy runs elsewhere
// (make before break).
type Hold struct {
	Action
	WaitingFor string // the server the instance moved to
}

// ServerInput is everything the diff of one observed server needs.
type ServerInput struct {
	ServerID string
	Desired  []Desired           // placed on this server
	Observed map[string]string   // what the server runs now: name → tenement's health word
	Owned    map[string]struct{} // what slum placed here (the ledger), by name
	// Elsewhere reports, for a copy slum placed here that is not desired
	// here, where its instance is desired now and whether it runs there.
	// ok is false when the instance is desired nowhere or is stopped.
	Elsewhere func(tenant, instance string) (server string, ready bool, ok bool)
}

// ServerPlan is the diff of one server.
type ServerPlan struct {
	Spawns       []Action
	Stops        []Action
	Holds        []Hold
	Record       []desired.Placement // ledger entries to write before acting
	Forget       []desired.Placement // ledger entries whose copies are gone
	Observations []Observation
	Unmanaged    []string // running names slum did not place; never touched
}

// DiffServer compares one server's desired instances with what it runs.
// Only copies in the ledger (Owned) are ever stopped; anything else is
// reported as unmanaged. An absent on-demand instance is left to wake on
// request, not spawned.
func DiffServer(in ServerInput) ServerPlan {
	var p ServerPlan
	running := in.Observed
	want := make(map[string]bool, len(in.Desired))
	for i := range in.Desired {
		d := &in.Desired[i]
		name := d.Name
		want[name] = true
		health, present := running[name]
		_, owned := in.Owned[name]
		o := Observation{Instance: d}
		if !owned && d.DesiredState == desired.StateRunning {
			p.Record = append(p.Record, desired.Placement{ServerID: in.ServerID, Name: name, TenantID: d.TenantID, InstanceID: d.ID})
		}
		act := Action{ServerID: in.ServerID, Name: name, Process: d.Process, ID: name[len(d.Process)+1:],
			Instance: d.Key, Generation: d.Generation}
		switch {
		case present && d.DesiredState == desired.StateRunning:
			o.Health = health
			o.Phase, o.Converged = PhaseRunning, true
			if health == "failed" {
				o.Phase = PhaseFailed
			}
		case present && !owned:
			// Desired stopped, but slum never placed this copy: it is
			// not slum's to stop.
			o.Health, o.Phase = health, PhaseRunning
			p.Unmanaged = append(p.Unmanaged, name)
		case present:
			o.Health = health
			o.Phase = PhasePending
			act.Kind, act.Reason = Stop, "desired state is stopped"
			p.Stops = append(p.Stops, act)
		case d.DesiredState == desired.StateStopped:
			o.Phase, o.Converged = PhaseStopped, true
		case d.Mode == desired.ModeOnDemand:
			o.Phase, o.Converged = PhaseIdle, true
		default:
			o.Phase = PhasePending
			act.Kind, act.Reason = Spawn, "desired running and absent"
			p.Spawns = append(p.Spawns, act)
		}
		p.Observations = append(p.Observations, o)
	}
	for name := range in.Observed {
		if want[name] {
			continue
		}
		if _, owned := in.Owned[name]; !owned {
			p.Unmanaged = append(p.Unmanaged, name)
			continue
		}
		process, tenant, inst, ok := desired.ParseTenementName(name)
		if !ok {
			// The ledger only holds names slum made; this cannot parse
			// only if the ledger was edited by hand. Leave it alone.
			p.Unmanaged = append(p.Unmanaged, name)
			continue
		}
		act := Action{Kind: Stop, ServerID: in.ServerID, Name: name, Process: process, ID: desired.TenementID(tenant, inst)}
		where, ready, moved := "", false, false
		if in.Elsewhere != nil {
			where, ready, moved = in.Elsewhere(tenant, inst)
		}
		switch {
		case moved && !ready:
			act.Instance, act.Reason = tenant+":"+inst, "moved to "+where
			p.Holds = append(p.Holds, Hold{Action: act, WaitingFor: where})
		case moved:
			act.Instance, act.Reason = tenant+":"+inst, "moved to "+where+", where it runs"
			p.Stops = append(p.Stops, act)
		default:
			act.Reason = "no longer desired"
			p.Stops = append(p.Stops, act)
		}
	}
	for name := range in.Owned {
		if _, present := running[name]; present || want[name] {
			continue
		}
		_, tenant, inst, _ := desired.ParseTenementName(name)
		p.Forget = append(p.Forget, desired.Placement{ServerID: in.ServerID, Name: name, TenantID: tenant, InstanceID: inst})
	}
	sort.Strings(p.Unmanaged)
	sort.Slice(p.Stops, func(i, j int) bool { return p.Stops[i].Name < p.Stops[j].Name })
	sort.Slice(p.Forget, func(i, j int) bool { return p.Forget[i].Name < p.Forget[j].Name })
	return p
}
