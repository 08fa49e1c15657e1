package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/observed"
)

// LedgerEntry is one copy slum placed on a server.
type LedgerEntry struct {
	TenantID   string
	InstanceID string
	// Touched is when slum last acted on the copy (recorded it, or a
	// spawn or stop of it finished): a list that started before then
	// cannot tell whether the copy is gone.
	Touched time.Time
}

// Ledger is what slum placed where: server → tenement name → entry.
type Ledger map[string]map[string]LedgerEntry

// Size counts the entries.
func (l Ledger) Size() int {
	n := 0
	for _, m := range l {
		n += len(m)
	}
	return n
}

// FailoverRecord is when a server's failover started.
type FailoverRecord struct {
	Server string
	At     time.Time
}

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
	Ledger   Ledger
	// Busy holds the keys (Action.Key) of actions queued or in flight:
	// their ledger entries are not forgotten meanwhile.
	Busy map[string]bool
	// Serving is who served each tenant after the previous plan: a copy
	// keeps serving while it can, so traffic does not flap.
	Serving   map[string]Serving
	Failovers []FailoverRecord // failovers started lately, for the rate limit
	Guard     Guard
}

// Planner turns an Input into a Plan. It is a pure function: no I/O, no
// clock, no state between calls. Every rule of the controller lives here.
type Planner struct{}

// Plan decides what to do.
func (Planner) Plan(in Input) *Plan {
	p := &planning{in: in, f: in.Fleet, set: in.Fleet.Settings, plan: &Plan{Revision: in.Fleet.Revision, At: in.Now},
		health: make(map[string]observed.HealthState, len(in.Fleet.Servers)),
		obs:    make(map[string]*Observation, in.Fleet.Instances)}
	p.classifyServers()
	p.failover()
	p.failback()
	for i := range p.f.Snapshot.Servers {
		p.diffServer(&p.f.Snapshot.Servers[i])
	}
	p.observeTheRest()
	p.serving()
	p.guardStops()
	p.sortResults()
	return p.plan
}

// planning is one run of Plan.
type planning struct {
	in     Input
	f      *Fleet
	set    desired.Settings
	plan   *Plan
	health map[string]observed.HealthState
	// dead lists the dead servers, by id; moving says which of them fail
	// over in this plan, held which are held back and why.
	dead    []string
	moving  map[string]bool
	held    map[string]string
	obs     map[string]*Observation // by instance key
	reports map[string]*ServerReport
	placer  *desired.Placer
}

func (p *planning) state(server string) observed.HealthState {
	if s := p.in.Observed[server]; s != nil {
		return s.Health
	}
	return observed.HealthState{Health: observed.HealthUnknown}
}

// listed returns the server's snapshot when it can be acted on: its last
// list succeeded and it is not dead.
func (p *planning) listed(server string) *observed.Snapshot {
	s := p.in.Observed[server]
	if s == nil || !s.Listed || s.Health.Health == observed.HealthDead {
		return nil
	}
	return s
}

// fit says why a server takes no new instances now, or "".
func (p *planning) fit(s *desired.Server) string {
	h := p.health[s.ID]
	switch {
	case h.Health != observed.HealthOnline:
		return string(h.Health)
	case !h.LastDead.IsZero() && p.in.Now.Sub(h.LastDead) < p.set.StableAfter:
		return fmt.Sprintf("dead %s ago (stable_after %s)", p.in.Now.Sub(h.LastDead).Round(time.Second), p.set.StableAfter)
	}
	return ""
}

func (p *planning) classifyServers() {
	p.reports = make(map[string]*ServerReport, len(p.f.Servers))
	p.placer = desired.NewPlacer()
	for i := range p.f.Snapshot.Servers {
		s := &p.f.Snapshot.Servers[i]
		h := p.state(s.ID)
		p.health[s.ID] = h
		r := &ServerReport{ServerID: s.ID, Health: h}
		if snap := p.in.Observed[s.ID]; snap != nil {
			r.Listed, r.Running = snap.Listed, len(snap.Instances)
		}
		p.reports[s.ID] = r
		if h.Health == observed.HealthDead {
			p.dead = append(p.dead, s.ID)
		}
		p.placer.AddServer(*s, p.fit(s))
	}
	for i := range p.f.Snapshot.Instances {
		p.placer.Take(p.f.Snapshot.Instances[i])
	}
}

