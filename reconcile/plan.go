package reconcile

import (
	"slices"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/names"
	"github.com/slum-fleet/slum/routes"
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
	Name     string           // process:tenant--instance (Process and ID are its parts)
	Instance slum.InstanceKey // "" for a copy that is no instance of the fleet's
	// Generation of the desired instance a spawn serves.
	Generation int64
	// Guarded stops count against the mass-stop guard: they remove a copy
	// whose instance vanished from the desired state without having been
	// removed on purpose, as from an emptied or wrong database. Removals,
	// desired stops, moves and fences do not count.
	Guarded bool
	// Fence: the copy is stale, on a server back from the dead whose
	// instance failed over; it is stopped without waiting.
	Fence  bool
	Reason string
}

// Process is the tenement process (service) of the action's copy.
func (a Action) Process() string { p, _ := names.SplitTenementName(a.Name); return p }

// ID is the tenement instance id of the action's copy: tenant--instance.
func (a Action) ID() string { _, id := names.SplitTenementName(a.Name); return id }

// RelistAfter is how soon a server in Plan.Relist is listed again.
const RelistAfter = 250 * time.Millisecond

// Key identifies an action's work item: one instance on one server.
func (a Action) Key() string { return a.ServerID + "/" + a.Name }

// Wait is a stop deferred until the instance's new copy runs elsewhere
// (make before break).
type Wait struct {
	Action
	WaitingFor string // the server the instance moved to
}

// Observation is what the plan says of one desired instance.
type Observation struct {
	Instance *Desired
	Health   slum.InstanceHealth // when seen
	Message  string
	phase    phaseCode
	// Converged: what runs matches the desired state at
	// Instance.Generation.
	Converged bool
}

func observation(d *Desired, phase slum.Phase, health slum.InstanceHealth, msg string, converged bool) Observation {
	return Observation{Instance: d, phase: phaseCodeOf(phase), Health: health, Message: msg, Converged: converged}
}

// Phase is where the instance is.
func (o Observation) Phase() slum.Phase { return o.phase.Phase() }

// phaseCode is a phase in a byte: a plan holds an observation of every
// instance (48 bytes, where the phase's word made it 64). 0 is no phase
// (an instance not observed); n is slum.Phases[n-1].
type phaseCode uint8

func phaseCodeOf(ph slum.Phase) phaseCode {
	if ph == "" {
		return 0
	}
	if i := slices.Index(slum.Phases, ph); i >= 0 {
		return phaseCode(i + 1)
	}
	return phaseCodeOf(slum.PhaseUnknown) // never: the planner's phases are slum's
}

func (c phaseCode) Phase() slum.Phase {
	if c == 0 {
		return ""
	}
	return slum.Phases[c-1]
}

// ServerReport is what the plan says of one server.
type ServerReport struct {
	ServerID     string
	Health       slum.HealthState
	Listed       bool
	Running      int      // copies listed
	Unmanaged    []string // running names slum did not place; never touched
	PendingStops int      // copies slum placed there that are to go
	Failover     slum.FailoverState
	Reason       string
}

// Serving is who serves one tenant. A plan holds one per tenant, so it is
// kept small (72 bytes): the serving copies and the spares are one slice,
// and the time is Unix nanoseconds (what a settle of seconds needs).
type Serving struct {
	Tenant string
	copies []slum.CopyRef // the serving copies (preferred first), then the spares
	Reason string         // why nothing serves, when nothing does
	since  int64          // when the serving copies last changed, Unix nanoseconds; 0: never
	serves int32          // how many of copies serve
	// Settling: nothing served the tenant yet, and it waits (since
	// Since, for at most servingSettle) for its preferred copy to come up
	// rather than have another copy serve and give way a moment later
	// (the order copies come up in is an accident). Once a copy serves,
	// it serves while it is up.
	Settling bool
}

// NewServing is tenant served by serving, with spares running beside
// them, since the time given.
func NewServing(tenant string, serving, spares []slum.CopyRef, since time.Time) Serving {
	s := Serving{Tenant: tenant, serves: int32(len(serving))}
	if len(serving)+len(spares) > 0 {
		s.copies = slices.Concat(serving, spares)
	}
	s.setSince(since)
	return s
}

// identical reports whether s and o are the same decision, to the time.
func (s *Serving) identical(o *Serving) bool {
	return s.Tenant == o.Tenant && s.Reason == o.Reason && s.since == o.since && s.serves == o.serves &&
		s.Settling == o.Settling && slices.Equal(s.copies, o.copies)
}

// Serving lists the copies that serve, preferred first.
func (s Serving) Serving() []slum.CopyRef { return s.copies[:s.serves:s.serves] }

