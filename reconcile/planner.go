package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/names"
	"github.com/slum-fleet/slum/observed"
)

// Guard is the mass-stop guard: a plan that would stop more than Fraction
// of the copies slum placed, and more than Floor, has those stops held
// until the operator approves them once.
type Guard struct {
	Fraction float64
	Floor    int
}

// Input is everything one plan is made from. Plan reads it and changes
// nothing in it.
type Input struct {
	Now      time.Time
	Fleet    *Fleet
	Observed map[string]*observed.Snapshot // by server; missing: never observed
	// Ledger is what slum placed and which actions are in flight (their
	// entries are not forgotten meanwhile).
	Ledger *Ledger
	// Serving is who served each tenant before, for the first plan (when
	// there is no Prev): a copy keeps serving while it can, so traffic
	// does not flap.
	Serving   map[string]Serving
	Failovers []FailoverRecord // failovers started lately, for the rate limit
	// DiedOn is the server an instance ran on when that server died, for
	// instances not running again since (nil: none): where a failover's
	// copy came from, which is not its home after a second failover.
	DiedOn func(slum.InstanceKey) (server string, ok bool)
	Guard  Guard
	// Prev is the previous plan, whose per-server shares are reused for
	// servers whose inputs did not change (see partKey): a fleet where
	// nothing happens is planned in time proportional to what changed,
	// not to its size. The result is the same as without it.
	Prev *Plan
}

// Planner turns an Input into a Plan. It is a pure function: no I/O, no
// clock, no state of its own (the previous plan is an input). Every rule
// of the controller lives here.
type Planner struct{}

// Plan decides what to do.
func (Planner) Plan(in Input) *Plan {
	f := in.Fleet
	p := &planning{in: in, f: f, set: f.Settings, plan: &Plan{Revision: f.Revision, At: in.Now},
		health: make([]slum.HealthState, len(f.Snapshot.Servers)), snaps: make([]*observed.Snapshot, len(f.Snapshot.Servers)),
		parts: make([]*part, len(f.Snapshot.Servers))}
	p.startObservations()
	p.classifyServers()
	p.failover()
	p.failback()
	for i := range f.Snapshot.Servers {
		p.diffServer(i)
	}
	p.observeTheRest()
	p.gather()
	p.serving()
	p.guardStops()
	for i, pt := range p.parts {
		if pt != nil && pt.awaitsWriter {
			p.plan.Relist = append(p.plan.Relist, f.Snapshot.Servers[i].ID)
		}
	}
	p.assemble()
	return p.plan
}

// planning is one run of Plan.
type planning struct {
	in     Input
	f      *Fleet
	set    slum.Settings
	plan   *Plan
	health []slum.HealthState   // by server position
	snaps  []*observed.Snapshot // by server position; nil: never observed
	// dead lists the dead servers, by id; moving says which of them fail
	// over in this plan, held which are held back and why.
	dead   []string
	moving map[string]bool
	held   map[string]string
	// obs is by instance position: what this plan observed of each
	// instance, once seen says so. At the same revision it starts as the
	// previous plan's arrays, each shared until an observation in it
	// differs: a plan of a fleet where nothing happens allocates no
	// observations, one where a few things do an array of chunkLen for
	// each.
	obs     *chunkedWriter[Observation]
	seen    []uint64 // bit per instance position
	reports []*ServerReport
	parts   []*part
	reused  int // parts taken from the previous plan
	placer  *desired.Placer
	away    map[string]int // see awayFrom
	// prevServing is the previous plan's serving copies by tenant, made
	// when first needed.
	prevServing map[string][]slum.CopyRef
}

// part is the share of a plan that depends on one listed server alone. A
// quiet part (nothing to do there) is kept with the plan; the next plan
// reuses it while the server's inputs are the same.
type part struct {
	key    partKey
	spawns []Action
	stops  []Action
	waits  []Wait
	record []slum.Placement
	forget []slum.Placement
	report ServerReport
	quiet  bool
	// awaitsWriter: a replicated tenant's copy here runs but is not yet
	// healthy (it waits for the old writer's lease, or restores): the
	// server is listed again soon, so it is routed once it is.
	awaitsWriter bool
}

// partKey is everything a quiet part is made from: the desired state (its
// revision), the server's listed instances (its snapshot's content), its
// ledger entries and actions in flight (the ledger's version of it, which
// every change of them moves) and its health. A part with anything to do
// also reads other servers (where a moved copy runs, who serves it): such
// a part is never reused.
type partKey struct {
	revision int64
	seq      uint64 // the content of the server's snapshot
	ledger   uint64
	health   healthKey
}

// healthKey is what of a server's health its share of a plan depends on
// (not when it last answered, which changes with every probe).
type healthKey struct {
	health   slum.Health
	since    time.Time
	lastDead time.Time
}

func keyOf(h slum.HealthState) healthKey {
	return healthKey{health: h.Health, since: h.Since, lastDead: h.LastDead}
}

func (p *planning) key(i int) partKey {
	id := p.f.Snapshot.Servers[i].ID
	k := partKey{revision: p.f.Revision, ledger: p.in.Ledger.version(id), health: keyOf(p.health[i])}
	if s := p.snaps[i]; s != nil {
		k.seq = s.Content
	}
	return k
}

// listed returns the server's snapshot when it can be acted on: its last
// list succeeded and it is not dead.
func (p *planning) listed(i int) *observed.Snapshot {
	s := p.snaps[i]
	if s == nil || !s.Listed || s.Health.Health == slum.HealthDead {
		return nil
	}
	return s
}

func (p *planning) healthOf(server string) slum.HealthState {
	if i, ok := p.f.ServerIndex[server]; ok {
		return p.health[i]
	}
	return slum.HealthState{Health: slum.HealthUnknown}
}

