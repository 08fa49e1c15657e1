// Package reconcile is slum's controller. It is built as a few pieces,
// each owning its state and handing values to the next:
//
//   - observed.Watcher, one per server, probes, lists and watches it and
//     publishes observed.Snapshot values;
//   - Planner is a pure function from the desired state, those
//     snapshots, the ownership ledger and the time to a Plan of named
//     sets: spawn, stop, wait, reschedule (failover), fence, held, …;
//   - Executor is the work queue: it owns retries and backoff, and checks
//     every action against the newest desired state as it sends it;
//   - Reporter writes status, events and who serves each tenant, in
//     batches, under the controller's lease, and builds the route table;
//   - Controller is the loop that owns the ledger and the latest
//     snapshots, and carries each plan out.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/observed"
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

// ClientFactory makes the client for a server.
type ClientFactory func(url, token string) (Client, error)

// HTTPClientFactory makes observed.Clients that share one connection pool,
// so connections are reused across calls, and one pool of buffers for
// reading answers (lists of a large fleet, every few seconds).
func HTTPClientFactory(timeout time.Duration) ClientFactory {
	shared := &http.Client{Transport: observed.NewTransport()}
	bufs := observed.NewBufferPool()
	return func(url, token string) (Client, error) {
		return observed.NewClient(url, token, observed.WithHTTPClient(shared), observed.WithBufferPool(bufs), observed.WithTimeout(timeout))
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
	ActionTimeout time.Duration // one spawn or stop call
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

// serverRT is what the loop keeps per server.
type serverRT struct {
	srv     slum.Server
	key     string // fingerprint of URL and token: a change means a new client
	client  Client
	err     error // why there is no client
	watcher *observed.Watcher
	cancel  context.CancelFunc // ends the watcher's goroutine
}

// Status is the controller's view of itself, for probes and status.
type Status struct {
	Ready  bool   // a first plan was made
	Holds  int    // plans held back, waiting for the operator
	Reason string // why not ready, or what is held
}

// Controller makes the fleet's tenement servers match the desired state.
// Its loop (Run) owns the ledger, the latest snapshots and the plan; the
// other pieces run beside it and talk to it through channels.
type Controller struct {
	store     Store
	cfg       Config
	log       *slog.Logger
	metrics   *Metrics
	newClient ClientFactory
	clock     clock.Clock

	snaps   chan *observed.Snapshot
	results *mailbox[Result]
	kick    chan struct{}

	// Read by executor workers at send time.
	intent    atomic.Pointer[Fleet]
	clients   atomic.Pointer[map[string]Client]
	latestRev atomic.Int64
	status    atomic.Pointer[Status]

	// Owned by the loop (or by the caller, when driven by hand).
	started     bool
	ctx         context.Context
	fence       slum.Fence
	fleet       *Fleet
	servers     map[string]*serverRT
	observed    map[string]*observed.Snapshot
	ledger      Ledger
	busy        map[string]bool
	ledgerVer   map[string]uint64              // per server: counts changes to its ledger entries
	busyVer     map[string]uint64              // per server: counts changes to its actions in flight
	last        *Plan                          // the previous plan, whose unchanged parts the next reuses
	reported    *Plan                          // the plan last carried out, for plan-to-plan events
	routed      *Plan                          // the plan the last route table was built from
	routedFleet *Fleet                         // and its fleet
	items       map[slum.InstanceKey]ItemState // items with a history
	serving     map[string]Serving             // who served each tenant when the controller started
	failovers   []FailoverRecord
	deadAt      map[slum.InstanceKey]death // the death of the server each ran on
	events      []slum.Event
	spawned     int // spawn events in events
	moreSpawned int // spawns since, past maxSpawnEvents: counted, not described
	exec        *Executor
	rep         *Reporter
	running     bool // Run is driving; watchers have goroutines
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
	c := &Controller{store: store, cfg: cfg, log: log, metrics: metrics, newClient: newClient, clock: cfg.Clock,
		snaps: make(chan *observed.Snapshot, 4096), results: newMailbox[Result](), kick: make(chan struct{}, 1),
		servers: map[string]*serverRT{}, observed: map[string]*observed.Snapshot{}, ledger: Ledger{},
		busy: map[string]bool{}, ledgerVer: map[string]uint64{}, busyVer: map[string]uint64{}, items: map[slum.InstanceKey]ItemState{}, serving: map[string]Serving{}, deadAt: map[slum.InstanceKey]death{}}
	c.clients.Store(&map[string]Client{})
	c.status.Store(&Status{Reason: "no plan made yet"})
	return c
}

// Metrics returns the controller's metrics.
func (c *Controller) Metrics() *Metrics { return c.metrics }

// Status reports whether the controller is ready and what it holds back.
func (c *Controller) Status() Status { return *c.status.Load() }

func (c *Controller) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// start loads the ledger and the desired state and sets up the executor,
// the reporter and a watcher per server. Every write is made under fence.
func (c *Controller) start(ctx context.Context, fence slum.Fence) error {
	if c.started {
		return nil
	}
	c.ctx, c.fence = ctx, fence
	ps, err := c.store.ListPlacements(ctx)
	if err != nil {
		return fmt.Errorf("load placements: %w", err)
	}
	now := c.clock.Now()
	for _, p := range ps {
		c.ledgerAdd(p, now)
	}
	// Who served each tenant, as the last controller left it: traffic
	// stays where it was across a restart.
	sts, err := c.store.ListTenantStatus(ctx)
	if err != nil {
		return fmt.Errorf("load who serves each tenant: %w", err)
	}
	for _, st := range sts {
		c.serving[st.TenantID] = Serving{Tenant: st.TenantID, Serving: st.Serving, Spares: st.Spares, Since: st.ChangedAt}
	}
	c.exec = NewExecutor(ctx, ExecutorConfig{Concurrency: c.cfg.Concurrency, PerServer: c.cfg.PerServer,
		Timeout: c.cfg.ActionTimeout, Backoff: c.cfg.Backoff}, c.clock, c.send, c.check,
		c.results.put, c.wake)
	c.rep = NewReporter(c.store, fence, c.clock, c.log, c.cfg.FlushInterval)
	written, err := c.store.ListInstanceStatus(ctx)
	if err != nil {
		return fmt.Errorf("load status: %w", err)
	}
	c.rep.Seed(written)
	c.rep.SeedTenants(sts)
	if err := c.reload(ctx); err != nil {
		return err
	}
	c.started = true
	c.log.Info("controller started", "placements", len(ps), "servers", len(c.fleet.Servers), "epoch", fence.Epoch)
	return nil
}

func (c *Controller) ledgerAdd(p slum.Placement, touched time.Time) {
	c.ledgerVer[p.ServerID]++
	m, ok := c.ledger[p.ServerID]
	if !ok {
		m = map[string]LedgerEntry{}
		c.ledger[p.ServerID] = m
	}
	m[p.Name] = LedgerEntry{Touched: touched}
}

// Run reconciles until ctx ends, writing under fence, then lets in-flight
// actions finish, writes what they changed and returns. It returns an
// error wrapping desired.ErrFenced when another controller took the lease.
func (c *Controller) Run(ctx context.Context, fence slum.Fence) error {
	c.running = true
	if err := c.start(ctx, fence); err != nil {
		return err
	}
	repCtx, stopRep := context.WithCancel(context.WithoutCancel(ctx))
	repDone := make(chan error, 1)
	go func() { repDone <- c.rep.Run(repCtx) }()
	revs := make(chan int64, 1)
	go c.watchRevision(ctx, revs)
	resync := time.NewTicker(c.cfg.PollInterval)
	defer resync.Stop()

	// Plans are paced. A change of the desired state or of a server's
	// health plans at once; what only shows the effect of work under way
	// (results of actions, servers listing what was just spawned) plans
	// once the queue drains, or every busyPlan meanwhile, so a fleet
	// converging from empty is not re-planned per spawn. Never more than
	// half of the time is spent planning.
	// The first plan waits for every server's first list (or its
	// failure), for at most firstListWait: planned before, each instance
	// of a server not listed yet would be reported unknown and rewritten
	// a moment later (200,000 rows of status at 100,000 instances,
	// written for nothing). The bound keeps a slow server from holding
	// back a controller that takes over mid-failover.
	first, firstBy := true, c.clock.Now().Add(min(c.cfg.PollTimeout, firstListWait))
	var fatal error
	urgent, news := true, false
	var lastAt time.Time
	var lastTook time.Duration
	var later <-chan time.Time
	for fatal == nil {
		now := c.clock.Now()
		due := urgent || news && (c.exec.Depth() == 0 || now.Sub(lastAt) >= busyPlan)
		if wait := lastTook - now.Sub(lastAt); due && wait > 0 {
			due, later = false, c.clock.After(wait)
		}
		if first && due && now.Before(firstBy) && !c.heardFromAll() {
			due = false
			if later == nil {
				later = c.clock.After(firstBy.Sub(now))
			}
		}
		switch {
		case due:
			first = false
			plan := c.step(ctx, true)
			lastAt, lastTook = now, c.clock.Now().Sub(now)
			urgent, news, later = false, false, nil
			if len(plan.Waits) > 0 {
				// Old copies wait for their new ones, or for routers
				// to follow: look again soon.
				news, later = true, c.clock.After(waitPlan)
			}
		case news && later == nil:
			later = c.clock.After(busyPlan - now.Sub(lastAt))
		}
		select {
		case <-ctx.Done():
		case err := <-repDone:
			fatal = err
			repDone <- err
		case s := <-c.snaps:
			u, n := c.onSnapshot(s)
			urgent, news = urgent || u, news || n
		case <-c.results.ready:
			news = c.takeResults() || news
		case rev := <-revs:
			if c.fleet == nil || rev != c.fleet.Revision {
				if err := c.reload(ctx); err != nil && ctx.Err() == nil {
					c.log.Error("cannot read the desired state", "err", err)
				}
				urgent = true
			}
		case <-c.kick:
			urgent = true
		case <-resync.C:
			news = true
		case <-later:
			later = nil
			urgent = urgent || news && c.exec.Depth() == 0
		}
		if ctx.Err() != nil {
			break
		}
		u, n := c.drain()
		urgent, news = urgent || u, news || n
	}
	// Shutting down: stop watching, let in-flight calls finish, write.
	for _, rt := range c.servers {
		if rt.cancel != nil {
			rt.cancel()
		}
	}
	c.log.Info("stopping: waiting for in-flight actions")
	done := make(chan struct{})
	go func() { c.exec.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-c.results.ready:
			c.takeResults()
		case <-done:
			waiting = false
		}
	}
	c.drain()
	c.rep.Submit(c.update(nil), false)
	stopRep()
	err := <-repDone
	if fatal != nil {
		err = fatal
	}
	c.log.Info("stopped")
	if err != nil && !errors.Is(err, slum.ErrFenced) && ctx.Err() != nil {
		// Shutting down anyway: a failed last write is worth a log line,
		// not a failed exit.
		c.log.Error("last status write failed", "err", err)
		return nil
	}
	return err
}

// heardFromAll reports whether every server of the fleet has been listed,
// or its list failed, or it is known to be unusable.
func (c *Controller) heardFromAll() bool {
	for _, srv := range c.fleet.Snapshot.Servers {
		s := c.observed[srv.ID]
		if s == nil {
			return false
		}
		if h := s.Health.Health; !s.Listed && s.ListErr == "" && h != slum.HealthDead && h != slum.HealthUnauthorized {
			return false
		}
	}
	return true
}

// firstListWait is how long the first plan waits for servers' first lists.
const firstListWait = time.Second

// busyPlan is how often news of work under way is planned on while the
// executor is busy.
const busyPlan = 5 * time.Second

// recordChunk is how many placements are recorded before the spawns they
// cover are sent.
const recordChunk = 2000

// waitPlan is how soon a plan with old copies waiting on new ones is
// followed by another: long enough for routers following the database to
// see a new serving copy before the old one stops.
const waitPlan = 250 * time.Millisecond

// takeResults takes the results of actions waiting in the mailbox and
// reports whether there were any.
func (c *Controller) takeResults() bool {
	rs := c.results.take()
	for _, r := range rs {
		c.onResult(r)
	}
	return len(rs) > 0
}

// drain takes everything already waiting on the loop's channels, so one
// plan follows a burst of news. It reports whether urgent news came in
// (a server's health changed) or other news worth a plan.
func (c *Controller) drain() (urgent, news bool) {
	for {
		select {
		case s := <-c.snaps:
			u, n := c.onSnapshot(s)
			urgent, news = urgent || u, news || n
		case <-c.results.ready:
			news = c.takeResults() || news
		default:
			return urgent, news
		}
	}
}

// watchRevision sends the desired state's revision whenever it differs
// from the last one sent: another process (the CLI) committed a change.
// It looks at once when the store tells of a commit (Postgres' NOTIFY).
func (c *Controller) watchRevision(ctx context.Context, out chan<- int64) {
	t := time.NewTicker(c.cfg.RevisionPoll)
	defer t.Stop()
	feed := slum.Changes(ctx, c.store)
	last := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-feed:
		}
		rev, err := c.store.Revision(ctx)
		if err != nil || rev == last {
			continue
		}
		last = rev
		c.latestRev.Store(rev)
		select {
		case out <- rev:
		case <-ctx.Done():
			return
		}
	}
}

