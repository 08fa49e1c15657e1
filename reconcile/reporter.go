package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/clock"
)

// ReportStore is what the reporter needs of the desired state.
type ReportStore interface {
	// WriteReport must not keep r's slices once it returns: the reporter
	// writes its next part from the same arrays.
	WriteReport(ctx context.Context, f slum.Fence, r slum.Report) error
	SyncHolds(ctx context.Context, f slum.Fence, specs []slum.HoldSpec) ([]slum.Hold, error)
	FinishHold(ctx context.Context, f slum.Fence, id int64) error
}

// Update is what the controller hands the reporter after a plan: values
// the reporter may keep, never modified by anyone afterwards.
type Update struct {
	Fleet *Fleet
	Plan  *Plan
	// Items are the executor's states of instances with a history
	// (attempts, errors, parked), by instance key.
	Items  map[slum.InstanceKey]ItemState
	Events eventLog
	Forget []slum.Placement
	Finish []int64 // approved holds carried out
}

// absorb merges a later update into u: the later plan and items win,
// events, forgotten placements and finished holds add up.
func (u *Update) absorb(later Update) {
	if later.Plan != nil {
		u.Fleet, u.Plan = later.Fleet, later.Plan
	}
	if later.Items != nil {
		u.Items = later.Items
	}
	u.Events.absorb(later.Events)
	u.Forget = append(u.Forget, later.Forget...)
	u.Finish = append(u.Finish, later.Finish...)
}

// serverHeartbeat: a server's status is rewritten at least this often, so
// readers can tell a controller that reports from one that stopped.
const serverHeartbeat = 10 * time.Second

// Reporter writes what the controller observed and decided: instance,
// server and tenant status, events, forgotten placements and holds, in
// batches, under the controller's lease. It owns what it remembers having
// written and writes only changes.
type Reporter struct {
	store ReportStore
	fence slum.Fence
	clock clock.Clock
	log   *slog.Logger
	every time.Duration

	// The mailbox: updates submitted and not yet taken, merged, so a slow
	// write never queues up plans (only the newest plan matters).
	mu      sync.Mutex
	pending *Update
	urgent  bool
	wake    chan struct{}

	// Owned by Run (or by the caller of Merge and Flush, in manual mode).
	fleet *Fleet
	plan  *Plan
	items map[slum.InstanceKey]ItemState
	// itemsDirty: items changed since the last write, so every status is
	// worked out again.
	itemsDirty bool
	events     eventLog
	forget     []slum.Placement
	finish     []int64
	memo       map[slum.InstanceKey]memo // what was last written
	servers    map[string]serverMemo
	tenants    map[string]tenantMemo
	holds      string // fingerprint of the hold specs last synced
	written    writtenPlan
	// part is the arrays and maps one part of a flush is built in, reused
	// from part to part: a converging 100,000-instance fleet allocated
	// ~150 MB of them anew, a seventh of all the controller allocated.
	part reportPart
}

// reportPart is one part of a flush being built: the rows to write and
// what the reporter will remember of them once they are written.
type reportPart struct {
	instances  []slum.InstanceStatus
	tenants    []slum.TenantStatus
	memo       map[slum.InstanceKey]memo
	tenantMemo map[string]tenantMemo
	servers    map[string]serverMemo
}

// start returns an empty report on the part's arrays, and empties its
// maps.
func (p *reportPart) start() slum.Report {
	if p.memo == nil {
		p.memo, p.tenantMemo, p.servers = map[slum.InstanceKey]memo{}, map[string]tenantMemo{}, map[string]serverMemo{}
	}
	clear(p.memo)
	clear(p.tenantMemo)
	clear(p.servers)
	return slum.Report{Instances: p.instances[:0], Tenants: p.tenants[:0]}
}

// keep takes back a written report's arrays for the next part, dropping
// what their rows pointed to (a plan's serving copies, messages).
func (p *reportPart) keep(rep *slum.Report) {
	clear(rep.Instances)
	clear(rep.Tenants)
	p.instances, p.tenants = rep.Instances[:0], rep.Tenants[:0]
}

