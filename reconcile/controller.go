// Package reconcile is slum's controller. It is built as pieces that each
// own their state and hand values to the next:
//
//   - observed.Watcher, one per server, probes, lists and watches it and
//     publishes observed.Snapshot values; servers keeps a client and a
//     watcher per server and the newest snapshot of each;
//   - Ledger is what slum placed on each server and which actions are in
//     flight, a value with a version per server;
//   - Planner is a pure function from the desired state, those
//     snapshots, the ledger and the time to a Plan of named sets: spawn,
//     stop, wait, reschedule (failover), fence, held, …;
//   - Executor is the work queue: it owns retries and backoff, and checks
//     every action against intent (the newest desired state) as it sends
//     it;
//   - Reporter writes status, events and who serves each tenant, in
//     batches, under the controller's lease; eventLog is a batch of
//     events on its way there;
//   - failovers remembers failovers started (the rate limit) and times
//     replacements;
//   - Controller's loop (Run, paced by a pacer) takes the news, plans,
//     commits failover moves, records placements before their spawns,
//     offers actions to the executor, hands the route table of each plan
//     that changes it (routes.Changed) to Config.OnRoutes and the rest to
//     the reporter.
package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/observed"
	"github.com/slum-fleet/slum/observed/keepalive"
	"github.com/slum-fleet/slum/routes"
)

// Store is what the controller needs of the desired state.
type Store interface {
	ReportStore
	Revision(ctx context.Context) (int64, error)
	Snapshot(ctx context.Context) (*slum.Snapshot, error)
	ListPlacements(ctx context.Context) ([]slum.Placement, error)
	ListTenantStatus(ctx context.Context) ([]slum.TenantStatus, error)
	ListInstanceStatus(ctx context.Context) ([]slum.InstanceStatus, error)
	RecordPlacements(ctx context.Context, f slum.Fence, ps []slum.Placement) error
	Reschedule(ctx context.Context, f slum.Fence, rs []slum.Reschedule) (slum.Rescheduled, error)
}

// Client is what the controller needs of a tenement server.
type Client interface {
	observed.WatchClient
	Spawn(ctx context.Context, process, id string) (observed.SpawnResult, error)
	Stop(ctx context.Context, process, id string) error
}

// ClientFactory makes the client for a server. Its clients bound every
// call with a timeout of their own (HTTPClientFactory's: the timeout it is
// given, Config.ActionTimeout for 'slum run'): the controller's spawns and
// stops are sent on a context that never ends, so a controller stopping
// lets them finish.
type ClientFactory func(url, token string) (Client, error)

// HTTPClientFactory makes observed.Clients that share their connections,
// so connections are reused across calls and across a server's clients
// (a new token makes a new client), and one pool of buffers for reading
// answers (lists of a large fleet, every few seconds). Spawns, stops and
// lists go on kept-alive connections of their own (observed/keepalive);
// log streams and TLS go through net/http.
func HTTPClientFactory(timeout time.Duration) ClientFactory {
	shared := &http.Client{Transport: observed.NewTransport()}
	conns := keepalive.NewPool()
	bufs := observed.NewBufferPool()
	return func(url, token string) (Client, error) {
		return observed.NewClient(url, token, observed.WithHTTPClient(shared), observed.WithConnPool(conns),
			observed.WithBufferPool(bufs), observed.WithTimeout(timeout))
	}
}

// Config tunes the controller. Zero fields take the defaults. How servers
// are probed and when they count as dead are the fleet's settings, in the
// database.
type Config struct {
	PollInterval  time.Duration // every server's instances are listed at least this often
	PollTimeout   time.Duration // one list call
	ProbeRetry    time.Duration // the wait before probing again after a failed probe
	RevisionPoll  time.Duration // how often the database is checked for changes
	ActionTimeout time.Duration // one spawn or stop call: the timeout 'slum run' gives HTTPClientFactory
	FlushInterval time.Duration // how often status is written
	Concurrency   int           // actions in flight overall
	PerServer     int           // actions in flight per server
	Backoff       BackoffPolicy
	Guard         Guard
	// NoStream: do not hold servers' log streams open (a crash is then
	// noticed by probes alone).
	NoStream bool
	Clock    clock.Clock
	// OnRoutes receives every new route table (an in-process router).
	OnRoutes func(*routes.Table)
	// MayAct, when set, is asked just before each spawn or stop is sent:
	// an error (the leader's renew deadline passed) drops the action. The
	// term's context ends soon after; this closes the moment between.
	MayAct func() error
}