// reload reads the desired state and brings the per-server pieces in
// line: watchers for new servers, new clients for changed URLs or tokens,
// the fleet's settings for every watcher.
func (c *Controller) reload(ctx context.Context) error {
	snap, err := c.store.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("load the desired state: %w", err)
	}
	c.adopt(snap)
	return nil
}

// adopt makes snap the desired state the controller works from.
func (c *Controller) adopt(snap *slum.Snapshot) {
	f := NewFleet(snap)
	c.fleet = f
	c.intent.Store(f)
	if rev := c.latestRev.Load(); rev < snap.Revision {
		c.latestRev.Store(snap.Revision)
	}
	pol := c.watchPolicy(snap.Settings)
	clients := map[string]Client{}
	for _, s := range snap.Servers {
		rt, ok := c.servers[s.ID]
		key := fingerprint([]string{s.URL, s.Token})
		if ok && rt.key == key {
			rt.srv = s
			rt.watcher.SetPolicy(pol)
			if rt.client != nil {
				clients[s.ID] = rt.client
			}
			continue
		}
		if ok {
			c.stopWatching(s.ID)
		}
		rt = &serverRT{srv: s, key: key}
		c.servers[s.ID] = rt
		if s.Token == "" {
			rt.err = fmt.Errorf("server %s has no token: set one with 'slum server update %s --token-file FILE'", s.ID, s.ID)
		} else if rt.client, rt.err = c.newClient(s.URL, s.Token); rt.err != nil {
			rt.err = fmt.Errorf("server %s: %w", s.ID, rt.err)
		}
		var wc observed.WatchClient = unusable{rt.err}
		if rt.client != nil {
			wc = rt.client
			clients[s.ID] = rt.client
		}
		rt.watcher = observed.NewWatcher(s.ID, wc, pol, c.clock, c.publish)
		if c.running {
			wctx, cancel := context.WithCancel(c.ctx)
			rt.cancel = cancel
			go rt.watcher.Run(wctx)
		}
	}
	for id := range c.servers {
		if _, ok := f.Servers[id]; !ok {
			c.stopWatching(id)
			delete(c.servers, id)
			delete(c.ledger, id) // its placements went with it
			c.exec.DropServer(id)
		}
	}
	c.clients.Store(&clients)
	c.metrics.desiredLoaded.Set(float64(snap.Revision))
}