// writtenPlan is what the reporter keeps of the plan it last wrote: which
// plan it was, and the parts the next flush compares with, not the whole
// plan (its actions, at 100,000 spawns ~20 MB, are the executor's then).
// It keeps none of them alive: a plan the controller has let go of, and
// whose arrays no newer plan shares, is not worth its memory (a plan's
// observations and serving decisions are ~12 MB at 100,000 instances);
// the next flush then compares with what the memo says was written.
type writtenPlan struct {
	plan         weak.Pointer[Plan]
	revision     int64
	observations weakChunked[Observation]
	serving      weakChunked[Serving]
}

func (w *writtenPlan) is(p *Plan) bool { return w.plan == weak.Make(p) }

type memo struct {
	hash   uint64
	obsGen int64
}

// tenantMemo is what was last written of a tenant: who served it (for the
// event when that changes) and a digest of the rest.
type tenantMemo struct {
	serving []slum.CopyRef
	hash    uint64
}

type serverMemo struct {
	st slum.ServerStatus
	at time.Time
}

// NewReporter returns a reporter writing under fence.
func NewReporter(store ReportStore, fence slum.Fence, clk clock.Clock, log *slog.Logger, every time.Duration) *Reporter {
	return &Reporter{store: store, fence: fence, clock: clk, log: log, every: every,
		wake: make(chan struct{}, 1), memo: map[slum.InstanceKey]memo{}, servers: map[string]serverMemo{},
		tenants: map[string]tenantMemo{}, holds: "unsynced"}
}

// Seed tells the reporter what the status table holds, before its first
// write: it then writes only what differs (a restarted controller does not
// rewrite a large fleet's status), and drops rows of instances that are
// gone.
func (r *Reporter) Seed(sts []slum.InstanceStatus) {
	for _, st := range sts {
		st.UpdatedAt = time.Time{}
		r.memo[st.Key()] = memo{hash: statusHash(st), obsGen: st.ObservedGeneration}
	}
}

// SeedTenants tells the reporter what the tenant status table holds,
// before its first write: a restarted controller then rewrites only the
// tenants whose serving copies changed, not every tenant of the fleet.
func (r *Reporter) SeedTenants(sts []slum.TenantStatus) {
	for _, st := range sts {
		s := NewServing(st.TenantID, st.Serving, st.Spares, time.Time{})
		s.Reason = st.Reason
		r.tenants[st.TenantID] = tenantMemo{serving: st.Serving, hash: servingHash(s)}
	}
}