// fit says why a server takes no new instances now, or "".
func (p *planning) fit(i int) string {
	if h := p.health[i]; h.Health != slum.HealthOnline {
		return string(h.Health)
	}
	return ""
}

// wary reports whether a server online now is a last choice for new
// instances: it came back less than stable_after ago from an outage that
// made slum move instances away from it (it may waver again). A server
// back from an outage that moved nothing (a partition held, a blip) is
// trusted as before.
func (p *planning) wary(i int) bool {
	h := p.health[i]
	return h.Health == slum.HealthOnline && !h.LastDead.IsZero() && p.in.Now.Sub(h.Since) < p.set.StableAfter &&
		p.awayFrom()[p.f.Snapshot.Servers[i].ID] > 0
}

// awayFrom counts, per server, its instances that failed over and run
// elsewhere; made on first use.
func (p *planning) awayFrom() map[string]int {
	if p.away == nil {
		p.away = map[string]int{}
		for i := range p.f.Snapshot.Instances {
			if in := &p.f.Snapshot.Instances[i]; in.FailedOver() {
				p.away[in.HomeServerID]++
			}
		}
	}
	return p.away
}

func (p *planning) classifyServers() {
	p.reports = make([]*ServerReport, len(p.f.Snapshot.Servers))
	for i := range p.f.Snapshot.Servers {
		s := &p.f.Snapshot.Servers[i]
		h := slum.HealthState{Health: slum.HealthUnknown}
		if snap := p.in.Observed[s.ID]; snap != nil {
			h = snap.Health
			p.snaps[i] = snap
		}
		p.health[i] = h
		r := &ServerReport{ServerID: s.ID, Health: h}
		if snap := p.snaps[i]; snap != nil {
			r.Listed, r.Running = snap.Listed, len(snap.Instances)
		}
		p.reports[i] = r
		if h.Health == slum.HealthDead {
			p.dead = append(p.dead, s.ID)
		}
	}
}

// placement returns the placer, built on first use: only failover and
// fail-back place instances.
func (p *planning) placement() *desired.Placer {
	if p.placer == nil {
		p.placer = desired.NewPlacer()
		for i := range p.f.Snapshot.Servers {
			p.placer.AddServer(p.f.Snapshot.Servers[i], p.fit(i))
			if p.wary(i) {
				p.placer.SetWary(p.f.Snapshot.Servers[i].ID)
			}
		}
		for i := range p.f.Snapshot.Instances {
			p.placer.Take(p.f.Snapshot.Instances[i])
		}
	}
	return p.placer
}

// movable reports whether an instance on a dead server fails over.
func (p *planning) movable(d *Desired) bool {
	t := p.f.Tenant(d.TenantID)
	return d.DesiredState == slum.StateRunning && t != nil && t.Failover == slum.FailoverMove
}

// failover decides, for every dead server, whether its instances move now,
// and where.
//
// Rules, in order:
//   - Partition: when more than PartitionFraction of the servers are dead,
//     or every server of a region of two or more, the controller assumes
//     it is the one cut off and moves nothing, until the operator approves
//     that exact set of dead servers once.
//   - Rate: at most FailoverRate servers start failing over a minute.
//   - Each movable instance is placed on a fit server (online, active,
//     room, never beside another copy of the tenant's process; the
//     tenant's region first, then servers not back lately from an outage
//     that moved instances, see wary), or is unplaceable until one can
//     take it: stable_after orders the choice, it never leaves an
//     instance down that an online server can take.
func (p *planning) failover() {
	p.moving, p.held = map[string]bool{}, map[string]string{}
	if len(p.dead) == 0 {
		return
	}
	partitioned, summary := p.partition()
	var withheld []slum.Reschedule
	heldAny := false
	recent := map[string]bool{}
	for _, r := range p.in.Failovers {
		if p.in.Now.Sub(r.At) < time.Minute {
			recent[r.Server] = true
		}
	}
	budget := p.set.FailoverRate - len(recent)
	away := p.awayFrom() // dead server → its instances already elsewhere
	for _, id := range p.dead {
		si := p.f.ServerIndex[id]
		report := p.reports[si]
		if n := away[id]; n > 0 {
			report.Failover = slum.FailoverDone
			report.Reason = fmt.Sprintf("%d of its instances run elsewhere", n)
		}
		var movable []*Desired
		for _, di := range p.f.OnServer[si] {
			if d := &p.f.Desired[di]; p.movable(d) {
				movable = append(movable, d)
			}
		}
		switch {
		case len(movable) == 0:
			continue
		case partitioned[id]:
			// Work out what would move, for the operator to judge.
			rs, _ := p.place(id, movable, false)
			withheld = append(withheld, rs...)
			heldAny = true
			report.Failover, report.Reason = slum.FailoverHeld, summary
			p.held[id] = "failover held: " + summary
			continue
		case !recent[id] && budget <= 0:
			why := fmt.Sprintf("failover waits: %d servers failed over in the last minute (failover_rate %d)", len(recent), p.set.FailoverRate)
			report.Failover, report.Reason = slum.FailoverHeld, why
			p.held[id] = why
			continue
		case !recent[id]:
			budget--
			p.plan.FailingOver = append(p.plan.FailingOver, id)
		}
		p.moving[id] = true
		rs, unplaceable := p.place(id, movable, true)
		p.plan.Reschedules = append(p.plan.Reschedules, rs...)
		report.Failover = slum.FailoverDone
		report.Reason = fmt.Sprintf("%d of its instances run elsewhere", away[id]+len(rs))
		if unplaceable > 0 {
			report.Reason += fmt.Sprintf(", %d cannot be placed", unplaceable)
		}
	}
	if heldAny {
		h := Held{Kind: slum.HoldPartition, Summary: summary, Reschedules: withheld}
		for id := range partitioned {
			h.Servers = append(h.Servers, id)
		}
		sort.Strings(h.Servers)
		h.Fingerprint = fingerprint(h.Servers)
		p.plan.Held = append(p.plan.Held, h)
	}
}