func (c *Controller) stopWatching(id string) {
	if rt := c.servers[id]; rt != nil && rt.cancel != nil {
		rt.cancel()
	}
	delete(c.observed, id)
}

// publish hands a watcher's snapshot to the loop.
func (c *Controller) publish(s *observed.Snapshot) {
	select {
	case c.snaps <- s:
	case <-c.ctx.Done():
	}
}

// unusable stands in for the client of a server slum cannot talk to.
type unusable struct{ err error }

func (u unusable) Ping(context.Context) error { return u.fail() }
func (u unusable) ListNames(context.Context, map[string]slum.InstanceHealth) (map[string]slum.InstanceHealth, bool, error) {
	return nil, false, u.fail()
}
func (u unusable) Stream(context.Context) error { return u.fail() }
func (u unusable) fail() error {
	return &observed.Error{Op: "connect", Class: observed.ErrUnauthorized, Status: http.StatusUnauthorized, Message: u.err.Error()}
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
	rt, ok := c.servers[s.Server]
	if !ok {
		return false, false // a server that left the fleet
	}
	prev := c.observed[s.Server]
	if prev != nil && prev.Seq >= s.Seq {
		return false, false
	}
	c.observed[s.Server] = s
	urgent = prev == nil || keyOf(prev.Health) != keyOf(s.Health)
	news = prev == nil || prev.Content != s.Content
	if !news && c.last != nil {
		if si, ok := c.fleet.ServerIndex[s.Server]; ok && si < len(c.last.parts) {
			pt := c.last.parts[si]
			news = pt == nil || !pt.quiet
		}
	}
	was := slum.HealthUnknown
	if prev != nil {
		was = prev.Health.Health
	}
	if now := s.Health.Health; now != was {
		c.healthEvent(rt.srv.ID, was, s.Health)
		if si, ok := c.fleet.ServerIndex[s.Server]; ok && now == slum.HealthDead {
			for _, di := range c.fleet.OnServer[si] {
				c.deadAt[c.fleet.Desired[di].Key] = death{server: s.Server, at: s.Health.Since}
			}
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
	c.events = append(c.events, slum.Event{At: h.Since, Object: slum.ServerRef(id), Reason: reason, Message: msg})
	level := slog.LevelInfo
	if h.Health != slum.HealthOnline {
		level = slog.LevelWarn
	}
	c.log.Log(context.Background(), level, "server health changed", "server", id, "from", was, "to", h.Health, "err", h.LastErr)
}

// onResult takes a finished (or dropped) action's news.
func (c *Controller) onResult(r Result) {
	a := r.Action
	if k := a.Key(); c.busy[k] {
		delete(c.busy, k)
		c.busyVer[a.ServerID]++
		if len(c.busy) == 0 {
			// An emptied map keeps its size: let go of the table a fleet
			// converging from empty grew.
			c.busy = map[string]bool{}
		}
	}
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
	if e, ok := c.ledger[a.ServerID][a.Name]; ok {
		e.Touched = r.At
		c.ledger[a.ServerID][a.Name] = e
		c.ledgerVer[a.ServerID]++
	}
	if r.Err == nil {
		delete(c.items, a.Instance)
		// See the results once the server's batch is done: one list for
		// a thousand spawns, not a thousand lists.
		if rt := c.servers[a.ServerID]; rt != nil && !c.busyOn(a.ServerID) {
			rt.watcher.PollSoon()
		}
		switch {
		case a.Kind == Stop && a.Fence:
			c.events = append(c.events, slum.Event{At: r.At, Object: actionObject(a), Reason: slum.ReasonFenced,
				Message: fmt.Sprintf("stopped the stale copy %s on %s: %s", a.Name, a.ServerID, a.Reason)})
		case a.Kind == Stop:
			c.events = append(c.events, slum.Event{At: r.At, Object: actionObject(a), Reason: slum.ReasonStopped,
				Message: fmt.Sprintf("stopped %s on %s: %s", a.Name, a.ServerID, a.Reason)})
		case a.Kind == Spawn && c.spawned < maxSpawnEvents:
			c.spawned++
			c.events = append(c.events, slum.Event{At: r.At, Object: actionObject(a), Reason: slum.ReasonSpawned,
				Message: "spawned " + a.Name + " on " + a.ServerID + ": " + a.Reason})
		case a.Kind == Spawn:
			// Past what the reporter writes one by one: only counted.
			c.moreSpawned++
		}
		return
	}
	if a.Instance != "" {
		c.items[a.Instance] = r.State
	}
	object := actionObject(a)
	switch {
	case r.State.Parked:
		c.events = append(c.events, slum.Event{At: r.At, Object: object, Reason: slum.ReasonParked,
			Message: fmt.Sprintf("%s on %s failed permanently; waiting for its desired state or server to change: %v", a.Kind, a.ServerID, r.Err)})
		c.log.Error("action parked", "kind", a.Kind, "server", a.ServerID, "name", a.Name, "err", r.Err)
	case r.State.Attempts == 1:
		c.events = append(c.events, slum.Event{At: r.At, Object: object, Reason: slum.ReasonRetrying,
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

// busyOn reports whether the loop still waits for an action's result on
// a server.
func (c *Controller) busyOn(server string) bool {
	return c.busyVer[server] > 0 && c.exec.ServerBusy(server)
}

// send performs one action.
func (c *Controller) send(ctx context.Context, a Action) error {
	client := (*c.clients.Load())[a.ServerID]
	if client == nil {
		return fmt.Errorf("server %s: %w: no usable client", a.ServerID, observed.ErrUnavailable)
	}
	switch a.Kind {
	case Spawn:
		_, err := client.Spawn(ctx, a.Process, a.ID)
		return err
	case Stop:
		return client.Stop(ctx, a.Process, a.ID)
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

// check decides, as an action is about to be sent, whether the newest
// desired state still wants it. When a commit has been seen that the loop
// has not loaded yet, it waits (briefly) for the loop to catch up, so an
// instance removed a moment ago is not spawned.
func (c *Controller) check(a Action) error {
	f := c.intent.Load()
	for wait := 0; f.Revision < c.latestRev.Load() && wait < 100; wait++ {
		time.Sleep(5 * time.Millisecond)
		f = c.intent.Load()
	}
	d, ok := f.ByKey[a.Instance]
	wantedHere := ok && d.ServerID == a.ServerID && d.Name == a.Name && d.DesiredState == slum.StateRunning
	switch a.Kind {
	case Spawn:
		if !wantedHere {
			return fmt.Errorf("%s is no longer desired on %s (revision %d)", a.Instance, a.ServerID, f.Revision)
		}
	case Stop:
		if wantedHere {
			return fmt.Errorf("%s is desired on %s again (revision %d)", a.Instance, a.ServerID, f.Revision)
		}
	}
	return nil
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
	if len(plan.Reschedules) > 0 {
		res, err := c.store.Reschedule(ctx, c.fence, plan.Reschedules)
		switch {
		case err != nil:
			c.log.Error("cannot commit failover moves", "err", err)
		case len(res.Moves) > 0:
			now := c.clock.Now()
			for _, id := range plan.FailingOver {
				c.failovers = append(c.failovers, FailoverRecord{Server: id, At: now})
				c.metrics.failovers.Inc()
			}
			c.metrics.moved.Add(float64(len(res.Moves)))
			c.log.Warn("failover: instances placed elsewhere", "moved", len(res.Moves), "servers", plan.FailingOver)
			// The moves are the only change since the snapshot held: apply
			// them to it rather than read the whole desired state again
			// (a second at 100,000 instances, with tenants waiting).
			next, ok := (*slum.Snapshot)(nil), false
			if res.Revision == c.fleet.Revision+1 {
				next, ok = c.fleet.Snapshot.WithInstances(res.Instances, res.Revision)
			}
			if ok {
				c.adopt(next)
			} else if err := c.reload(ctx); err != nil {
				c.log.Error("cannot read the desired state", "err", err)
			}
			plan = c.plan()
		}
	}
	recorded := c.carryOut(ctx, plan)
	took := time.Since(start)
	c.metrics.passDuration.Observe(took.Seconds())
	if !plan.Idle() || len(plan.Held) > 0 {
		c.log.Debug("plan", "revision", plan.Revision, "spawns", len(plan.Spawns), "stops", len(plan.Stops), "waits", len(plan.Waits),
			"record", len(plan.Record), "forget", len(plan.Forget), "held", len(plan.Held), "unplaceable", len(plan.Unplaceable),
			"took", took, "planning", planned, "recording", recorded)
	}
	return plan
}

func (c *Controller) plan() *Plan {
	now := c.clock.Now()
	keep := c.failovers[:0]
	for _, r := range c.failovers {
		if now.Sub(r.At) < time.Minute {
			keep = append(keep, r)
		}
	}
	c.failovers = keep
	c.last = Planner{}.Plan(Input{Now: now, Fleet: c.fleet, Observed: c.observed, Ledger: c.ledger, Busy: c.busy,
		Serving: c.serving, Failovers: c.failovers, Guard: c.cfg.Guard, Prev: c.last,
		LedgerVersion: c.ledgerVer, BusyVersion: c.busyVer})
	return c.last
}

// carryOut acts on a plan; it returns how long recording placements took.
func (c *Controller) carryOut(ctx context.Context, plan *Plan) time.Duration {
	now := c.clock.Now()
	// Who serves whom changed: the router hears of it before any copy is
	// stopped, and the reporter writes it at once for routers and readers
	// of the database.
	urgent := routesChanged(c.routed, c.routedFleet, plan, c.fleet)
	if urgent && c.cfg.OnRoutes != nil {
		c.cfg.OnRoutes(RouteTable(c.fleet, plan))
	}
	// The same routes or new ones, this plan is what they are compared
	// with next (and an older plan is not kept alive for it).
	c.routed, c.routedFleet = plan, c.fleet
	batch := make([]Offering, 0, min(len(plan.Spawns)+len(plan.Stops), recordChunk))
	offer := func(a Action) {
		rt := c.servers[a.ServerID]
		snap := c.observed[a.ServerID]
		if rt != nil && snap != nil {
			batch = append(batch, Offering{Action: a, ObservedAt: snap.ListedAt, ServerKey: rt.key})
		}
	}
	send := func() {
		for i, queued := range c.exec.OfferAll(batch) {
			if queued {
				a := batch[i].Action
				c.busy[a.Key()] = true
				c.busyVer[a.ServerID]++
			}
		}
		batch = batch[:0]
	}
	// A spawn goes out only once its placement is recorded. Placements
	// are recorded a chunk at a time, and the spawns they cover go out
	// after each: a fleet converging from empty starts spawning after the
	// first chunk, not after 100,000 rows. (Spawns come in the order of
	// the placements.)
	pending := plan.Spawns
	owned := func(a Action) bool { _, ok := c.ledger[a.ServerID][a.Name]; return ok }
	var recTook time.Duration
	for chunk := range slices.Chunk(plan.Record, recordChunk) {
		recStart := time.Now()
		err := c.store.RecordPlacements(ctx, c.fence, chunk)
		recTook += time.Since(recStart)
		if err != nil {
			c.log.Error("cannot record placements; their spawns wait", "err", err)
			break
		}
		for _, p := range chunk {
			c.ledgerAdd(p, now)
		}
		for len(pending) > 0 && owned(pending[0]) {
			offer(pending[0])
			pending = pending[1:]
		}
		send()
	}
	for _, a := range pending {
		if owned(a) {
			offer(a)
		}
	}
	for _, a := range plan.Stops {
		offer(a)
	}
	send()
	if len(plan.Spawns)+len(plan.Stops) == 0 {
		// Nothing to do anywhere: the executor forgets the history of
		// work no longer wanted.
		for id := range c.servers {
			c.exec.Retain(id, nil)
		}
	}
	for _, fg := range plan.Forget {
		delete(c.ledger[fg.ServerID], fg.Name)
		c.ledgerVer[fg.ServerID]++
	}
	c.events = append(c.events, planEvents(c.reported, plan, now)...)
	c.reported = plan
	c.replacements(plan, now)
	if c.running {
		c.rep.Submit(c.update(plan), urgent)
	} else {
		c.rep.Merge(c.update(plan))
	}
	c.observeMetrics(plan)
	c.setStatus(plan)
	return recTook
}

// replacements times failovers: from a server's death to its instances
// running elsewhere.
func (c *Controller) replacements(plan *Plan, now time.Time) {
	if len(c.deadAt) == 0 {
		return
	}
	for _, o := range plan.Observations {
		dead, ok := c.deadAt[o.Instance.Key]
		if !ok {
			continue
		}
		switch {
		case o.Phase == slum.PhaseRunning && o.Instance.ServerID != dead.server: // elsewhere, home included
			c.metrics.failoverSeconds.Observe(now.Sub(dead.at).Seconds())
			c.events = append(c.events, slum.Event{At: now, Object: slum.InstanceRef(o.Instance.Key), Reason: slum.ReasonReplaced,
				Message: fmt.Sprintf("runs on %s, %.2fs after %s was declared dead", o.Instance.ServerID, now.Sub(dead.at).Seconds(), dead.server)})
			delete(c.deadAt, o.Instance.Key)
		case o.Phase == slum.PhaseRunning, now.Sub(dead.at) > time.Hour:
			delete(c.deadAt, o.Instance.Key)
		}
	}
}

// update is the reporter's share of a plan.
func (c *Controller) update(plan *Plan) Update {
	items := make(map[slum.InstanceKey]ItemState, len(c.items))
	for k, v := range c.items {
		items[k] = v
	}
	u := Update{Fleet: c.fleet, Plan: plan, Items: items, Events: c.events, MoreSpawned: c.moreSpawned}
	c.spawned, c.moreSpawned = 0, 0
	if plan != nil {
		u.Forget, u.Finish = plan.Forget, plan.Approved
	}
	c.events = nil
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
	c.status.Store(st)
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
	for _, o := range plan.Observations {
		phases[o.Phase]++
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
	c.metrics.queueDepth.Set(float64(c.exec.Depth()))
}

// ---- driving the controller by hand: dry runs, tests, benchmarks

// Sync observes every server now (probe and list, waiting for each), plans
// and, with act, carries the plan out; it returns the plan. It is for
// dry runs, tests and benchmarks, and must not be used while Run runs.
func (c *Controller) Sync(ctx context.Context, fence slum.Fence, act bool) (*Plan, error) {
	if err := c.start(ctx, fence); err != nil {
		return nil, err
	}
	if rev, err := c.store.Revision(ctx); err != nil {
		return nil, err
	} else if rev != c.fleet.Revision {
		if err := c.reload(ctx); err != nil {
			return nil, err
		}
	}
	var wg sync.WaitGroup
	ids := make([]string, 0, len(c.servers))
	for id := range c.servers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	sem := make(chan struct{}, 32)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func(w *observed.Watcher) {
			defer wg.Done()
			w.Refresh(ctx)
			<-sem
		}(c.servers[id].watcher)
	}
	wg.Wait()
	c.drain()
	return c.step(ctx, act), nil
}

// WaitIdle blocks until no action is queued or in flight, takes their
// results, and writes what they reported. For tests and benchmarks.
func (c *Controller) WaitIdle(ctx context.Context) error {
	for c.exec.Depth() > 0 || c.results.waiting() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.results.ready:
			c.takeResults()
		case <-time.After(2 * time.Millisecond):
		}
	}
	c.drain()
	c.rep.Merge(c.update(nil))
	return c.rep.Flush(ctx)
}

// Flush writes the last plan's report now. For dry runs and tests.
func (c *Controller) Flush(ctx context.Context) error { return c.rep.Flush(ctx) }

// death is a server's death, as the instances that ran on it remember it
// until they run elsewhere (an instance failed over twice has another
// home server than the one that died).
type death struct {
	server string
	at     time.Time
}