// DefaultConfig is what 'slum run' uses unless told otherwise.
func DefaultConfig() Config {
	return Config{
		PollInterval: 2 * time.Second, PollTimeout: 5 * time.Second, ProbeRetry: 250 * time.Millisecond,
		RevisionPoll: 50 * time.Millisecond, ActionTimeout: 10 * time.Second, FlushInterval: 200 * time.Millisecond,
		Concurrency: 64, PerServer: 8,
		Backoff: BackoffPolicy{Initial: 500 * time.Millisecond, Max: 30 * time.Second},
		Guard:   Guard{Fraction: 0.5, Floor: 10},
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	for _, p := range []struct{ v, d *time.Duration }{{&c.PollInterval, &d.PollInterval}, {&c.PollTimeout, &d.PollTimeout},
		{&c.ProbeRetry, &d.ProbeRetry}, {&c.RevisionPoll, &d.RevisionPoll}, {&c.ActionTimeout, &d.ActionTimeout},
		{&c.FlushInterval, &d.FlushInterval}, {&c.Backoff.Initial, &d.Backoff.Initial}, {&c.Backoff.Max, &d.Backoff.Max}} {
		if *p.v <= 0 {
			*p.v = *p.d
		}
	}
	for _, p := range []struct{ v, d *int }{{&c.Concurrency, &d.Concurrency}, {&c.PerServer, &d.PerServer}, {&c.Guard.Floor, &d.Guard.Floor}} {
		if *p.v <= 0 {
			*p.v = *p.d
		}
	}
	if c.Guard.Fraction <= 0 {
		c.Guard.Fraction = d.Guard.Fraction
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	return c
}

// Status is the controller's view of itself, for probes and status.
type Status struct {
	Ready  bool   // a first plan was made
	Holds  int    // plans held back, waiting for the operator
	Reason string // why not ready, or what is held
}

// Controller makes the fleet's tenement servers match the desired state.
// Its loop (Run) owns the pieces below and carries each plan out; the
// watchers, the executor's workers and the reporter run beside it and
// reach it through the inbox.
type Controller struct {
	store     Store
	cfg       Config
	log       *slog.Logger
	metrics   *Metrics
	in        *inbox
	servers   *servers
	ledger    *Ledger
	intent    *intent
	plans     *plans
	failovers failovers
	events    eventLog
	run       *session // nil until started
}

// session is one start of the controller: the fence it writes under, its
// executor and reporter, the executor's states of items with a history,
// and whether Run drives it (or a caller, through Sync).
type session struct {
	fence   slum.Fence
	exec    *Executor
	rep     *Reporter
	items   map[slum.InstanceKey]ItemState
	running bool
	// pending are the instances the last controller left pending (it
	// may have spawned them and stopped before recording it), by the
	// server they were pending on; the first plan records those it finds
	// running there.
	pending map[slum.InstanceKey]string
}

// plans is what the loop keeps of its plans: the last one made (whose
// quiet parts the next reuses), the last one carried out (for
// plan-to-plan events), the decision the routes were last built from,
// who served each tenant when the controller started (so traffic stays
// where it was across a restart), and the Status probes read.
type plans struct {
	last, reported *Plan
	routed         routes.Decision
	serving        map[string]Serving
	status         atomic.Pointer[Status]
}

// New returns a controller. log and metrics may be nil.
func New(store Store, newClient ClientFactory, cfg Config, log *slog.Logger, metrics *Metrics) *Controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics()
	}
	cfg = cfg.withDefaults()
	in := newInbox()
	c := &Controller{store: store, cfg: cfg, log: log, metrics: metrics, in: in,
		servers: newServers(newClient, cfg.Clock, in.publish), ledger: NewLedger(), intent: newIntent(cfg.Clock),
		plans: &plans{serving: map[string]Serving{}}}
	c.plans.status.Store(&Status{Reason: "no plan made yet"})
	return c
}