// lost reports whether a server counts as lost together with the servers
// dead now, the first of which died at firstDead: it is dead, or missing
// probes on its way there (servers failing together count together, even
// if their probes declare them dead a moment apart), or it came back less
// than stable_after ago from an outage that overlapped theirs. A partition
// heals server by server: the last servers still cut off are not failed
// over for being few.
func (p *planning) lost(id string, firstDead time.Time) bool {
	h := p.healthOf(id)
	switch h.Health {
	case slum.HealthDead, slum.HealthSuspect:
		return true
	case slum.HealthOnline:
		return !h.LastDead.IsZero() && h.Since.After(firstDead) && p.in.Now.Sub(h.Since) < p.set.StableAfter
	}
	return false
}

// firstDead is when the first of the servers dead now died.
func (p *planning) firstDead() time.Time {
	var first time.Time
	for _, id := range p.dead {
		h := p.healthOf(id)
		at := h.LastDead
		if at.IsZero() {
			at = h.Since
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first
}

// partition returns the dead servers whose failover a suspected
// partition holds back, and why. An approved hold of that exact set of
// servers lets them fail over.
func (p *planning) partition() (map[string]bool, string) {
	out := map[string]bool{}
	total := len(p.f.Servers)
	lost, back := 0, 0
	first := p.firstDead()
	for id := range p.f.Servers {
		if p.lost(id, first) {
			lost++
			if h := p.healthOf(id).Health; h == slum.HealthOnline {
				back++
			}
		}
	}
	frac := float64(lost) / float64(total)
	var why string
	if frac > p.set.PartitionFraction {
		for _, id := range p.dead {
			out[id] = true
		}
		healing := ""
		if back > 0 {
			healing = fmt.Sprintf(" (%d of them came back less than stable_after %s ago)", back, p.set.StableAfter)
		}
		why = fmt.Sprintf("%d of %d servers (%.0f%%) look dead at once%s, more than partition_fraction %.0f%%: assuming the controller is cut off, nothing fails over",
			lost, total, 100*frac, healing, 100*p.set.PartitionFraction)
	} else {
		byRegion := map[string][]string{}
		for i := range p.f.Snapshot.Servers {
			s := &p.f.Snapshot.Servers[i]
			if s.Region != "" {
				byRegion[s.Region] = append(byRegion[s.Region], s.ID)
			}
		}
		regions := make([]string, 0, len(byRegion))
		for r := range byRegion {
			regions = append(regions, r)
		}
		sort.Strings(regions)
		for _, r := range regions {
			ids := byRegion[r]
			all := len(ids) >= 2
			for _, id := range ids {
				all = all && p.lost(id, first)
			}
			if !all {
				continue
			}
			for _, id := range ids {
				if p.healthOf(id).Health == slum.HealthDead {
					out[id] = true
				}
			}
			if why != "" {
				why += "; "
			}
			why += fmt.Sprintf("all %d servers of region %s look dead at once: assuming the controller is cut off from it, nothing there fails over", len(ids), r)
		}
	}
	if len(out) == 0 {
		return out, ""
	}
	ids := make([]string, 0, len(out))
	for id := range out {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if id := p.f.Approved(slum.HoldPartition, fingerprint(ids)); id != 0 {
		p.plan.Approved = append(p.plan.Approved, id)
		return map[string]bool{}, ""
	}
	return out, why
}

// place finds a server for each instance of a dead server. With commit it
// takes the places in the placer and records unplaceable instances;
// without, it only reports where they would go.
func (p *planning) place(from string, ds []*Desired, commit bool) ([]slum.Reschedule, int) {
	var out []slum.Reschedule
	unplaceable := 0
	for _, d := range ds {
		region := ""
		if t := p.f.Tenant(d.TenantID); t != nil {
			region = t.Region
		}
		to, err := p.placement().Place(d.TenantID, region, d.Process, d.MemoryMB, from)
		if err != nil {
			if commit {
				unplaceable++
				p.plan.Unplaceable = append(p.plan.Unplaceable, Unplaceable{Instance: d.Key, From: from, Reason: err.Error()})
				p.observe(d, slum.PhaseUnplaceable, "", fmt.Sprintf("server %s is dead and %s", from, strings.TrimPrefix(err.Error(), slum.ErrNoCapacity.Error()+": ")), false)
			}
			continue
		}
		if commit {
			moved := *d.Instance // a copy: the snapshot is shared
			moved.ServerID = to
			p.placement().Take(moved)
		}
		out = append(out, slum.Reschedule{TenantID: d.TenantID, InstanceID: d.ID, From: from, To: to,
			Generation: d.Generation, Reason: "server " + from + " is dead"})
		if commit {
			p.observe(d, slum.PhasePending, "", fmt.Sprintf("failing over: server %s is dead; placed on %s", from, to), false)
		}
	}
	return out, unplaceable
}

// failback returns failed-over instances home, make-before-break, when the
// fleet's failback policy is "return" and the home server has been healthy
// for FailbackAfter.
func (p *planning) failback() {
	if p.set.Failback != slum.FailbackReturn {
		return
	}
	for i := range p.f.Snapshot.Instances {
		in := &p.f.Snapshot.Instances[i]
		if !in.FailedOver() || in.DesiredState != slum.StateRunning {
			continue
		}
		hi, ok := p.f.ServerIndex[in.HomeServerID]
		d := &p.f.Desired[i]
		if !ok || p.moving[in.ServerID] {
			continue
		}
		h := p.health[hi]
		if p.fit(hi) != "" || p.wary(hi) || p.in.Now.Sub(h.Since) < p.set.FailbackAfter {
			continue
		}
		// Only an instance that runs where it is now goes home: the
		// old copy is stopped once the new one runs.
		if snap := p.listed(d.Srv); snap == nil {
			continue
		} else if _, running := snap.Running(d.Name); !running {
			continue
		}
		home := &p.f.Snapshot.Servers[hi]
		if p.placement().Fits(home.ID, in.TenantID, in.Process, in.MemoryMB) != nil {
			continue
		}
		moved := *in
		moved.ServerID = home.ID
		p.placement().Take(moved)
		p.plan.Reschedules = append(p.plan.Reschedules, slum.Reschedule{TenantID: in.TenantID, InstanceID: in.ID,
			From: in.ServerID, To: home.ID, Generation: in.Generation,
			Reason: fmt.Sprintf("fail-back: home server %s has been online for %s", home.ID, p.in.Now.Sub(h.Since).Round(time.Second))})
	}
}

func (p *planning) observe(d *Desired, phase slum.Phase, health slum.InstanceHealth, msg string, converged bool) {
	if p.observed(d.Index) {
		return // the first word on an instance stands
	}
	if msg == "" && d.FailedOver() {
		msg = "failed over from " + d.HomeServerID
	}
	p.setObservation(d.Index, observation(d, phase, health, msg, converged))
}

// startObservations shares the previous plan's observations when they
// are of this plan's fleet (the same revision, the same instances).
func (p *planning) startObservations() {
	n := len(p.f.Desired)
	p.seen = make([]uint64, (n+63)/64)
	if prev := p.in.Prev; prev != nil && n > 0 && prev.Revision == p.f.Revision && prev.Observations.Len() == n &&
		prev.Observations.At(0).Instance == &p.f.Desired[0] {
		p.obs = sharingChunked(prev.Observations)
		return
	}
	p.obs = newChunkedWriter[Observation](n)
}

// observed reports whether this plan has its word on instance i.
func (p *planning) observed(i int) bool { return p.seen[i/64]&(1<<(i%64)) != 0 }

// setObservation is this plan's word on instance i; a shared array is
// copied before it is first written to differ.
func (p *planning) setObservation(i int, o Observation) {
	p.seen[i/64] |= 1 << (i % 64)
	if p.obs.shared(i) && *p.obs.get(i) == o {
		return
	}
	*p.obs.at(i) = o
}

// diffServer compares one listed server's desired instances with what it
// runs. Only copies in the ledger are ever stopped; anything else is
// reported as unmanaged. An absent on-demand instance is left to wake on
// request. A copy whose instance moved elsewhere is stopped once the new
// copy runs there, or at once when this server is back from the dead
// (fencing: its instance failed over). A quiet server whose inputs did not
// change since the previous plan keeps its share of that plan.
func (p *planning) diffServer(si int) {
	s := &p.f.Snapshot.Servers[si]
	report := p.reports[si]
	owned := p.in.Ledger.Owned(s.ID)
	snap := p.listed(si)
	if snap == nil {
		report.PendingStops = p.pendingStops(s.ID, owned)
		return
	}
	key := p.key(si)
	if prev := p.in.Prev; prev != nil && si < len(prev.parts) && prev.Revision == p.f.Revision && prev.Observations.Len() == len(p.f.Desired) {
		if pt := prev.parts[si]; pt != nil && pt.quiet && pt.key == key {
			p.take(si, pt, prev)
			p.reused++
			return
		}
	}
	pt := &part{key: key}
	p.parts[si] = pt
	if missing := len(p.f.OnServer[si]) - len(snap.Instances); missing > 16 {
		// A server filling up: room for its spawns at once.
		pt.spawns = make([]Action, 0, missing)
		pt.record = make([]slum.Placement, 0, missing)
	}
	p.diffDesired(si, pt, snap.Instances, owned)
	p.diffRunning(si, pt, snap.Instances, owned)
	waitsForList := p.forgettable(si, pt, snap, owned)
	// Spawns come in the snapshot's order; the rest from maps: sort them,
	// so that plans are the same for the same inputs.
	sort.Slice(pt.stops, func(i, j int) bool { return pt.stops[i].Name < pt.stops[j].Name })
	sort.Slice(pt.waits, func(i, j int) bool { return pt.waits[i].Name < pt.waits[j].Name })
	sort.Slice(pt.forget, func(i, j int) bool { return pt.forget[i].Name < pt.forget[j].Name })
	pt.quiet = !waitsForList && !pt.awaitsWriter && len(pt.spawns)+len(pt.stops)+len(pt.waits)+len(pt.record)+len(pt.forget) == 0
	if pt.quiet {
		sort.Strings(report.Unmanaged)
		pt.report = *report
	}
}

// diffDesired compares the instances desired on a server with what it
// runs: placements to record, spawns, stops of what is desired stopped.
func (p *planning) diffDesired(si int, pt *part, running map[string]slum.InstanceHealth, owned map[string]LedgerEntry) {
	s := &p.f.Snapshot.Servers[si]
	report := p.reports[si]
	for _, di := range p.f.OnServer[si] {
		d := &p.f.Desired[di]
		health, present := running[d.Name]
		_, isOwned := owned[d.Name]
		if !isOwned && d.DesiredState == slum.StateRunning {
			pt.record = append(pt.record, slum.Placement{ServerID: s.ID, Name: d.Name, TenantID: d.TenantID, InstanceID: d.ID})
		}
		act := Action{ServerID: s.ID, Name: d.Name, Instance: d.Key, Generation: d.Generation}
		switch {
		case present && d.DesiredState == slum.StateRunning:
			if t := p.f.Tenant(d.TenantID); t != nil && t.Data == slum.DataReplicated && health != slum.InstanceHealthy {
				pt.awaitsWriter = true
			}
			phase := slum.PhaseRunning
			if health == slum.InstanceFailed {
				phase = slum.PhaseFailed
			}
			p.observe(d, phase, health, "", true)
		case present && !isOwned:
			// Desired stopped, but slum never placed this copy: it is
			// not slum's to stop.
			p.observe(d, slum.PhaseRunning, health, "desired stopped, but slum did not start this copy: left alone", false)
			report.Unmanaged = append(report.Unmanaged, d.Name)
		case present:
			act.Kind, act.Reason = Stop, "desired state is stopped"
			pt.stops = append(pt.stops, act)
			p.observe(d, slum.PhasePending, health, "", false)
		case d.DesiredState == slum.StateStopped:
			p.observe(d, slum.PhaseStopped, "", "", true)
		case d.Mode == slum.ModeOnDemand:
			p.observe(d, slum.PhaseIdle, "", "", true)
		default:
			act.Kind, act.Reason = Spawn, "desired running and absent"
			msg := ""
			if d.FailedOver() && !isOwned {
				// Its first copy here: a failover's. A copy slum placed
				// here before that is gone (tenement restarted, say) is
				// only respawned.
				from := d.HomeServerID
				if p.in.DiedOn != nil {
					if s, ok := p.in.DiedOn(d.Key); ok {
						from = s
					}
				}
				act.Reason = "failed over from " + from
				msg = act.Reason
			}
			pt.spawns = append(pt.spawns, act)
			p.observe(d, slum.PhasePending, "", msg, false)
		}
	}
}

// diffRunning decides what becomes of the copies a server runs that are
// not desired there: stale copies of a failover are fenced, old copies of
// a move stop once the new one runs and serves, copies slum placed that
// are no longer wanted stop, and copies it did not place are left alone.
func (p *planning) diffRunning(si int, pt *part, running map[string]slum.InstanceHealth, owned map[string]LedgerEntry) {
	s := &p.f.Snapshot.Servers[si]
	report := p.reports[si]
	for name := range running {
		if d, ok := p.f.Named(name); ok && d.ServerID == s.ID {
			continue
		}
		_, isOwned := owned[name]
		_, tenant, inst, ok := names.ParseTenementName(name)
		if !isOwned || !ok {
			report.Unmanaged = append(report.Unmanaged, name)
			continue
		}
		key := slum.KeyOf(tenant, inst)
		act := Action{Kind: Stop, ServerID: s.ID, Name: name, Instance: key}
		d, exists := p.f.Instance(key)
		desiredElsewhere := exists && d.DesiredState == slum.StateRunning && d.ServerID != s.ID
		switch {
		case desiredElsewhere && p.fences(report.Health, d):
			act.Fence = true
			act.Reason = fmt.Sprintf("fencing: %s was dead and %s failed over to %s", s.ID, key, d.ServerID)
			pt.stops = append(pt.stops, act)
			report.Failover, report.Reason = slum.FailoverFencing, "stopping stale copies of instances that failed over"
		case desiredElsewhere && p.runsOn(d, d.Srv) && !p.servedFrom(d, s.ID):
			act.Reason = "moved to " + d.ServerID + ", where it runs"
			pt.stops = append(pt.stops, act)
		case desiredElsewhere && p.runsOn(d, d.Srv):
			// The new copy runs, but traffic still comes here: the routers
			// follow this plan first, the old copy stops in the next.
			act.Reason = "moved to " + d.ServerID + ", where it runs; routing it there first"
			pt.waits = append(pt.waits, Wait{Action: act, WaitingFor: d.ServerID})
		case desiredElsewhere:
			act.Reason = "moved to " + d.ServerID
			pt.waits = append(pt.waits, Wait{Action: act, WaitingFor: d.ServerID})
		default:
			act.Reason, act.Guarded = p.whyStop(d, exists, key)
			pt.stops = append(pt.stops, act)
		}
	}
}

// whyStop says why a copy slum placed that is desired nowhere else stops,
// and whether the mass-stop guard weighs it.
func (p *planning) whyStop(d *Desired, exists bool, key slum.InstanceKey) (string, bool) {
	switch {
	case !exists && p.f.Removed[key]:
		return "removed", false
	case !exists:
		// Gone from the desired state without a trace: what an emptied
		// or wrong database looks like.
		return "no longer desired", true
	case d.DesiredState == slum.StateStopped:
		return "desired state is stopped", false
	default:
		return "replaced by " + d.Name, false
	}
}

// forgettable forgets the placements on a server that are no longer
// desired there and gone from its list; it reports whether some may still
// be acted on (an action in flight, or touched after the list began), so
// the part waits for the next list.
func (p *planning) forgettable(si int, pt *part, snap *observed.Snapshot, owned map[string]LedgerEntry) (waitsForList bool) {
	s := &p.f.Snapshot.Servers[si]
	report := p.reports[si]
	for name, e := range owned {
		if d, ok := p.f.Named(name); ok && d.ServerID == s.ID && d.DesiredState == slum.StateRunning {
			continue // a placement of the desired state: kept while it is desired here
		}
		report.PendingStops++
		if _, present := snap.Instances[name]; present {
			continue
		}
		if p.in.Ledger.Busy(s.ID, name) || !snap.ListedAt.After(p.in.Ledger.Touched(e)) {
			waitsForList = true
			continue // an action on it may not show in this list yet
		}
		_, tenant, inst, _ := names.ParseTenementName(name)
		pt.forget = append(pt.forget, slum.Placement{ServerID: s.ID, Name: name, TenantID: tenant, InstanceID: inst})
	}
	return waitsForList
}

// pendingStops counts the copies slum placed on a server that are to go.
func (p *planning) pendingStops(server string, owned map[string]LedgerEntry) int {
	n := 0
	for name := range owned {
		if d, ok := p.f.Named(name); !ok || d.ServerID != server || d.DesiredState != slum.StateRunning {
			n++
		}
	}
	return n
}

// take reuses a quiet part of the previous plan, prev, of the same
// revision: its instances' observations are prev's (a quiet part's
// server has its word on each of its instances, and the first word on an
// instance stands).
func (p *planning) take(si int, pt *part, prev *Plan) {
	p.parts[si] = pt
	r := pt.report
	r.Health = p.health[si] // its latest probes, which do not change the part
	*p.reports[si] = r
	for _, di := range p.f.OnServer[si] {
		o := *prev.Observations.At(int(di))
		o.Instance = &p.f.Desired[di]
		if !p.observed(int(di)) {
			p.setObservation(int(di), o)
		}
	}
}

// fences reports whether a copy of d on a server with health h is a stale
// copy to stop at once: the server died, and d was placed elsewhere before
// the server came back (its failover). Any other move waits until the new
// copy runs.
func (p *planning) fences(h slum.HealthState, d *Desired) bool {
	return !h.LastDead.IsZero() && h.Health == slum.HealthOnline && d.UpdatedAt.Before(h.Since)
}

// servedFrom reports whether the previous plan had d's copy on server
// serve its tenant.
func (p *planning) servedFrom(d *Desired, server string) bool {
	var prev []slum.CopyRef
	if pp := p.in.Prev; pp != nil {
		if p.prevServing == nil {
			p.prevServing = make(map[string][]slum.CopyRef, pp.Serving.Len())
			for _, sv := range pp.Serving.All() {
				p.prevServing[sv.Tenant] = sv.Serving()
			}
		}
		prev = p.prevServing[d.TenantID]
	} else {
		prev = p.in.Serving[d.TenantID].Serving()
	}
	return slices.Contains(prev, slum.CopyRef{Instance: d.ID, Server: server})
}

// runsOn reports whether d's copy runs on the server at position si (or,
// on-demand, may wake there).
func (p *planning) runsOn(d *Desired, si int) bool {
	if d.Mode == slum.ModeOnDemand {
		return p.health[si].Health == slum.HealthOnline
	}
	_, ok := p.listed(si).Running(d.Name)
	return ok
}

// observeTheRest gives every instance not seen on a listed server its
// phase: down with its dead server, failing over, or unknown.
func (p *planning) observeTheRest() {
	for si := range p.f.Snapshot.Servers {
		if p.listed(si) != nil {
			continue
		}
		s := &p.f.Snapshot.Servers[si]
		h := p.health[si]
		for _, di := range p.f.OnServer[si] {
			d := &p.f.Desired[di]
			switch {
			case d.DesiredState == slum.StateStopped && h.Health == slum.HealthDead:
				p.observe(d, slum.PhaseStopped, "", "", false)
			case h.Health == slum.HealthDead && p.held[s.ID] != "":
				p.observe(d, slum.PhaseDown, "", fmt.Sprintf("server %s is dead; %s", s.ID, p.held[s.ID]), false)
			case h.Health == slum.HealthDead && !p.movable(d):
				p.observe(d, slum.PhaseDown, "", fmt.Sprintf("server %s is dead; tenant %s's failover policy is none", s.ID, d.TenantID), false)
			case h.Health == slum.HealthDead:
				p.observe(d, slum.PhaseDown, "", "server "+s.ID+" is dead", false)
			default:
				msg := "server " + s.ID + " is " + string(h.Health)
				if snap := p.snaps[si]; snap != nil && snap.ListErr != "" {
					msg += ": " + snap.ListErr
				} else if h.LastErr != "" {
					msg += ": " + h.LastErr
				}
				p.observe(d, slum.PhaseUnknown, "", msg, false)
			}
		}
	}
}

// servingSettle is how long a tenant nothing served yet waits for its
// preferred copy to come up while another copy is up already.
const servingSettle = 10 * time.Second

// servingCopy picks, with one serving copy, the position in up of the
// copy that serves: the one that served while it is up, else (the one
// that served is lost) the best ranked up. When nothing served yet, the
// preferred copy serves from the start: while it is on its way (pending
// on a server online now) for less than servingSettle, nothing serves
// (-1), rather than another copy serving and giving way to it a moment
// later.
func (p *planning) servingCopy(ds []*Desired, up []slum.CopyRef, prev Serving) int {
	if prev.serves > 0 {
		for j, c := range up {
			if c.Instance == prev.copies[0].Instance {
				return j
			}
		}
		return 0
	}
	pref := preferred(ds)
	if pref == nil || up[0].Instance == pref.ID {
		return 0
	}
	// Since has no monotonic reading: a wall clock stepped back ends
	// the wait rather than stretching it.
	d := p.in.Now.Sub(prev.Since())
	waited := prev.Settling && (d < 0 || d >= servingSettle)
	coming := p.health[pref.Srv].Health == slum.HealthOnline && p.obs.get(pref.Index).Phase() == slum.PhasePending
	if coming && !waited {
		return -1
	}
	return 0
}

// preferred is the best ranked of a tenant's instances (in rank order)
// desired running, or nil.
func preferred(ds []*Desired) *Desired {
	for _, d := range ds {
		if d.DesiredState == slum.StateRunning {
			return d
		}
	}
	return nil
}

// upCopy returns the copy of d that can take traffic now, if one can: the
// copy on its server, when that server is not dead and (as last listed)
// runs it; else, while a move waits for that copy, the old one. An
// on-demand copy wakes on request, so its server being up is enough.
func (p *planning) upCopy(d *Desired, waiting map[slum.InstanceKey]string, replicated bool) (slum.CopyRef, bool) {
	if d.DesiredState != slum.StateRunning {
		return slum.CopyRef{}, false
	}
	up := func(si int) bool {
		h := p.health[si].Health
		return h == slum.HealthOnline || h == slum.HealthSuspect
	}
	if up(d.Srv) {
		if d.Mode == slum.ModeOnDemand {
			return slum.CopyRef{Instance: d.ID, Server: d.ServerID}, true
		}
		// The copy on its own server, as this plan observed it (or as
		// last listed, while its server cannot be listed).
		o := *p.obs.get(d.Index)
		phase := o.Phase()
		health, running := o.Health, phase == slum.PhaseRunning || phase == slum.PhaseFailed
		if phase == slum.PhaseUnknown {
			health, running = p.snaps[d.Srv].Running(d.Name)
		}
		if running && servesData(health, replicated) {
			return slum.CopyRef{Instance: d.ID, Server: d.ServerID}, true
		}
	}
	if len(waiting) == 0 {
		return slum.CopyRef{}, false
	}
	if old, ok := waiting[d.Key]; ok {
		if si, ok := p.f.ServerIndex[old]; ok && up(si) {
			if health, ok := p.snaps[si].Running(d.Name); ok && servesData(health, replicated) {
				return slum.CopyRef{Instance: d.ID, Server: old}, true
			}
		}
	}
	return slum.CopyRef{}, false
}

// notRestarting drops from a tenant's copies that are up those a rolling
// restart restarts now, unless none other is up: a copy about to restart
// serves only as the last one.
func (p *planning) notRestarting(tenant string, up []slum.CopyRef) []slum.CopyRef {
	if len(p.f.Snapshot.Restarting) == 0 {
		return up
	}
	restarting := func(c slum.CopyRef) bool {
		return slices.Contains(p.f.Snapshot.Restarting, slum.KeyOf(tenant, c.Instance))
	}
	if !slices.ContainsFunc(up, func(c slum.CopyRef) bool { return !restarting(c) }) {
		return up
	}
	return slices.DeleteFunc(up, restarting)
}

// serving decides who serves each tenant. With one serving copy, the
// copy that served keeps serving while it is up; otherwise the
// lowest-ranked copy that is up serves and the others are spares. With
// all, every copy that is up serves. When nothing its decisions depend on
// changed since the previous plan, that plan's decisions stand.
func (p *planning) serving() {
	if prev := p.in.Prev; prev != nil && p.reused == len(p.f.Snapshot.Servers) && prev.Revision == p.f.Revision &&
		prev.Serving.Len() == len(p.f.Snapshot.Tenants) && !prev.settling() {
		p.plan.Serving = prev.Serving
		return
	}
	var waiting map[slum.InstanceKey]string
	for _, pt := range p.parts {
		if pt == nil {
			continue
		}
		for _, w := range pt.waits {
			if waiting == nil {
				waiting = map[slum.InstanceKey]string{}
			}
			waiting[w.Instance] = w.ServerID
		}
	}
	// Who served before: the previous plan's decisions, by position when
	// the tenants are the same, else by tenant. By position, a decision
	// the same as before stays the previous plan's, in an array shared
	// with it.
	pp := p.in.Prev
	aligned := pp != nil && pp.Revision == p.f.Revision && pp.Serving.Len() == len(p.f.Snapshot.Tenants)
	prevServing := p.in.Serving
	var out *chunkedWriter[Serving]
	if aligned {
		out = sharingChunked(pp.Serving)
	} else {
		out = newChunkedWriter[Serving](len(p.f.Snapshot.Tenants))
		if pp != nil {
			prevServing = make(map[string]Serving, pp.Serving.Len())
			for _, sv := range pp.Serving.All() {
				prevServing[sv.Tenant] = *sv
			}
		}
	}
	var up, copies []slum.CopyRef
	for i := range p.f.Snapshot.Tenants {
		t := &p.f.Snapshot.Tenants[i]
		var prev Serving
		if aligned {
			prev = *pp.Serving.At(i)
		} else {
			prev = prevServing[t.ID]
		}
		sv := Serving{Tenant: t.ID, since: prev.since}
		up = up[:0]
		ds := p.f.InstancesAt(i)
		for _, d := range ds {
			if c, ok := p.upCopy(d, waiting, t.Data == slum.DataReplicated); ok {
				up = append(up, c)
			}
		}
		up = p.notRestarting(t.ID, up)
		// copies: the serving ones, then the spares.
		copies = copies[:0]
		serves := 0
		switch {
		case t.Serving == slum.ServingAll:
			copies, serves = append(copies, up...), len(up)
		case len(up) > 0:
			first := p.servingCopy(ds, up, prev)
			if first < 0 {
				// Nothing served yet and the preferred copy is on its way:
				// it serves from the start, nothing flips once it is up.
				sv.Settling = true
				if !prev.Settling {
					sv.setSince(p.in.Now)
				}
				break
			}
			copies, serves = append(copies, up[first]), 1
			for j, c := range up {
				if j != first {
					copies = append(copies, c)
				}
			}
		}
		sv.serves = int32(serves)
		// The same decision as before shares the previous slice: no
		// allocation per tenant per plan in a quiet fleet.
		if int(prev.serves) == serves && slices.Equal(copies, prev.copies) {
			sv.copies = prev.copies
		} else if len(copies) > 0 {
			sv.copies = slices.Clone(copies)
		}
		if !slices.Equal(sv.Serving(), prev.Serving()) {
			sv.setSince(p.in.Now)
		}
		switch {
		case sv.Settling:
			sv.Reason = fmt.Sprintf("waiting up to %s for its preferred copy %s to come up", servingSettle, preferred(ds).ID)
		case serves == 0:
			sv.Reason = p.whyNotServed(t, ds)
		}
		if !aligned || !sv.identical(&prev) {
			*out.at(i) = sv
		}
	}
	p.plan.Serving = out.done()
}

// servesData reports whether a running copy in this health may take
// traffic. A replicated tenant's copy must be healthy: its guard answers
// nothing until it holds the replica's lease and has restored the newest
// database, so a copy tenement has not yet seen healthy (unknown) may be
// one still waiting for the old writer, or restoring. Any other copy
// serves unless it is being restarted or given up on.
func servesData(h slum.InstanceHealth, replicated bool) bool {
	if replicated {
		return h == slum.InstanceHealthy
	}
	return h.Serves()
}

// settling reports whether any tenant's serving copy may still give way
// to a better one.
func (pl *Plan) settling() bool {
	for _, s := range pl.Serving.All() {
		if s.Settling {
			return true
		}
	}
	return false
}

// whyNotServed says why nothing serves t, whose instances are ds.
func (p *planning) whyNotServed(t *slum.Tenant, ds []*Desired) string {
	if len(ds) == 0 {
		return "it has no instances"
	}
	stopped := true
	for _, d := range ds {
		if d.DesiredState != slum.StateRunning {
			continue
		}
		stopped = false
		if h := p.health[d.Srv].Health; h != slum.HealthOnline && h != slum.HealthSuspect {
			return fmt.Sprintf("its server %s is %s", d.ServerID, h)
		}
	}
	if stopped {
		return "its instances are desired stopped"
	}
	if t.Data == slum.DataReplicated && p.anyListed(ds) {
		return ReasonWaitingForWriter
	}
	return reasonNoCopyYet
}

// ReasonWaitingForWriter is why a replicated tenant whose copy runs is not
// served yet: its guard waits for the old writer's lease to lapse or be
// released, or restores the newest database.
const ReasonWaitingForWriter = "waiting for its writer: a copy runs but has not yet taken the replica's lease and restored"

// anyListed reports whether a server lists a copy of one of ds.
func (p *planning) anyListed(ds []*Desired) bool {
	for _, d := range ds {
		if _, ok := p.snaps[d.Srv].Running(d.Name); ok {
			return true
		}
	}
	return false
}

// reasonNoCopyYet is why a tenant whose copies are on their way is not
// served: the one reason the reporter need not write down.
const reasonNoCopyYet = "no copy runs yet"

// guardStops holds back the stops that would remove more of the fleet than
// the mass-stop guard allows, unless the operator approved that exact set
// once.
func (p *planning) guardStops() {
	var guarded []Action
	for _, a := range p.plan.Stops {
		if a.Guarded {
			guarded = append(guarded, a)
		}
	}
	placed := p.in.Ledger.Size()
	g := p.in.Guard
	if len(guarded) <= g.Floor || float64(len(guarded)) <= g.Fraction*float64(placed) {
		return
	}
	keys := make([]string, len(guarded))
	for i, a := range guarded {
		keys[i] = a.Key()
	}
	sort.Strings(keys)
	fp := fingerprint(keys)
	if id := p.f.Approved(slum.HoldMassStop, fp); id != 0 {
		p.plan.Approved = append(p.plan.Approved, id)
		return
	}
	p.plan.Held = append(p.plan.Held, Held{Kind: slum.HoldMassStop, Fingerprint: fp, Stops: guarded,
		Summary: fmt.Sprintf("refused to stop %d of the %d instances slum placed (more than %.0f%%, max_stop_fraction): an emptied or wrong database must not empty the fleet",
			len(guarded), placed, 100*g.Fraction)})
	kept := p.plan.Stops[:0]
	for _, a := range p.plan.Stops {
		if !a.Guarded {
			kept = append(kept, a)
		}
	}
	p.plan.Stops = kept
}

// assemble gathers the per-server shares into the plan's sets.
func (p *planning) assemble() {
	p.plan.Observations = p.obs.done()
	// A share with work in it is never reused; the next plan only asks
	// whether it had any. Its actions are in the plan's sets: the share
	// is not kept alive twice (at 100,000 spawns, 20 MB per plan held).
	busy := &part{}
	for i, pt := range p.parts {
		if pt != nil && !pt.quiet {
			p.parts[i] = busy
		}
	}
	p.plan.parts = p.parts
	p.plan.Servers = make([]ServerReport, len(p.reports))
	for i, r := range p.reports {
		sort.Strings(r.Unmanaged)
		p.plan.Servers[i] = *r
	}
}

// gather collects the actions of every server's share, in server order.
func (p *planning) gather() {
	// Sized first: a fleet converging from empty gathers 100,000 spawns,
	// and growing the slices by appending would allocate several times
	// that.
	var spawns, stops, waits, record, forget int
	for _, pt := range p.parts {
		if pt == nil || pt.quiet {
			continue
		}
		spawns, stops, waits = spawns+len(pt.spawns), stops+len(pt.stops), waits+len(pt.waits)
		record, forget = record+len(pt.record), forget+len(pt.forget)
	}
	p.plan.Spawns = slices.Grow(p.plan.Spawns, spawns)
	p.plan.Stops = slices.Grow(p.plan.Stops, stops)
	p.plan.Waits = slices.Grow(p.plan.Waits, waits)
	p.plan.Record = slices.Grow(p.plan.Record, record)
	p.plan.Forget = slices.Grow(p.plan.Forget, forget)
	for _, pt := range p.parts {
		if pt == nil || pt.quiet {
			continue
		}
		p.plan.Spawns = append(p.plan.Spawns, pt.spawns...)
		p.plan.Stops = append(p.plan.Stops, pt.stops...)
		p.plan.Waits = append(p.plan.Waits, pt.waits...)
		p.plan.Record = append(p.plan.Record, pt.record...)
		p.plan.Forget = append(p.plan.Forget, pt.forget...)
	}
}

// fingerprint names a set of keys.
func fingerprint(keys []string) string {
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