// Submit hands an update to a running reporter; urgent asks for a write
// at once (who serves a tenant changed: routers and readers of the
// database should know now, not at the next tick). It never blocks: an
// update not yet taken is merged with this one.
func (r *Reporter) Submit(u Update, urgent bool) {
	r.mu.Lock()
	if r.pending == nil {
		r.pending = &u
	} else {
		r.pending.absorb(u)
	}
	r.urgent = r.urgent || urgent
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// take empties the mailbox.
func (r *Reporter) take() (u *Update, urgent bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, urgent = r.pending, r.urgent
	r.pending, r.urgent = nil, false
	return u, urgent
}

// Run writes reports until ctx ends, then writes what is left and returns
// the error that stopped it: ErrFenced wrapped when another controller
// took the lease.
func (r *Reporter) Run(ctx context.Context) error {
	t := r.clock.NewTicker(r.every)
	defer t.Stop()
	// A flush that took long is followed by as long a pause: writing a
	// large fleet's status never takes more than half the reporter's time,
	// nor the database's write lock. Small fleets flush at once.
	var rest <-chan time.Time
	var restUntil time.Time
	due := false
	for {
		select {
		case <-ctx.Done():
			if u, _ := r.take(); u != nil {
				r.Merge(*u)
			}
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return r.Flush(fctx)
		case <-r.wake:
			u, urgent := r.take()
			if u != nil {
				r.Merge(*u)
			}
			due = due || urgent
		case <-t.C():
			if u, _ := r.take(); u != nil {
				r.Merge(*u)
			}
			due = true
		case <-rest:
			rest = nil
		}
		if !due || rest != nil {
			continue
		}
		if wait := restUntil.Sub(r.clock.Now()); wait > 0 {
			rest = r.clock.After(wait)
			continue
		}
		due = false
		if u, _ := r.take(); u != nil {
			r.Merge(*u)
		}
		start := r.clock.Now()
		err := r.Flush(ctx)
		took := r.clock.Now().Sub(start)
		restUntil = r.clock.Now().Add(min(took, maxRest))
		if errors.Is(err, slum.ErrFenced) {
			return err
		}
	}
}

// maxRest bounds the pause after a slow flush.
const maxRest = 5 * time.Second

// Merge takes an update into what is to be written.
func (r *Reporter) Merge(u Update) {
	if u.Plan != nil {
		r.fleet, r.plan = u.Fleet, u.Plan
	}
	if u.Items != nil {
		if !maps.Equal(r.items, u.Items) {
			r.itemsDirty = true
		}
		r.items = u.Items
	}
	r.events.absorb(u.Events)
	r.forget = append(r.forget, u.Forget...)
	r.finish = append(r.finish, u.Finish...)
}

// reportRows bounds the instance and tenant status rows of one write. A
// large fleet's status is written in parts, each its own fenced
// transaction, so a flush holds one part's rows at a time: one report of a
// converging 100,000-instance fleet held ~70 MB (rows, their database
// arguments and what was written), a third of the controller's heap.
const reportRows = 4096

// statusCursor is where a flush is in its pass over a plan's observations
// and serving decisions.
type statusCursor struct {
	obs, serving int
	obsDone      bool
	servingDone  bool
}

func (c *statusCursor) done() bool { return c.obsDone && c.servingDone }

// Flush writes what changed since the last successful write, in fenced
// transactions of at most reportRows status rows each (plus one for holds
// when they changed). What fails to be written is kept for the next flush.
func (r *Reporter) Flush(ctx context.Context) error {
	now := r.clock.Now()
	holdsKey, holdSpecs := r.holds, []slum.HoldSpec(nil)
	if r.plan != nil {
		holdSpecs, holdsKey = holdSpecsOf(r.plan)
	}
	if holdsKey != r.holds {
		if _, err := r.store.SyncHolds(ctx, r.fence, holdSpecs); err != nil {
			return r.failed(ctx, "record held plans", err)
		}
		r.holds = holdsKey
	}
	for len(r.finish) > 0 {
		if err := r.store.FinishHold(ctx, r.fence, r.finish[0]); err != nil {
			return r.failed(ctx, "mark an approved plan carried out", err)
		}
		r.finish = r.finish[1:]
	}
	// The plan last written, with the same items, says nothing new of
	// instances and tenants (a flush every tick between plans of a large
	// fleet).
	var cur statusCursor
	if r.plan == nil || r.written.is(r.plan) && !r.itemsDirty {
		cur = statusCursor{obsDone: true, servingDone: true}
	}
	for part := 0; ; part++ {
		rep := r.part.start()
		newMemo, newServers, newTenants := r.part.memo, r.part.servers, r.part.tenantMemo
		// Who serves whom first: routers reading the database wait for
		// it, not for every instance's row.
		if !cur.servingDone {
			r.tenantStatus(now, &rep, newTenants, &cur, reportRows)
		}
		if cur.servingDone && !cur.obsDone {
			r.instanceStatus(now, &rep, newMemo, &cur, reportRows-len(rep.Tenants))
		}
		if part == 0 {
			if r.plan != nil {
				r.serverStatus(now, &rep, newServers)
			}
			rep.Events = append(rep.Events, r.events.written(now)...)
			// In the order they happened, so that their ids are too: the
			// serving changes this flush found come before the
			// controller's events (a server declared dead) that caused
			// them, but happened after.
			slices.SortStableFunc(rep.Events, func(a, b slum.Event) int { return a.At.Compare(b.At) })
			rep.Forget = r.forget
		}
		wstart := r.clock.Now()
		if err := r.store.WriteReport(ctx, r.fence, rep); err != nil {
			if part > 0 {
				// The parts written are in the memo and the database,
				// and no longer match the plan last written whole: the
				// next flush compares with the memo alone (a plan that
				// went back to that one would otherwise skip them).
				r.written = writtenPlan{}
			}
			r.part.keep(&rep)
			return r.failed(ctx, "write status", err)
		}
		if n := len(rep.Instances) + len(rep.Tenants) + len(rep.Servers); n > 0 {
			r.log.Debug("status written", "part", part, "instances", len(rep.Instances), "tenants", len(rep.Tenants),
				"servers", len(rep.Servers), "events", len(rep.Events), "took", r.clock.Now().Sub(now), "writing", r.clock.Now().Sub(wstart))
		}
		r.remember(&rep, newMemo, newServers, newTenants)
		r.part.keep(&rep)
		if part == 0 {
			r.events, r.forget = eventLog{}, nil
		}
		if cur.done() {
			break
		}
	}
	if r.plan != nil {
		r.written = writtenPlan{plan: weak.Make(r.plan), revision: r.plan.Revision,
			observations: weakChunkedOf(r.plan.Observations), serving: weakChunkedOf(r.plan.Serving)}
		r.itemsDirty = false
	}
	return nil
}

// remember takes in what a report wrote, and only that.
func (r *Reporter) remember(rep *slum.Report, instances map[slum.InstanceKey]memo, servers map[string]serverMemo, tenants map[string]tenantMemo) {
	for k, m := range instances {
		r.memo[k] = m
	}
	for _, key := range rep.DropInstances {
		delete(r.memo, key)
	}
	for k, m := range servers {
		r.servers[k] = m
	}
	for _, id := range rep.DropServers {
		delete(r.servers, id)
	}
	for k, t := range tenants {
		r.tenants[k] = t
	}
	for _, id := range rep.DropTenants {
		delete(r.tenants, id)
	}
}

func (r *Reporter) failed(ctx context.Context, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		// Stopping: the last flush, on a context of its own, writes it.
	case errors.Is(err, slum.ErrFenced):
		r.log.Error("another controller holds the lease: stopping", "err", err)
	default:
		r.log.Error("cannot "+what+"; retrying at the next flush", "err", err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// instanceStatus adds the status rows of observations that changed, from
// the cursor on, at most room of them; at the end of the plan it adds the
// drops of instances that left the fleet.
func (r *Reporter) instanceStatus(now time.Time, rep *slum.Report, out map[slum.InstanceKey]memo, cur *statusCursor, room int) {
	// Against the last plan written, at the same revision, an unchanged
	// observation is an unchanged status: most of a large fleet, most of
	// the time. An array the plan shares with that plan is unchanged
	// whole.
	obs := r.plan.Observations
	w := &r.written
	written := besideWritten(obs, w.observations, !r.itemsDirty && w.revision == r.plan.Revision && w.observations.of(obs))
	for ; cur.obs < obs.Len(); cur.obs++ {
		if len(rep.Instances) >= room {
			return
		}
		i := cur.obs
		until, last := written.at(i)
		if until > i {
			cur.obs = until - 1
			continue
		}
		o := obs.At(i)
		if last != nil && *o == *last {
			continue
		}
		d := o.Instance
		m := r.memo[d.Key]
		if o.Converged {
			m.obsGen = d.Generation
		}
		st := slum.InstanceStatus{TenantID: d.TenantID, InstanceID: d.ID, ServerID: d.ServerID, Phase: o.Phase(),
			Health: o.Health, Message: o.Message, ObservedGeneration: m.obsGen}
		if it, ok := r.items[d.Key]; ok {
			st.Attempts, st.LastError = it.Attempts, it.LastErr
			if it.Parked && o.Phase() == slum.PhasePending {
				st.Phase = slum.PhaseFailed
			}
		}
		h := statusHash(st)
		if h == m.hash || m.hash == 0 && st == (slum.InstanceStatus{TenantID: d.TenantID, InstanceID: d.ID, ServerID: d.ServerID, Phase: slum.PhasePending}) {
			// Unchanged; or pending with nothing to say and no row yet,
			// which reads as pending anyway.
			continue
		}
		m.hash = h
		out[d.Key] = m
		st.UpdatedAt = now
		rep.Instances = append(rep.Instances, st)
	}
	cur.obsDone = true
	if w.revision == r.plan.Revision && w.observations.of(obs) {
		return // same revision: no instance left
	}
	for k := range r.memo {
		if _, ok := r.fleet.Instance(k); !ok {
			rep.DropInstances = append(rep.DropInstances, k)
		}
	}
}

func (r *Reporter) serverStatus(now time.Time, rep *slum.Report, out map[string]serverMemo) {
	for _, s := range r.plan.Servers {
		st := slum.ServerStatus{ServerID: s.ServerID, Health: s.Health.Health, HealthSince: s.Health.Since,
			LastError: s.Health.LastErr, ConsecutiveFailures: int64(s.Health.Failures), LastSeenAt: s.Health.LastSeen,
			Listed: s.Listed, Instances: int64(s.Running), Unmanaged: int64(len(s.Unmanaged)), PendingStops: int64(s.PendingStops),
			Failover: s.Failover, FailoverReason: s.Reason}
		prev, ok := r.servers[s.ServerID]
		if ok && prev.st == st && now.Sub(prev.at) < serverHeartbeat {
			continue
		}
		out[s.ServerID] = serverMemo{st: st, at: now}
		st.UpdatedAt = now
		rep.Servers = append(rep.Servers, st)
	}
	for id := range r.servers {
		if _, ok := r.fleet.Servers[id]; !ok {
			rep.DropServers = append(rep.DropServers, id)
		}
	}
}

// tenantStatus adds the status rows of tenants whose serving changed,
// from the cursor on, at most room of them; at the end of the plan it adds
// the drops of tenants that left the fleet.
func (r *Reporter) tenantStatus(now time.Time, rep *slum.Report, out map[string]tenantMemo, cur *statusCursor, room int) {
	// As for instances: an array shared with the plan last written is
	// the very same decisions.
	sv := r.plan.Serving
	w := &r.written
	compare := w.revision == r.plan.Revision && w.serving.of(sv)
	written := besideWritten(sv, w.serving, compare)
	for ; cur.serving < sv.Len(); cur.serving++ {
		if len(rep.Tenants) >= room {
			return
		}
		i := cur.serving
		until, last := written.at(i)
		if until > i {
			cur.serving = until - 1
			continue
		}
		s := *sv.At(i)
		if last != nil && sameServing(s, *last) {
			continue
		}
		serving := s.Serving()
		prev, ok := r.tenants[s.Tenant]
		if !ok && len(s.copies) == 0 && s.Reason == reasonNoCopyYet {
			// Never served, and its copies are on their way: a fleet
			// converging from empty writes each tenant once, when it is
			// served, not twice. Any other reason (its server is dead, it
			// has no instance running) is written, so status, the API and
			// every router say why.
			continue
		}
		m := tenantMemo{serving: serving, hash: servingHash(s)}
		if ok && prev.hash == m.hash && slices.Equal(prev.serving, serving) {
			continue
		}
		st := slum.TenantStatus{TenantID: s.Tenant, Serving: serving, Spares: s.Spares(), Reason: s.Reason,
			ChangedAt: s.Since(), UpdatedAt: now}
		if !ok || !slices.Equal(prev.serving, serving) {
			if ok {
				msg := "now served by " + orNothing(copies(serving))
				if len(prev.serving) > 0 {
					msg += " (was " + copies(prev.serving) + ")"
				}
				if len(serving) == 0 {
					msg += ": " + s.Reason
				}
				rep.Events = append(rep.Events, slum.Event{At: now, Object: slum.TenantRef(s.Tenant), Reason: slum.ReasonServingChanged, Message: msg})
			}
		}
		out[s.Tenant] = m
		rep.Tenants = append(rep.Tenants, st)
	}
	cur.servingDone = true
	if compare {
		return // same revision: no tenant left
	}
	for id := range r.tenants {
		if r.fleet.Tenant(id) == nil {
			rep.DropTenants = append(rep.DropTenants, id)
		}
	}
}

// sameServing reports whether two decisions are the same, cheaply: the
// planner shares the slices of a decision that did not change.
func sameServing(a, b Serving) bool {
	return a.Tenant == b.Tenant && a.Reason == b.Reason && a.serves == b.serves && len(a.copies) == len(b.copies) &&
		(len(a.copies) == 0 || &a.copies[0] == &b.copies[0] || slices.Equal(a.copies, b.copies))
}

func copies(cs []slum.CopyRef) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}

func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// holdSpecsOf lists a plan's held parts, and a key that changes when they
// do.
func holdSpecsOf(p *Plan) ([]slum.HoldSpec, string) {
	var specs []slum.HoldSpec
	var key strings.Builder
	for _, h := range p.Held {
		var detail []string
		for _, a := range h.Stops {
			detail = append(detail, "stop "+a.Name+" on "+a.ServerID+": "+a.Reason)
		}
		for _, rs := range h.Reschedules {
			detail = append(detail, fmt.Sprintf("move %s from %s to %s", rs.Key(), rs.From, rs.To))
		}
		b, _ := json.Marshal(struct {
			Servers []string `json:"servers,omitempty"`
			Actions []string `json:"actions"`
		}{h.Servers, detail})
		specs = append(specs, slum.HoldSpec{Kind: h.Kind, Fingerprint: h.Fingerprint, Summary: h.Summary, Detail: string(b)})
		fmt.Fprintf(&key, "%s/%s/%s|", h.Kind, h.Fingerprint, h.Summary)
	}
	return specs, key.String()
}

func statusHash(st slum.InstanceStatus) uint64 {
	var h fnv
	h.str(st.TenantID)
	h.str(st.InstanceID)
	h.str(st.ServerID)
	h.str(string(st.Phase))
	h.str(string(st.Health))
	h.str(st.LastError)
	h.str(st.Message)
	h.num(st.Attempts)
	h.num(st.ObservedGeneration)
	return h.sum()
}

// servingHash digests what a tenant's status row holds.
func servingHash(s Serving) uint64 {
	var h fnv
	for _, list := range [2][]slum.CopyRef{s.Serving(), s.Spares()} {
		h.num(int64(len(list)))
		for _, c := range list {
			h.str(c.Instance)
			h.str(c.Server)
		}
	}
	h.str(s.Reason)
	return h.sum()
}

// fnv is FNV-1a, inline and allocation-free: it runs for every instance
// and tenant on every flush.
type fnv uint64

const fnvPrime = 1099511628211

func (h *fnv) str(s string) {
	x := uint64(*h)
	if x == 0 {
		x = 14695981039346656037
	}
	for i := 0; i < len(s); i++ {
		x = (x ^ uint64(s[i])) * fnvPrime
	}
	*h = fnv((x ^ 0xff) * fnvPrime)
}

func (h *fnv) num(v int64) {
	x := uint64(*h)
	if x == 0 {
		x = 14695981039346656037
	}
	for i := 0; i < 8; i++ {
		x = (x ^ uint64(byte(v>>(8*i)))) * fnvPrime
	}
	*h = fnv(x)
}

// sum never returns 0, which means "never written".
func (h fnv) sum() uint64 { return uint64(h) | 1 }