// Metrics returns the controller's metrics.
func (c *Controller) Metrics() *Metrics { return c.metrics }

// Status reports whether the controller is ready and what it holds back.
func (c *Controller) Status() Status { return *c.plans.status.Load() }

// fleet is the desired state the loop works from.
func (c *Controller) fleet() *Fleet { return c.intent.fleet.Load() }

// Desired returns the desired state the controller works from, nil
// before it has read one. The snapshot is shared and never modified: a
// reader beside the controller (the data guard) looks at it rather than
// reading a copy of its own.
func (c *Controller) Desired() *slum.Snapshot {
	if f := c.fleet(); f != nil {
		return f.Snapshot
	}
	return nil
}

// start loads the ledger and the desired state and sets up the executor,
// the reporter and a watcher per server. Every write is made under fence.
func (c *Controller) start(ctx context.Context, fence slum.Fence) error {
	if c.run != nil {
		return nil
	}
	c.in.done = ctx.Done()
	ps, err := c.store.ListPlacements(ctx)
	if err != nil {
		return fmt.Errorf("load placements: %w", err)
	}
	now := c.cfg.Clock.Now()
	for _, p := range ps {
		c.ledger.Add(p, now)
	}
	// Who served each tenant, as the last controller left it: traffic
	// stays where it was across a restart.
	sts, err := c.store.ListTenantStatus(ctx)
	if err != nil {
		return fmt.Errorf("load who serves each tenant: %w", err)
	}
	for _, st := range sts {
		c.plans.serving[st.TenantID] = NewServing(st.TenantID, st.Serving, st.Spares, st.ChangedAt)
	}
	written, err := c.store.ListInstanceStatus(ctx)
	if err != nil {
		return fmt.Errorf("load status: %w", err)
	}
	run := &session{fence: fence, items: map[slum.InstanceKey]ItemState{},
		exec: NewExecutor(ctx, ExecutorConfig{Concurrency: c.cfg.Concurrency, PerServer: c.cfg.PerServer,
			Backoff: c.cfg.Backoff}, c.cfg.Clock, c.send, c.checkAction,
			c.in.results.put, c.in.wake),
		rep: NewReporter(c.store, fence, c.cfg.Clock, c.log, c.cfg.FlushInterval)}
	run.rep.Seed(written)
	run.rep.SeedTenants(sts)

	c.run = run
	if err := c.reload(ctx); err != nil {
		c.run = nil
		return err
	}
	run.pending = leftPending(c.fleet(), written)
	c.log.Info("controller started", "placements", len(ps), "servers", len(c.fleet().Servers), "epoch", fence.Epoch)
	return nil
}

// checkAction tells, as an action is about to be sent, whether this
// controller may still act and the newest desired state still wants it.
func (c *Controller) checkAction(a Action) error {
	if c.cfg.MayAct != nil {
		if err := c.cfg.MayAct(); err != nil {
			return err
		}
	}
	return c.intent.check(a)
}

// leftPending is what the last controller left pending, by the server it
// was pending on: instances desired running whose status says pending, or
// that have no status yet (pending, unwritten).
func leftPending(f *Fleet, written []slum.InstanceStatus) map[slum.InstanceKey]string {
	known := make(map[slum.InstanceKey]slum.InstanceStatus, len(written))
	for _, st := range written {
		known[st.Key()] = st
	}
	var out map[slum.InstanceKey]string
	for i := range f.Desired {
		d := &f.Desired[i]
		st, ok := known[d.Key]
		if d.DesiredState != slum.StateRunning || ok && (st.Phase != slum.PhasePending || st.ServerID != d.ServerID) {
			continue
		}
		if out == nil {
			out = map[slum.InstanceKey]string{}
		}
		out[d.Key] = d.ServerID
	}
	return out
}