// movable reports whether an instance on a dead server fails over.
func (p *planning) movable(d *Desired) bool {
	t := p.f.Tenants[d.TenantID]
	return d.DesiredState == desired.StateRunning && t != nil && t.Failover == desired.FailoverMove
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
//     not recently dead, room, never beside another copy of the tenant's
//     process, the tenant's region first), or is unplaceable until one
//     can take it.
func (p *planning) failover() {
	p.moving, p.held = map[string]bool{}, map[string]string{}
	if len(p.dead) == 0 {
		return
	}
	partitioned, summary := p.partition()
	var withheld []desired.Reschedule
	heldAny := false
	recent := map[string]bool{}
	for _, r := range p.in.Failovers {
		if p.in.Now.Sub(r.At) < time.Minute {
			recent[r.Server] = true
		}
	}
	budget := p.set.FailoverRate - len(recent)
	away := map[string]int{} // dead server → its instances already elsewhere
	for i := range p.f.Snapshot.Instances {
		if in := &p.f.Snapshot.Instances[i]; in.FailedOver() {
			away[in.HomeServerID]++
		}
	}
	for _, id := range p.dead {
		if n := away[id]; n > 0 {
			p.reports[id].Failover = desired.FailoverDone
			p.reports[id].Reason = fmt.Sprintf("%d of its instances run elsewhere", n)
		}
		var movable []*Desired
		for i := range p.f.ByServer[id] {
			if d := &p.f.ByServer[id][i]; p.movable(d) {
				movable = append(movable, d)
			}
		}
		report := p.reports[id]
		switch {
		case len(movable) == 0:
			continue
		case partitioned[id]:
			// Work out what would move, for the operator to judge.
			rs, _ := p.place(id, movable, false)
			withheld = append(withheld, rs...)
			heldAny = true
			report.Failover, report.Reason = desired.FailoverHeld, summary
			p.held[id] = "failover held: " + summary
			continue
		case !recent[id] && budget <= 0:
			why := fmt.Sprintf("failover waits: %d servers failed over in the last minute (failover_rate %d)", len(recent), p.set.FailoverRate)
			report.Failover, report.Reason = desired.FailoverHeld, why
			p.held[id] = why
			continue
		case !recent[id]:
			budget--
			p.plan.FailingOver = append(p.plan.FailingOver, id)
		}
		p.moving[id] = true
		rs, unplaceable := p.place(id, movable, true)
		p.plan.Reschedules = append(p.plan.Reschedules, rs...)
		report.Failover = desired.FailoverDone
		report.Reason = fmt.Sprintf("%d of its instances run elsewhere", away[id]+len(rs))
		if unplaceable > 0 {
			report.Reason += fmt.Sprintf(", %d cannot be placed", unplaceable)
		}
	}
	if heldAny {
		h := Held{Kind: desired.HoldPartition, Summary: summary, Reschedules: withheld}
		for id := range partitioned {
			h.Servers = append(h.Servers, id)
		}
		sort.Strings(h.Servers)
		h.Fingerprint = fingerprint(h.Servers)
		p.plan.Held = append(p.plan.Held, h)
	}
}

// lost reports whether a server looks dead: it is, or it is missing
// probes on its way there. Servers failing together count together, even
// if their probes declare them dead a moment apart.
func (p *planning) lost(id string) bool {
	h := p.health[id].Health
	return h == observed.HealthDead || h == observed.HealthSuspect
}

// partition returns the dead servers whose failover a suspected
// partition holds back, and why. An approved hold of that exact set of
// servers lets them fail over.
func (p *planning) partition() (map[string]bool, string) {
	out := map[string]bool{}
	total := len(p.f.Servers)
	lost := 0
	for id := range p.f.Servers {
		if p.lost(id) {
			lost++
		}
	}
	frac := float64(lost) / float64(total)
	var why string
	if frac > p.set.PartitionFraction {
		for _, id := range p.dead {
			out[id] = true
		}
		why = fmt.Sprintf("%d of %d servers (%.0f%%) look dead at once, more than partition_fraction %.0f%%: assuming the controller is cut off, nothing fails over",
			lost, total, 100*frac, 100*p.set.PartitionFraction)
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
				all = all && p.lost(id)
			}
			if !all {
				continue
			}
			for _, id := range ids {
				if p.health[id].Health == observed.HealthDead {
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
	if id := p.f.Approved(desired.HoldPartition, fingerprint(ids)); id != 0 {
		p.plan.Approved = append(p.plan.Approved, id)
		return map[string]bool{}, ""
	}
	return out, why
}

// place finds a server for each instance of a dead server. With commit it
// takes the places in the placer and records unplaceable instances;
// without, it only reports where they would go.
func (p *planning) place(from string, ds []*Desired, commit bool) ([]desired.Reschedule, int) {
	var out []desired.Reschedule
	unplaceable := 0
	for _, d := range ds {
		region := ""
		if t := p.f.Tenants[d.TenantID]; t != nil {
			region = t.Region
		}
		to, err := p.placer.Place(d.TenantID, region, d.Process, d.MemoryMB, from)
		if err != nil {
			if commit {
				unplaceable++
				p.plan.Unplaceable = append(p.plan.Unplaceable, Unplaceable{Instance: d.Key, From: from, Reason: err.Error()})
				p.observe(d, desired.PhaseUnplaceable, "", fmt.Sprintf("server %s is dead and %s", from, strings.TrimPrefix(err.Error(), desired.ErrNoCapacity.Error()+": ")), false)
			}
			continue
		}
		if commit {
			moved := d.Instance
			moved.ServerID = to
			p.placer.Take(moved)
		}
		out = append(out, desired.Reschedule{TenantID: d.TenantID, InstanceID: d.ID, From: from, To: to,
			Generation: d.Generation, Reason: "server " + from + " is dead"})
		if commit {
			p.observe(d, desired.PhasePending, "", fmt.Sprintf("failing over: server %s is dead; placed on %s", from, to), false)
		}
	}
	return out, unplaceable
}

// failback returns failed-over instances home, make-before-break, when the
// fleet's failback policy is "return" and the home server has been healthy
// for FailbackAfter.
func (p *planning) failback() {
	if p.set.Failback != desired.FailbackReturn {
		return
	}
	for i := range p.f.Snapshot.Instances {
		in := &p.f.Snapshot.Instances[i]
		if !in.FailedOver() || in.DesiredState != desired.StateRunning {
			continue
		}
		home, ok := p.f.Servers[in.HomeServerID]
		d := p.f.ByKey[in.Key()]
		if !ok || d == nil || p.moving[in.ServerID] {
			continue
		}
		h := p.health[home.ID]
		if p.fit(home) != "" || p.in.Now.Sub(h.Since) < p.set.FailbackAfter {
			continue
		}
		// Only an instance that runs where it is now goes home: the
		// old copy is stopped once the new one runs.
		if snap := p.listed(in.ServerID); snap == nil {
			continue
		} else if _, running := snap.Running(d.Name); !running {
			continue
		}
		if p.placer.Fits(home.ID, in.TenantID, in.Process, in.MemoryMB) != nil {
			continue
		}
		moved := *in
		moved.ServerID = home.ID
		p.placer.Take(moved)
		p.plan.Reschedules = append(p.plan.Reschedules, desired.Reschedule{TenantID: in.TenantID, InstanceID: in.ID,
			From: in.ServerID, To: home.ID, Generation: in.Generation,
			Reason: fmt.Sprintf("fail-back: home server %s has been online for %s", home.ID, p.in.Now.Sub(h.Since).Round(time.Second))})
	}
}

func (p *planning) observe(d *Desired, phase desired.Phase, health, msg string, converged bool) {
	if _, done := p.obs[d.Key]; done {
		return
	}
	o := Observation{Instance: d, Phase: phase, Health: health, Message: msg, Converged: converged}
	p.plan.Observations = append(p.plan.Observations, o)
	p.obs[d.Key] = &p.plan.Observations[len(p.plan.Observations)-1]
}

// diffServer compares one listed server's desired instances with what it
// runs. Only copies in the ledger are ever stopped; anything else is
// reported as unmanaged. An absent on-demand instance is left to wake on
// request. A copy whose instance moved elsewhere is stopped once the new
// copy runs there, or at once when this server is back from the dead
// (fencing: its instance failed over).
func (p *planning) diffServer(s *desired.Server) {
	report := p.reports[s.ID]
	owned := p.in.Ledger[s.ID]
	ds := p.f.ByServer[s.ID]
	for name := range owned {
		if d, ok := p.f.ByKey[ledgerKey(owned[name])]; !ok || d.ServerID != s.ID || d.DesiredState != desired.StateRunning {
			report.PendingStops++
		}
	}
	snap := p.listed(s.ID)
	if snap == nil {
		return
	}
	running := snap.Instances
	want := make(map[string]bool, len(ds))
	for i := range ds {
		d := &ds[i]
		want[d.Name] = true
		health, present := running[d.Name]
		_, isOwned := owned[d.Name]
		if !isOwned && d.DesiredState == desired.StateRunning {
			p.plan.Record = append(p.plan.Record, desired.Placement{ServerID: s.ID, Name: d.Name, TenantID: d.TenantID, InstanceID: d.ID})
		}
		act := Action{ServerID: s.ID, Name: d.Name, Process: d.Process, ID: d.Name[len(d.Process)+1:],
			Instance: d.Key, Generation: d.Generation}
		switch {
		case present && d.DesiredState == desired.StateRunning:
			phase := desired.PhaseRunning
			if health == "failed" {
				phase = desired.PhaseFailed
			}
			p.observe(d, phase, health, "", true)
		case present && !isOwned:
			// Desired stopped, but slum never placed this copy: it is
			// not slum's to stop.
			p.observe(d, desired.PhaseRunning, health, "desired stopped, but slum did not start this copy: left alone", false)
			report.Unmanaged = append(report.Unmanaged, d.Name)
		case present:
			act.Kind, act.Reason = Stop, "desired state is stopped"
			p.plan.Stops = append(p.plan.Stops, act)
			p.observe(d, desired.PhasePending, health, "", false)
		case d.DesiredState == desired.StateStopped:
			p.observe(d, desired.PhaseStopped, "", "", true)
		case d.Mode == desired.ModeOnDemand:
			p.observe(d, desired.PhaseIdle, "", "", true)
		default:
			act.Kind, act.Reason = Spawn, "desired running and absent"
			if d.FailedOver() {
				act.Reason = "failed over from " + d.HomeServerID
			}
			p.plan.Spawns = append(p.plan.Spawns, act)
			p.observe(d, desired.PhasePending, "", act.Reason, false)
		}
	}
	for name := range running {
		if want[name] {
			continue
		}
		_, isOwned := owned[name]
		process, tenant, inst, ok := desired.ParseTenementName(name)
		if !isOwned || !ok {
			report.Unmanaged = append(report.Unmanaged, name)
			continue
		}
		key := tenant + ":" + inst
		act := Action{Kind: Stop, ServerID: s.ID, Name: name, Process: process, ID: desired.TenementID(tenant, inst), Instance: key}
		d, exists := p.f.ByKey[key]
		desiredElsewhere := exists && d.DesiredState == desired.StateRunning && d.ServerID != s.ID
		switch {
		case desiredElsewhere && p.fences(report.Health, d):
			act.Fence = true
			act.Reason = fmt.Sprintf("fencing: %s was dead and %s failed over to %s", s.ID, key, d.ServerID)
			p.plan.Stops = append(p.plan.Stops, act)
			report.Failover, report.Reason = desired.FailoverFencing, "stopping stale copies of instances that failed over"
		case desiredElsewhere && p.runsOn(d, d.ServerID):
			act.Reason = "moved to " + d.ServerID + ", where it runs"
			p.plan.Stops = append(p.plan.Stops, act)
		case desiredElsewhere:
			act.Reason = "moved to " + d.ServerID
			p.plan.Waits = append(p.plan.Waits, Wait{Action: act, WaitingFor: d.ServerID})
		default:
			switch {
			case !exists && p.f.Removed[key]:
				act.Reason = "removed"
			case !exists:
				// Gone from the desired state without a trace: what an
				// emptied or wrong database looks like.
				act.Reason, act.Guarded = "no longer desired", true
			case d.DesiredState == desired.StateStopped:
				act.Reason = "desired state is stopped"
			default:
				act.Reason = "replaced by " + d.Name
			}
			p.plan.Stops = append(p.plan.Stops, act)
		}
	}
	for name, e := range owned {
		if _, present := running[name]; present {
			continue
		}
		if d, ok := p.f.ByKey[ledgerKey(e)]; ok && d.ServerID == s.ID && d.DesiredState == desired.StateRunning {
			continue // a placement of the desired state: kept while it is desired here
		}
		if p.in.Busy[s.ID+"/"+name] || !snap.ListedAt.After(e.Touched) {
			continue // an action on it may not show in this list yet
		}
		p.plan.Forget = append(p.plan.Forget, desired.Placement{ServerID: s.ID, Name: name, TenantID: e.TenantID, InstanceID: e.InstanceID})
	}
}

func ledgerKey(e LedgerEntry) string { return e.TenantID + ":" + e.InstanceID }

// fences reports whether a copy of d on a server with health h is a stale
// copy to stop at once: the server died, and d was placed elsewhere before
// the server came back (its failover). Any other move waits until the new
// copy runs.
func (p *planning) fences(h observed.HealthState, d *Desired) bool {
	return !h.LastDead.IsZero() && h.Health == observed.HealthOnline && d.UpdatedAt.Before(h.Since)
}

// runsOn reports whether d's copy runs on server (or, on-demand, may wake
// there).
func (p *planning) runsOn(d *Desired, server string) bool {
	if d.Mode == desired.ModeOnDemand {
		return p.health[server].Health == observed.HealthOnline
	}
	snap := p.listed(server)
	if snap == nil {
		return false
	}
	_, ok := snap.Running(d.Name)
	return ok
}

// observeTheRest gives every instance not seen on a listed server its
// phase: down with its dead server, failing over, or unknown.
func (p *planning) observeTheRest() {
	for i := range p.f.Snapshot.Servers {
		s := &p.f.Snapshot.Servers[i]
		h := p.health[s.ID]
		for j := range p.f.ByServer[s.ID] {
			d := &p.f.ByServer[s.ID][j]
			switch {
			case d.DesiredState == desired.StateStopped && h.Health == observed.HealthDead:
				p.observe(d, desired.PhaseStopped, "", "", false)
			case h.Health == observed.HealthDead && p.held[s.ID] != "":
				p.observe(d, desired.PhaseDown, "", fmt.Sprintf("server %s is dead; %s", s.ID, p.held[s.ID]), false)
			case h.Health == observed.HealthDead && !p.movable(d):
				p.observe(d, desired.PhaseDown, "", fmt.Sprintf("server %s is dead; tenant %s's failover policy is none", s.ID, d.TenantID), false)
			case h.Health == observed.HealthDead:
				p.observe(d, desired.PhaseDown, "", "server "+s.ID+" is dead", false)
			default:
				msg := "server " + s.ID + " is " + string(h.Health)
				if snap := p.in.Observed[s.ID]; snap != nil && snap.ListErr != "" {
					msg += ": " + snap.ListErr
				} else if h.LastErr != "" {
					msg += ": " + h.LastErr
				}
				p.observe(d, desired.PhaseUnknown, "", msg, false)
			}
		}
	}
	for i := range p.plan.Observations {
		o := &p.plan.Observations[i]
		if o.Message == "" && o.Instance.FailedOver() {
			o.Message = "failed over from " + o.Instance.HomeServerID
		}
	}
}

// servingSettle is how long a serving copy chosen when nothing served yet
// gives way to a better-ranked copy that comes up.
const servingSettle = 10 * time.Second

// upCopy returns the copy of d that can take traffic now, if one can: the
// copy on its server, when that server is not dead and (as last listed)
// runs it; else, while a move waits for that copy, the old one. An
// on-demand copy wakes on request, so its server being up is enough.
func (p *planning) upCopy(d *Desired, waiting map[string]string) (desired.CopyRef, bool) {
	if d.DesiredState != desired.StateRunning {
		return desired.CopyRef{}, false
	}
	serves := func(server string) bool {
		switch p.health[server].Health {
		case observed.HealthOnline, observed.HealthSuspect:
		default:
			return false
		}
		if d.Mode == desired.ModeOnDemand && server == d.ServerID {
			return true
		}
		health, ok := p.in.Observed[server].Running(d.Name)
		return ok && health != "failed" && health != "unhealthy"
	}
	if serves(d.ServerID) {
		return desired.CopyRef{Instance: d.ID, Server: d.ServerID}, true
	}
	if old, ok := waiting[d.Key]; ok && serves(old) {
		return desired.CopyRef{Instance: d.ID, Server: old}, true
	}
	return desired.CopyRef{}, false
}

// serving decides who serves each tenant. With one serving copy, the
// copy that served keeps serving while it is up; otherwise the
// lowest-ranked copy that is up serves and the others are spares. With
// all, every copy that is up serves.
func (p *planning) serving() {
	waiting := make(map[string]string, len(p.plan.Waits))
	for _, w := range p.plan.Waits {
		waiting[w.Instance] = w.ServerID
	}
	p.plan.Serving = make([]Serving, 0, len(p.f.Snapshot.Tenants))
	for i := range p.f.Snapshot.Tenants {
		t := &p.f.Snapshot.Tenants[i]
		prev := p.in.Serving[t.ID]
		sv := Serving{Tenant: t.ID, Since: prev.Since, Settling: prev.Settling}
		var up []desired.CopyRef
		for _, d := range p.f.ByTenant[t.ID] {
			if c, ok := p.upCopy(d, waiting); ok {
				up = append(up, c)
			}
		}
		if t.Serving == desired.ServingAll {
			sv.Serving, sv.Settling = up, false
		} else if len(up) > 0 {
			first := -1
			if len(prev.Serving) > 0 {
				for j, c := range up {
					if c.Instance == prev.Serving[0].Instance {
						first = j
					}
				}
			}
			switch {
			case first < 0 && len(prev.Serving) == 0:
				first, sv.Settling = 0, true // nothing served yet
			case first < 0:
				first, sv.Settling = 0, false // the serving copy is lost: take over
			case sv.Settling && first > 0 && p.in.Now.Sub(prev.Since) < servingSettle:
				first = 0 // a better copy came up just after the start
			}
			if sv.Settling && p.in.Now.Sub(prev.Since) >= servingSettle && !prev.Since.IsZero() {
				sv.Settling = false
			}
			sv.Serving = []desired.CopyRef{up[first]}
			for j, c := range up {
				if j != first {
					sv.Spares = append(sv.Spares, c)
				}
			}
		}
		if !slices.Equal(sv.Serving, prev.Serving) {
			sv.Since = p.in.Now
		}
		if len(sv.Serving) == 0 {
			sv.Reason = p.whyNotServed(t.ID)
		}
		p.plan.Serving = append(p.plan.Serving, sv)
	}
}

func (p *planning) whyNotServed(tenant string) string {
	ds := p.f.ByTenant[tenant]
	if len(ds) == 0 {
		return "it has no instances"
	}
	stopped := true
	for _, d := range ds {
		if d.DesiredState != desired.StateRunning {
			continue
		}
		stopped = false
		if h := p.health[d.ServerID].Health; h != observed.HealthOnline && h != observed.HealthSuspect {
			return fmt.Sprintf("its server %s is %s", d.ServerID, h)
		}
	}
	if stopped {
		return "its instances are desired stopped"
	}
	return "no copy runs yet"
}

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
	if id := p.f.Approved(desired.HoldMassStop, fp); id != 0 {
		p.plan.Approved = append(p.plan.Approved, id)
		return
	}
	p.plan.Held = append(p.plan.Held, Held{Kind: desired.HoldMassStop, Fingerprint: fp, Stops: guarded,
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

func (p *planning) sortResults() {
	byKey := func(as []Action) {
		sort.Slice(as, func(i, j int) bool { return as[i].Key() < as[j].Key() })
	}
	byKey(p.plan.Spawns)
	byKey(p.plan.Stops)
	sort.Slice(p.plan.Waits, func(i, j int) bool { return p.plan.Waits[i].Key() < p.plan.Waits[j].Key() })
	sort.Slice(p.plan.Forget, func(i, j int) bool {
		a, b := p.plan.Forget[i], p.plan.Forget[j]
		return a.ServerID < b.ServerID || a.ServerID == b.ServerID && a.Name < b.Name
	})
	p.plan.Servers = make([]ServerReport, 0, len(p.f.Snapshot.Servers))
	for i := range p.f.Snapshot.Servers {
		r := p.reports[p.f.Snapshot.Servers[i].ID]
		sort.Strings(r.Unmanaged)
		p.plan.Servers = append(p.plan.Servers, *r)
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