// Spares lists the running copies that do not serve.
func (s Serving) Spares() []slum.CopyRef { return s.copies[s.serves:len(s.copies):len(s.copies)] }

// Since is when the serving copies last changed (zero: never).
func (s Serving) Since() time.Time {
	if s.since == 0 {
		return time.Time{}
	}
	return time.Unix(0, s.since)
}

func (s *Serving) setSince(t time.Time) {
	s.since = 0
	if !t.IsZero() {
		s.since = t.UnixNano()
	}
}

// Held is a part of the plan a safety rule holds back until the operator
// approves it once.
type Held struct {
	Kind        slum.HoldKind
	Fingerprint string
	Summary     string
	Stops       []Action          // withheld stops (mass-stop)
	Reschedules []slum.Reschedule // withheld failovers (partition)
	Servers     []string          // the servers concerned
}

// Unplaceable is an instance on a dead server that no healthy server can
// take now.
type Unplaceable struct {
	Instance slum.InstanceKey
	From     string
	Reason   string
}

// Plan is everything the controller should do and report after one look
// at the fleet: named result sets, in the manner of a scheduler.
type Plan struct {
	Revision int64 // of the desired state planned from
	At       time.Time

	Spawns []Action
	Stops  []Action
	Waits  []Wait
	// Record are ledger entries to write before the spawns are sent;
	// Forget those whose copies are confirmed gone.
	Record []slum.Placement
	Forget []slum.Placement
	// Reschedules move instances off dead servers (failover) or back
	// home (fail-back); the controller commits them to the desired state
	// and the next plan spawns the new copies.
	Reschedules []slum.Reschedule
	Unplaceable []Unplaceable
	// FailingOver lists the servers whose failover this plan starts.
	FailingOver []string
	// Relist names the servers to list again soon (RelistAfter), not at
	// the poll interval: a replicated tenant's copy there runs but is not
	// yet healthy, and is routed as soon as a list shows it healthy.
	Relist []string

	Held     []Held
	Approved []int64 // holds whose one-time approval this plan carries out

	// Observations has one entry per desired instance, in the order of
	// Fleet.Desired.
	Observations Chunked[Observation]
	Servers      []ServerReport   // in the order of the snapshot's servers
	Serving      Chunked[Serving] // in the order of the snapshot's tenants

	// parts are the per-server shares of the plan the next plan may reuse.
	parts []*part
}

// Counts summarises a plan for logs and dry runs.
func (p *Plan) Counts() (spawns, stops, waits, reschedules int) {
	return len(p.Spawns), len(p.Stops), len(p.Waits), len(p.Reschedules)
}

// withoutActions is a copy of the plan without its spawns, stops and
// placements to record, sharing the rest: what is kept of a plan once
// the executor holds its actions.
func (p *Plan) withoutActions() *Plan {
	k := *p
	k.Spawns, k.Stops, k.Record = nil, nil, nil
	return &k
}

// Idle reports whether the plan acts on nothing.
func (p *Plan) Idle() bool {
	return len(p.Spawns)+len(p.Stops)+len(p.Reschedules)+len(p.Record)+len(p.Forget) == 0
}

// Desired is a desired instance with its names worked out once per load of
// the desired state, not once per plan.
type Desired struct {
	*slum.Instance        // the snapshot's, shared
	Name           string // on tenement: process:tenant--instance
	Key            slum.InstanceKey
	Index          int // position in Fleet.Desired
	Srv            int // position of its server in the snapshot's servers
}

// NewDesired wraps a desired instance.
func NewDesired(in *slum.Instance) Desired {
	return Desired{Instance: in, Name: in.TenementName(), Key: in.Key()}
}

// planRoutes is a plan as the routes.Decision it makes.
type planRoutes struct{ p *Plan }

var _ routes.Decision = planRoutes{}

func (d planRoutes) Revision() int64          { return d.p.Revision }
func (d planRoutes) Servers() int             { return len(d.p.Servers) }
func (d planRoutes) Health(i int) slum.Health { return d.p.Servers[i].Health.Health }
func (d planRoutes) Tenants() int             { return d.p.Serving.Len() }
func (d planRoutes) Choice(i int) routes.Choice {
	s := d.p.Serving.At(i)
	return routes.Choice{Tenant: s.Tenant, Serving: s.Serving(), Spares: s.Spares(), Reason: s.Reason}
}

// routeTable builds the route table a plan on f implies.
func routeTable(f *Fleet, p *Plan) *routes.Table {
	return routes.Decided(f.Snapshot.Servers, f.Snapshot.Tenants, f.Snapshot.Instances, planRoutes{p})
}