// heardFromAll reports whether every server of the fleet has been listed,
// or its list failed, or it is known to be unusable.
func (c *Controller) heardFromAll() bool {
	for _, srv := range c.fleet().Snapshot.Servers {
		s := c.servers.observed[srv.ID]
		if s == nil {
			return false
		}
		if h := s.Health.Health; !s.Listed && s.ListErr == "" && h != slum.HealthDead && h != slum.HealthUnauthorized {
			return false
		}
	}
	return true
}

// recordChunk is how many placements are recorded before the spawns they
// cover are sent.
const recordChunk = 2000

// reload reads the desired state and brings the per-server pieces in
// line.
func (c *Controller) reload(ctx context.Context) error {
	snap, err := c.store.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("load the desired state: %w", err)
	}
	c.adopt(snap)
	return nil
}

// adopt makes snap the desired state the controller works from: watchers
// for new servers, new clients for changed URLs or tokens, the fleet's
// settings for every watcher; a server that left takes its placements
// and queued work with it.
func (c *Controller) adopt(snap *slum.Snapshot) {
	c.intent.load(NewFleet(snap))
	for _, id := range c.servers.adopt(snap.Servers, c.watchPolicy(snap.Settings)) {
		c.ledger.DropServer(id)
		c.run.exec.DropServer(id)
	}
	c.metrics.desiredLoaded.Set(float64(snap.Revision))
}

func (c *Controller) watchPolicy(s slum.Settings) observed.WatchPolicy {
	return observed.WatchPolicy{ProbeInterval: s.ProbeInterval, ProbeTimeout: s.ProbeTimeout, ProbeRetry: c.cfg.ProbeRetry,
		Detector:     observed.DetectorPolicy{SuspectAfter: 1, DeadAfter: s.DeadAfter},
		PollInterval: c.cfg.PollInterval, PollTimeout: c.cfg.PollTimeout, Stream: !c.cfg.NoStream}
}

// onSnapshot takes a watcher's news. It reports whether the news is
// urgent (the server's health changed: failover, fencing and routing may
// depend on it) or otherwise worth a plan (its instances changed, or the
// last plan had something to do there and a fresh list may show its
// effect).
func (c *Controller) onSnapshot(s *observed.Snapshot) (urgent, news bool) {
	rt, prev, ok := c.servers.take(s)
	if !ok {
		return false, false
	}
	if s.Listed {
		c.run.exec.Listed(s.Server, s.ListedAt)
	}
	f := c.fleet()
	urgent = prev == nil || keyOf(prev.Health) != keyOf(s.Health)
	news = prev == nil || prev.Content != s.Content
	if last := c.plans.last; !news && last != nil {
		if si, ok := f.ServerIndex[s.Server]; ok && si < len(last.parts) {
			pt := last.parts[si]
			news = pt == nil || !pt.quiet
		}
	}
	was := slum.HealthUnknown
	if prev != nil {
		was = prev.Health.Health
	}
	if now := s.Health.Health; now != was {
		c.healthEvent(rt.srv.ID, was, s.Health)
		if si, ok := f.ServerIndex[s.Server]; ok && now == slum.HealthDead {
			keys := make([]slum.InstanceKey, 0, len(f.OnServer[si]))
			for _, di := range f.OnServer[si] {
				keys = append(keys, f.Desired[di].Key)
			}
			c.failovers.died(keys, s.Server, s.Health.Since)
		}
	}
	return urgent, news
}

func (c *Controller) healthEvent(id string, was slum.Health, h slum.HealthState) {
	msg := fmt.Sprintf("server is %s (was %s)", h.Health, was)
	if h.LastErr != "" && h.Health != slum.HealthOnline {
		msg += ": " + h.LastErr
	}
	reason := map[slum.Health]slum.EventReason{slum.HealthOnline: slum.ReasonServerOnline,
		slum.HealthSuspect: slum.ReasonServerSuspect, slum.HealthDead: slum.ReasonServerDead,
		slum.HealthUnauthorized: slum.ReasonUnauthorized}[h.Health]
	if reason == "" {
		return
	}
	c.events.add(slum.Event{At: h.Since, Object: slum.ServerRef(id), Reason: reason, Message: msg})
	level := slog.LevelInfo
	if h.Health != slum.HealthOnline {
		level = slog.LevelWarn
	}
	c.log.Log(context.Background(), level, "server health changed", "server", id, "from", was, "to", h.Health, "err", h.LastErr)
}

// onResult takes a finished (or dropped) action's news.
func (c *Controller) onResult(r Result) {
	a := r.Action
	c.ledger.SetBusy(a.ServerID, a.Name, false)
	if r.Skip != "" {
		c.log.Debug("action dropped unsent", "kind", a.Kind, "server", a.ServerID, "name", a.Name, "why", r.Skip)
		c.metrics.actions.WithLabelValues(string(a.Kind), "skipped").Inc()
		return
	}
	result := "ok"
	switch {
	case r.Err == nil:
	case r.State.Parked:
		result = "permanent"
	default:
		result = "retry"
	}
	c.metrics.actions.WithLabelValues(string(a.Kind), result).Inc()
	c.ledger.Touch(a.ServerID, a.Name, r.At)
	if r.Err != nil {
		c.failed(r)
		return
	}
	delete(c.run.items, a.Instance)
	// See the results once the server's batch is done: one list for a
	// thousand spawns, not a thousand lists.
	if rt := c.servers.byID[a.ServerID]; rt != nil && !c.run.exec.ServerBusy(a.ServerID) {
		rt.watcher.PollSoon()
	}
	switch {
	case a.Kind == Stop && a.Fence:
		c.events.add(slum.Event{At: r.At, Object: actionObject(a), Reason: slum.ReasonFenced,
			Message: fmt.Sprintf("stopped the stale copy %s on %s: %s", a.Name, a.ServerID, a.Reason)})
	case a.Kind == Stop:
		c.events.add(slum.Event{At: r.At, Object: actionObject(a), Reason: slum.ReasonStopped,
			Message: fmt.Sprintf("stopped %s on %s: %s", a.Name, a.ServerID, a.Reason)})
	case a.Kind == Spawn:
		c.events.spawned(func() slum.Event {
			return slum.Event{At: r.At, Object: actionObject(a), Reason: slum.ReasonSpawned,
				Message: "spawned " + a.Name + " on " + a.ServerID + ": " + a.Reason}
		})
	}
}

// failed takes the news of a failed action.
func (c *Controller) failed(r Result) {
	a := r.Action
	if a.Instance != "" {
		c.run.items[a.Instance] = r.State
	}
	object := actionObject(a)
	switch {
	case r.State.Parked:
		c.events.add(slum.Event{At: r.At, Object: object, Reason: slum.ReasonParked,
			Message: fmt.Sprintf("%s on %s failed permanently; waiting for its desired state or server to change: %v", a.Kind, a.ServerID, r.Err)})
		c.log.Error("action parked", "kind", a.Kind, "server", a.ServerID, "name", a.Name, "err", r.Err)
	case r.State.Attempts == 1:
		c.events.add(slum.Event{At: r.At, Object: object, Reason: slum.ReasonRetrying,
			Message: fmt.Sprintf("%s on %s failed, retrying with backoff: %v", a.Kind, a.ServerID, r.Err)})
		c.log.Warn("action failed", "kind", a.Kind, "server", a.ServerID, "name", a.Name, "attempts", r.State.Attempts, "err", r.Err)
	default:
		c.log.Debug("action failed", "kind", a.Kind, "server", a.ServerID, "name", a.Name, "attempts", r.State.Attempts, "err", r.Err)
	}
}

// actionObject names what an action's events are about.
func actionObject(a Action) slum.ObjectRef {
	if a.Instance != "" {
		return slum.InstanceRef(a.Instance)
	}
	return slum.CopyOnServerRef(a.ServerID, a.Name)
}

// send performs one action.
func (c *Controller) send(ctx context.Context, a Action) error {
	client := c.servers.client(a.ServerID)
	if client == nil {
		return fmt.Errorf("server %s: %w: no usable client", a.ServerID, observed.ErrUnavailable)
	}
	switch a.Kind {
	case Spawn:
		_, err := client.Spawn(ctx, a.Process(), a.ID())
		return err
	case Stop:
		return client.Stop(ctx, a.Process(), a.ID())
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

// step plans once and, with act, carries the plan out: failover moves are
// committed to the desired state first (and the plan remade from it), the
// ledger is written before any spawn is sent, actions are offered to the
// executor, and everything worth reporting goes to the reporter.
func (c *Controller) step(ctx context.Context, act bool) *Plan {
	start := time.Now()
	plan := c.plan()
	planned := time.Since(start)
	if !act {
		return plan
	}
	var moved map[string]int
	if len(plan.Reschedules) > 0 {
		if moved = c.failOver(ctx, plan); len(moved) > 0 {
			plan = c.plan()
		}
	}
	recorded := c.carryOut(ctx, plan, moved)
	took := time.Since(start)
	c.metrics.passDuration.Observe(took.Seconds())
	if !plan.Idle() || len(plan.Held) > 0 {
		c.log.Debug("plan", "revision", plan.Revision, "spawns", len(plan.Spawns), "stops", len(plan.Stops), "waits", len(plan.Waits),
			"record", len(plan.Record), "forget", len(plan.Forget), "held", len(plan.Held), "unplaceable", len(plan.Unplaceable),
			"took", took, "planning", planned, "recording", recorded)
	}
	return plan
}

// failOver commits a plan's failover moves and adopts the desired state
// they make; it returns how many instances moved from each server (when
// any did, the plan is remade).
func (c *Controller) failOver(ctx context.Context, plan *Plan) map[string]int {
	res, err := c.store.Reschedule(ctx, c.run.fence, plan.Reschedules)
	if err != nil {
		c.log.Error("cannot commit failover moves", "err", err)
		return nil
	}
	if len(res.Moves) == 0 {
		return nil
	}
	moved := map[string]int{}
	for _, m := range res.Moves {
		moved[m.From]++
	}
	c.failovers.start(plan.FailingOver, c.cfg.Clock.Now())
	c.metrics.failovers.Add(float64(len(plan.FailingOver)))
	c.metrics.moved.Add(float64(len(res.Moves)))
	c.log.Warn("failover: instances placed elsewhere", "moved", len(res.Moves), "servers", plan.FailingOver)
	// The moves are the only change since the snapshot held: apply them
	// to it rather than read the whole desired state again (a second at
	// 100,000 instances, with tenants waiting).
	f := c.fleet()
	next, ok := (*slum.Snapshot)(nil), false
	if res.Revision == f.Revision+1 {
		next, ok = f.Snapshot.WithInstances(res.Instances, res.Revision)
	}
	if ok {
		c.adopt(next)
	} else if err := c.reload(ctx); err != nil {
		c.log.Error("cannot read the desired state", "err", err)
	}
	return moved
}

func (c *Controller) plan() *Plan {
	c.plans.last = Planner{}.Plan(c.input(c.cfg.Clock.Now()))
	return c.plans.last
}

// input is what the next plan is made from.
func (c *Controller) input(now time.Time) Input {
	return Input{Now: now, Fleet: c.fleet(), Observed: c.servers.observed, Ledger: c.ledger,
		Serving: c.plans.serving, Failovers: c.failovers.recent(now), DiedOn: c.failovers.diedOn, Guard: c.cfg.Guard, Prev: c.plans.last}
}

// carryOut acts on a plan, made after moved instances (by server they
// left) were failed over; it returns how long recording placements took.
func (c *Controller) carryOut(ctx context.Context, plan *Plan, moved map[string]int) time.Duration {
	now := c.cfg.Clock.Now()
	f := c.fleet()
	// What is kept of the plan once it is carried out (the next plan's
	// Prev, the routes and events it is compared with, the reporter's
	// update) needs none of its actions, which the executor holds from
	// here on: a converging plan's 100,000 spawns and placements (~15 MB)
	// go once offered.
	kept := plan.withoutActions()
	if c.plans.last == plan {
		c.plans.last = kept
	}
	// Who serves whom changed: the router hears of it before any copy is
	// stopped, and the reporter writes it at once for routers and readers
	// of the database.
	decision := planRoutes{kept}
	urgent := routes.Changed(c.plans.routed, decision)
	if urgent && c.cfg.OnRoutes != nil {
		c.cfg.OnRoutes(routeTable(f, plan))
	}
	// The same routes or new ones, this plan is what they are compared
	// with next (and an older plan is not kept alive for it).
	c.plans.routed = decision
	recTook := c.offer(ctx, plan, now)
	if len(plan.Spawns)+len(plan.Stops) == 0 {
		// Nothing to do anywhere: the executor forgets the history of
		// work no longer wanted.
		for id := range c.servers.byID {
			c.run.exec.Retain(id, nil)
		}
	}
	for _, fg := range plan.Forget {
		c.ledger.Forget(fg.ServerID, fg.Name)
	}
	for _, id := range plan.Relist {
		if rt := c.servers.byID[id]; rt != nil {
			c.cfg.Clock.AfterFunc(RelistAfter, rt.watcher.PollSoon)
		}
	}
	c.events.add(planEvents(c.plans.reported, plan, now)...)
	c.events.add(c.failovers.announce(plan, moved, c.deadSince, now)...)
	c.events.add(c.foundSpawned(plan, now)...)
	c.plans.reported = kept
	took, events := c.failovers.replaced(plan, now)
	for _, d := range took {
		c.metrics.failoverSeconds.Observe(d.Seconds())
	}
	c.events.add(events...)
	c.observeMetrics(plan)
	c.setStatus(plan)
	if c.run.running {
		c.run.rep.Submit(c.update(kept), urgent)
	} else {
		c.run.rep.Merge(c.update(kept))
	}
	return recTook
}

// offer records the plan's placements and offers its actions to the
// executor. A spawn goes out only once its placement is recorded.
// Placements are recorded a chunk at a time, and the spawns they cover go
// out after each: a fleet converging from empty starts spawning after the
// first chunk, not after 100,000 rows. (Spawns come in the order of the
// placements.) It returns how long recording took.
func (c *Controller) offer(ctx context.Context, plan *Plan, now time.Time) time.Duration {
	// Offered a chunk at a time: a plan of a large fleet's first pass
	// holds 100,000 spawns, and a batch of them all would be copied anew
	// by every pass until they run.
	batch := make([]Offering, 0, min(len(plan.Spawns)+len(plan.Stops), recordChunk))
	send := func() {
		for i, queued := range c.run.exec.OfferAll(batch) {
			if queued {
				c.ledger.SetBusy(batch[i].Action.ServerID, batch[i].Action.Name, true)
			}
		}
		batch = batch[:0]
	}
	add := func(a Action) {
		rt := c.servers.byID[a.ServerID]
		snap := c.servers.observed[a.ServerID]
		if rt != nil && snap != nil {
			batch = append(batch, Offering{Action: a, ObservedAt: snap.ListedAt, ServerKey: rt.key})
		}
		if len(batch) == cap(batch) {
			send()
		}
	}
	pending := plan.Spawns
	owned := func(a Action) bool { return c.ledger.Owns(a.ServerID, a.Name) }
	var took time.Duration
	for chunk := range slices.Chunk(plan.Record, recordChunk) {
		start := time.Now()
		err := c.store.RecordPlacements(ctx, c.run.fence, chunk)
		took += time.Since(start)
		if err != nil {
			c.log.Error("cannot record placements; their spawns wait", "err", err)
			break
		}
		for _, p := range chunk {
			c.ledger.Add(p, now)
		}
		for len(pending) > 0 && owned(pending[0]) {
			add(pending[0])
			pending = pending[1:]
		}
		send()
	}
	for _, a := range pending {
		if owned(a) {
			add(a)
		}
	}
	for _, a := range plan.Stops {
		add(a)
	}
	send()
	return took
}

// foundSpawned records, once, the spawns of the last controller that it
// did not record: instances it left pending that the first plan finds
// running where they were pending.
func (c *Controller) foundSpawned(plan *Plan, now time.Time) []slum.Event {
	if c.run.pending == nil {
		return nil
	}
	var out []slum.Event
	for _, o := range plan.Observations.All() {
		if o.Instance == nil || o.Phase() != slum.PhaseRunning {
			continue
		}
		if server, ok := c.run.pending[o.Instance.Key]; ok && server == o.Instance.ServerID {
			out = append(out, slum.Event{At: now, Object: slum.InstanceRef(o.Instance.Key), Reason: slum.ReasonSpawned,
				Message: "found " + o.Instance.Name + " running on " + server + ": spawned by the last controller, which stopped before recording it"})
		}
	}
	c.run.pending = nil
	return out
}

// deadSince is when a server was declared dead, as last observed.
func (c *Controller) deadSince(server string) time.Time {
	if s := c.servers.observed[server]; s != nil {
		return s.Health.Since
	}
	return time.Time{}
}

// update is the reporter's share of a plan, with the events logged since
// the last one.
func (c *Controller) update(plan *Plan) Update {
	u := Update{Fleet: c.fleet(), Plan: plan, Items: maps.Clone(c.run.items), Events: c.events.take()}
	if plan != nil {
		u.Forget, u.Finish = plan.Forget, plan.Approved
	}
	return u
}

func (c *Controller) setStatus(plan *Plan) {
	st := &Status{Ready: true, Holds: len(plan.Held)}
	for _, h := range plan.Held {
		if st.Reason != "" {
			st.Reason += "; "
		}
		st.Reason += string(h.Kind) + " held: " + h.Summary
	}
	c.plans.status.Store(st)
}

func (c *Controller) observeMetrics(plan *Plan) {
	servers := map[slum.Health]int{}
	for _, s := range plan.Servers {
		servers[s.Health.Health]++
	}
	for _, h := range slum.Healths {
		c.metrics.servers.WithLabelValues(string(h)).Set(float64(servers[h]))
	}
	phases := map[slum.Phase]int{}
	for _, o := range plan.Observations.All() {
		phases[o.Phase()]++
	}
	for _, ph := range slum.Phases {
		c.metrics.instances.WithLabelValues(string(ph)).Set(float64(phases[ph]))
	}
	unmanaged := 0
	for _, s := range plan.Servers {
		unmanaged += len(s.Unmanaged)
	}
	c.metrics.unmanaged.Set(float64(unmanaged))
	held := map[slum.HoldKind]int{}
	for _, h := range plan.Held {
		held[h.Kind]++
	}
	for _, k := range []slum.HoldKind{slum.HoldMassStop, slum.HoldPartition} {
		c.metrics.held.WithLabelValues(string(k)).Set(float64(held[k]))
	}
	c.metrics.unplaceable.Set(float64(len(plan.Unplaceable)))
	c.metrics.queueDepth.Set(float64(c.run.exec.Depth()))
}

// Sync observes every server now (probe and list, waiting for each), plans
// and, with act, carries the plan out; it returns the plan. It is for
// dry runs, tests and benchmarks, and must not be used while Run runs.
func (c *Controller) Sync(ctx context.Context, fence slum.Fence, act bool) (*Plan, error) {
	if err := c.start(ctx, fence); err != nil {
		return nil, err
	}
	if rev, err := c.store.Revision(ctx); err != nil {
		return nil, err
	} else if rev != c.fleet().Revision {
		if err := c.reload(ctx); err != nil {
			return nil, err
		}
	}
	c.servers.refresh(ctx)
	c.drain()
	return c.step(ctx, act), nil
}

// waitIdle blocks until no action is queued or in flight, takes their
// results, and writes what they reported. For tests and benchmarks.
func (c *Controller) waitIdle(ctx context.Context) error {
	for c.run.exec.Depth() > 0 || c.in.results.waiting() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.in.results.ready:
			c.takeResults()
		}
	}
	c.drain()
	c.run.rep.Merge(c.update(nil))
	return c.run.rep.Flush(ctx)
}
