package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/observed"
)

// Store is what the controller needs of the desired state.
type Store interface {
	Revision(ctx context.Context) (int64, error)
	ListServers(ctx context.Context) ([]desired.Server, error)
	ListInstances(ctx context.Context) ([]desired.Instance, error)
	ListPlacements(ctx context.Context) ([]desired.Placement, error)
	RecordPlacements(ctx context.Context, ps []desired.Placement) error
	ForgetPlacements(ctx context.Context, ps []desired.Placement) error
	WriteReport(ctx context.Context, r desired.Report) error
}

// Client is what the controller needs of a tenement server.
type Client interface {
	List(ctx context.Context) ([]observed.Instance, error)
	Spawn(ctx context.Context, process, id string) (observed.SpawnResult, error)
	Stop(ctx context.Context, process, id string) error
}

// ClientFactory makes the client for a server.
type ClientFactory func(url, token string) (Client, error)

// Config tunes the controller. Zero fields take the defaults below.
type Config struct {
	PollInterval    time.Duration // resync: every server is polled at least this often
	PollTimeout     time.Duration // one list call
	PollWait        time.Duration // how long a pass waits for healthy servers' polls
	RevisionPoll    time.Duration // how often the database is checked for changes
	ActionTimeout   time.Duration // one spawn or stop call
	Concurrency     int           // actions in flight overall
	PerServer       int           // actions in flight per server
	PollConcurrency int           // list calls in flight
	Backoff         BackoffPolicy
	Health          HealthPolicy
	// A pass that would stop more than MaxStopFraction of the instances
	// slum placed, and more than MaxStopFloor, has all its stops refused.
	MaxStopFraction float64
	MaxStopFloor    int
}

// DefaultConfig is what 'slum run' uses unless told otherwise.
func DefaultConfig() Config {
	return Config{
		PollInterval: 2 * time.Second, PollTimeout: 5 * time.Second, PollWait: time.Second,
		RevisionPoll: 50 * time.Millisecond, ActionTimeout: 10 * time.Second,
		Concurrency: 64, PerServer: 8, PollConcurrency: 32,
		Backoff:         BackoffPolicy{Initial: 500 * time.Millisecond, Max: 30 * time.Second},
		Health:          HealthPolicy{SuspectAfter: 2, OfflineAfter: 30 * time.Second},
		MaxStopFraction: 0.5, MaxStopFloor: 10,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&c.PollInterval, d.PollInterval)
	set(&c.PollTimeout, d.PollTimeout)
	set(&c.PollWait, d.PollWait)
	set(&c.RevisionPoll, d.RevisionPoll)
	set(&c.ActionTimeout, d.ActionTimeout)
	set(&c.Backoff.Initial, d.Backoff.Initial)
	set(&c.Backoff.Max, d.Backoff.Max)
	set(&c.Health.OfflineAfter, d.Health.OfflineAfter)
	for _, p := range []struct {
		v *int
		d int
	}{{&c.Concurrency, d.Concurrency}, {&c.PerServer, d.PerServer},
		{&c.PollConcurrency, d.PollConcurrency}, {&c.Health.SuspectAfter, d.Health.SuspectAfter}, {&c.MaxStopFloor, d.MaxStopFloor}} {
		if *p.v <= 0 {
			*p.v = p.d
		}
	}
	if c.MaxStopFraction <= 0 {
		c.MaxStopFraction = d.MaxStopFraction
	}
	return c
}

// fleet is an immutable snapshot of the desired state.
type fleet struct {
	rev      int64
	servers  []desired.Server
	byServer map[string][]Desired
	byKey    map[string]*Desired // into byServer
}

// serverRT is the controller's runtime state for one server.
type serverRT struct {
	srv       desired.Server
	client    Client
	key       string // fingerprint of URL and token: a change unparks items
	clientErr error
	health    *serverHealth
	snap      map[string]string // running names → tenement health word
	snapAt    time.Time         // when the list call that produced snap started
	snapOK    bool              // the last poll succeeded
	polling   bool
	polledAt  time.Time // when the last poll started
	unmanaged map[string]bool
}

// Controller makes the fleet's tenement servers match the desired state.
type Controller struct {
	store     Store
	cfg       Config
	log       *slog.Logger
	metrics   *Metrics
	newClient ClientFactory
	now       func() time.Time
	pollSem   *semaphore.Weighted
	trigger   chan struct{}
	ready     atomic.Bool

	q *queue

	mu          sync.Mutex
	fleet       *fleet
	servers     map[string]*serverRT
	ledger      map[string]map[string]struct{} // server → tenement names slum placed
	memo        map[string]statusMemo          // by tenant:instance
	events      []desired.Event
	forget      []desired.Placement
	statuses    []desired.InstanceStatus // from finished actions, not yet written
	lastRefusal int
}

// New returns a controller. metrics may be nil.
func New(store Store, newClient ClientFactory, cfg Config, log *slog.Logger, metrics *Metrics) *Controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics()
	}
	cfg = cfg.withDefaults()
	return &Controller{store: store, cfg: cfg, log: log, metrics: metrics, newClient: newClient, now: time.Now,
		pollSem: semaphore.NewWeighted(int64(cfg.PollConcurrency)), trigger: make(chan struct{}, 1),
		servers: map[string]*serverRT{}, ledger: map[string]map[string]struct{}{},
		memo: map[string]statusMemo{}}
}

// HTTPClientFactory makes observed.Clients sharing one connection pool.
func HTTPClientFactory(timeout time.Duration) ClientFactory {
	shared := observed.NewTransport()
	hc := &httpClientPool{transport: shared}
	return func(url, token string) (Client, error) {
		return observed.NewClient(url, token, observed.WithHTTPClient(hc.client()), observed.WithTimeout(timeout))
	}
}

// Ready reports whether a first pass has completed.
func (c *Controller) Ready() bool { return c.ready.Load() }

// Metrics returns the controller's metrics.
func (c *Controller) Metrics() *Metrics { return c.metrics }

// kick asks for a pass soon.
func (c *Controller) kick() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx ends, then lets in-flight actions finish,
// writes what they changed and returns.
func (c *Controller) Run(ctx context.Context) error {
	if err := c.start(ctx); err != nil {
		return err
	}
	go c.watchRevision(ctx)
	go c.flushLoop(ctx)
	resync := time.NewTicker(c.cfg.PollInterval)
	defer resync.Stop()
	for {
		if _, err := c.pass(ctx, false); err != nil && ctx.Err() == nil {
			c.log.Error("pass failed", "err", err)
		}
		c.ready.Store(true)
		select {
		case <-ctx.Done():
			return c.shutdown()
		case <-c.trigger:
		case <-resync.C:
		}
	}
}

// start loads the ownership ledger and starts the work queue.
func (c *Controller) start(ctx context.Context) error {
	ps, err := c.store.ListPlacements(ctx)
	if err != nil {
		return fmt.Errorf("load placements: %w", err)
	}
	c.mu.Lock()
	for _, p := range ps {
		c.ledgerAdd(p)
	}
	c.mu.Unlock()
	c.q = newQueue(ctx, c.cfg.Concurrency, c.cfg.PerServer, c.cfg.ActionTimeout, c.cfg.Backoff, c.exec, c.done,
		func(d time.Duration) { time.AfterFunc(d, c.kick) })
	c.log.Info("controller started", "placements", len(ps), "poll_interval", c.cfg.PollInterval)
	return nil
}

func (c *Controller) shutdown() error {
	c.log.Info("stopping: waiting for in-flight actions")
	c.q.wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.flush(ctx, nil)
	c.log.Info("stopped")
	return err
}

// watchRevision kicks a pass as soon as the desired state's revision
// differs from the one the controller works from: another process (the
// CLI) committed a change.
func (c *Controller) watchRevision(ctx context.Context) {
	t := time.NewTicker(c.cfg.RevisionPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rev, err := c.store.Revision(ctx)
		if err != nil {
			continue
		}
		c.mu.Lock()
		stale := c.fleet == nil || c.fleet.rev != rev
		c.mu.Unlock()
		if stale {
			c.kick()
		}
	}
}

func (c *Controller) ledgerAdd(p desired.Placement) {
	m, ok := c.ledger[p.ServerID]
	if !ok {
		m = map[string]struct{}{}
		c.ledger[p.ServerID] = m
	}
	m[p.Name] = struct{}{}
}

func (c *Controller) ledgerSize() int {
	n := 0
	for _, m := range c.ledger {
		n += len(m)
	}
	return n
}

// loadFleet returns the desired state, reading it again only when its
// revision changed, and brings the per-server runtime state in line.
func (c *Controller) loadFleet(ctx context.Context) (*fleet, error) {
	rev, err := c.store.Revision(ctx)
	if err != nil {
		return nil, fmt.Errorf("read revision: %w", err)
	}
	c.mu.Lock()
	cur := c.fleet
	c.mu.Unlock()
	if cur != nil && cur.rev == rev {
		return cur, nil
	}
	servers, err := c.store.ListServers(ctx)
	if err != nil {
		return nil, fmt.Errorf("load servers: %w", err)
	}
	insts, err := c.store.ListInstances(ctx)
	if err != nil {
		return nil, fmt.Errorf("load instances: %w", err)
	}
	f := &fleet{rev: rev, servers: servers, byServer: map[string][]Desired{}, byKey: make(map[string]*Desired, len(insts))}
	for _, in := range insts {
		f.byServer[in.ServerID] = append(f.byServer[in.ServerID], NewDesired(in))
	}
	for id := range f.byServer {
		ds := f.byServer[id]
		for i := range ds {
			f.byKey[ds[i].Key] = &ds[i]
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fleet = f
	seen := map[string]bool{}
	for _, s := range servers {
		seen[s.ID] = true
		rt, ok := c.servers[s.ID]
		if !ok {
			rt = &serverRT{health: newServerHealth(c.now()), unmanaged: map[string]bool{}}
			c.servers[s.ID] = rt
		}
		rt.srv = s
		if key := fingerprint(s.URL, s.Token); key != rt.key {
			rt.key = key
			rt.client, rt.clientErr = nil, nil
			if s.Token == "" {
				rt.clientErr = fmt.Errorf("server %s has no token: set one with 'slum server update %s --token-file FILE'", s.ID, s.ID)
			} else if rt.client, rt.clientErr = c.newClient(s.URL, s.Token); rt.clientErr != nil {
				rt.clientErr = fmt.Errorf("server %s: %w", s.ID, rt.clientErr)
			}
		}
	}
	for id := range c.servers {
		if !seen[id] {
			delete(c.servers, id)
			delete(c.ledger, id)
		}
	}
	c.metrics.desiredLoaded.Set(float64(rev))
	return f, nil
}

func fingerprint(url, token string) string {
	h := sha256.Sum256([]byte(url + "\x00" + token))
	return hex.EncodeToString(h[:8])
}

// PassResult says what one pass found and did.
type PassResult struct {
	Servers   int
	Observed  int // servers whose state the pass could read
	Spawns    []Action
	Stops     []Action
	Holds     []Hold
	Unmanaged int
	Refused   bool // stops refused by the mass-stop guard
	Duration  time.Duration
}

// Pass runs one pass and waits for every server's poll, for tests,
// benchmarks and dry runs. With act false it only plans.
func (c *Controller) Pass(ctx context.Context, act bool) (*PassResult, error) {
	if c.q == nil {
		if err := c.start(ctx); err != nil {
			return nil, err
		}
	}
	if !act {
		return c.plan(ctx)
	}
	return c.pass(ctx, true)
}

// WaitIdle blocks until no action is queued or in flight, then writes
// what the finished actions reported.
func (c *Controller) WaitIdle(ctx context.Context) error {
	for c.q.depth() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return c.flush(ctx, nil)
}

// flushLoop writes what finished actions report between passes.
func (c *Controller) flushLoop(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		pending := len(c.statuses) + len(c.events) + len(c.forget)
		c.mu.Unlock()
		if pending > 0 {
			if err := c.flush(ctx, nil); err != nil {
				c.log.Error("cannot write status", "err", err)
			}
		}
	}
}

// Close stops the work queue of a controller driven by Pass, letting
// in-flight actions finish.
func (c *Controller) Close(ctx context.Context) error {
	if c.q == nil {
		return nil
	}
	return c.flush(ctx, nil)
}

// pollAll lists every server without a list call in flight. It waits for
// the servers that answered their last poll, up to PollWait (or, with
// waitAll, for every poll); the rest finish in the background and kick a
// pass when they do.
func (c *Controller) pollAll(ctx context.Context, f *fleet, waitAll bool) {
	var wg sync.WaitGroup
	c.mu.Lock()
	for _, s := range f.servers {
		rt := c.servers[s.ID]
		if rt == nil || rt.polling {
			continue
		}
		if rt.client == nil {
			prev, changed := rt.health.observe(c.now(), fmt.Errorf("%w: %v", observed.ErrUnauthorized, rt.clientErr), c.cfg.Health)
			rt.snapOK = false
			if changed {
				c.healthEvent(s.ID, prev, rt.health)
			}
			continue
		}
		healthy := rt.health.state == HealthOnline || rt.health.state == HealthUnknown
		if !healthy && !waitAll && c.now().Sub(rt.polledAt) < c.cfg.PollInterval {
			// A failing server is polled once per interval, not once per
			// pass: passes come as often as the healthy servers need.
			continue
		}
		rt.polling, rt.polledAt = true, c.now()
		wait := waitAll || healthy
		if wait {
			wg.Add(1)
		}
		go func(id string, rt *serverRT, client Client, wait bool) {
			if wait {
				defer wg.Done()
			}
			if ok := c.poll(ctx, id, rt, client); ok && !wait {
				c.kick() // act on what a late answer shows
			}
		}(s.ID, rt, rt.client, wait)
	}
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	limit := c.cfg.PollWait
	if waitAll {
		limit = c.cfg.PollTimeout + time.Second
	}
	select {
	case <-done:
	case <-time.After(limit):
		// Stragglers kick a pass when they finish.
		go func() { <-done; c.kick() }()
	case <-ctx.Done():
	}
}

// poll lists one server and records what it found; it reports whether
// the list succeeded.
func (c *Controller) poll(ctx context.Context, id string, rt *serverRT, client Client) bool {
	if err := c.pollSem.Acquire(ctx, 1); err != nil {
		c.mu.Lock()
		rt.polling = false
		c.mu.Unlock()
		return false
	}
	start := c.now()
	pctx, cancel := context.WithTimeout(ctx, c.cfg.PollTimeout)
	list, err := client.List(pctx)
	cancel()
	c.pollSem.Release(1)
	c.metrics.pollDuration.Observe(c.now().Sub(start).Seconds())
	if ctx.Err() != nil && err != nil {
		c.mu.Lock()
		rt.polling = false
		c.mu.Unlock()
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rt.polling = false
	prev, changed := rt.health.observe(c.now(), err, c.cfg.Health)
	if changed {
		c.healthEvent(id, prev, rt.health)
	}
	if err != nil {
		rt.snapOK = false
		c.log.Warn("poll failed", "server", id, "health", rt.health.state, "err", err)
		return false
	}
	// Keep only what the diff reads, copied out of the answer's buffer.
	snap := make(map[string]string, len(list))
	for _, in := range list {
		snap[strings.Clone(in.Name)] = internHealth(in.Health)
	}
	rt.snap, rt.snapAt, rt.snapOK = snap, start, true
	return true
}

func (c *Controller) healthEvent(id string, prev Health, h *serverHealth) {
	msg := fmt.Sprintf("server is %s (was %s)", h.state, prev)
	if h.lastErr != "" && h.state != HealthOnline {
		msg += ": " + h.lastErr
	}
	reason := map[Health]string{HealthOnline: "ServerOnline", HealthSuspect: "ServerSuspect", HealthOffline: "ServerOffline",
		HealthUnauthorized: "ServerUnauthorized", HealthUnknown: "ServerUnknown"}[h.state]
	c.events = append(c.events, desired.Event{At: c.now(), Object: "server/" + id, Reason: reason, Message: msg})
	level := slog.LevelInfo
	if h.state != HealthOnline {
		level = slog.LevelWarn
	}
	c.log.Log(context.Background(), level, "server health changed", "server", id, "from", prev, "to", h.state, "err", h.lastErr)
}

// elsewhere answers DiffServer's question for a moved instance.
func (c *Controller) elsewhere(f *fleet) func(tenant, instance string) (string, bool, bool) {
	return func(tenant, instance string) (string, bool, bool) {
		d, ok := f.byKey[tenant+":"+instance]
		if !ok || d.DesiredState != desired.StateRunning {
			return "", false, false
		}
		if d.Mode == desired.ModeOnDemand {
			return d.ServerID, true, true
		}
		rt := c.servers[d.ServerID]
		if rt == nil || !rt.snapOK {
			return d.ServerID, false, true
		}
		_, running := rt.snap[d.Name]
		return d.ServerID, running, true
	}
}

// diffAll diffs every server. Servers that could not be read get no
// actions and their instances' phase is unknown. Called with c.mu held.
func (c *Controller) diffAll(f *fleet) (map[string]*ServerPlan, *PassResult) {
	res := &PassResult{Servers: len(f.servers)}
	plans := make(map[string]*ServerPlan, len(f.servers))
	where := c.elsewhere(f)
	for _, s := range f.servers {
		rt := c.servers[s.ID]
		if rt == nil || !rt.snapOK {
			continue
		}
		res.Observed++
		p := DiffServer(ServerInput{ServerID: s.ID, Desired: f.byServer[s.ID], Observed: rt.snap, Owned: c.ledger[s.ID], Elsewhere: where})
		plans[s.ID] = &p
		res.Spawns = append(res.Spawns, p.Spawns...)
		res.Stops = append(res.Stops, p.Stops...)
		res.Holds = append(res.Holds, p.Holds...)
		res.Unmanaged += len(p.Unmanaged)
	}
	// The mass-stop guard: an empty or wrong database must not empty the
	// fleet.
	managed := c.ledgerSize()
	if n := len(res.Stops); n > c.cfg.MaxStopFloor && float64(n) > c.cfg.MaxStopFraction*float64(managed) {
		res.Refused = true
	}
	return plans, res
}

// plan is a dry run: poll everything, diff, act on nothing.
func (c *Controller) plan(ctx context.Context) (*PassResult, error) {
	start := c.now()
	f, err := c.loadFleet(ctx)
	if err != nil {
		return nil, err
	}
	c.pollAll(ctx, f, true)
	c.mu.Lock()
	_, res := c.diffAll(f)
	c.mu.Unlock()
	res.Duration = c.now().Sub(start)
	return res, nil
}

// pass observes, diffs and dispatches once.
func (c *Controller) pass(ctx context.Context, waitAll bool) (*PassResult, error) {
	start := c.now()
	f, err := c.loadFleet(ctx)
	if err != nil {
		return nil, err
	}
	c.pollAll(ctx, f, waitAll)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	c.mu.Lock()
	plans, res := c.diffAll(f)
	if res.Refused {
		if c.lastRefusal != len(res.Stops) {
			msg := fmt.Sprintf("refused to stop %d of the %d instances slum placed (more than %.0f%%); fix the desired state, or rerun with a higher --max-stop-fraction",
				len(res.Stops), c.ledgerSize(), 100*c.cfg.MaxStopFraction)
			c.events = append(c.events, desired.Event{At: c.now(), Object: "fleet", Reason: "MassStopRefused", Message: msg})
			c.log.Error("mass stop refused", "stops", len(res.Stops), "placed", c.ledgerSize(), "max_fraction", c.cfg.MaxStopFraction)
			c.metrics.stopRefusals.Inc()
		}
		c.lastRefusal = len(res.Stops)
	} else {
		c.lastRefusal = 0
	}
	var record []desired.Placement
	for _, p := range plans {
		for _, r := range p.Record {
			if _, ok := c.ledger[r.ServerID][r.Name]; !ok {
				record = append(record, r)
			}
		}
	}
	c.mu.Unlock()

	// The ledger is written before any spawn is sent.
	recorded := true
	if err := c.store.RecordPlacements(ctx, record); err != nil {
		recorded = false
		c.log.Error("cannot record placements; spawns wait", "err", err)
	} else {
		c.mu.Lock()
		for _, r := range record {
			c.ledgerAdd(r)
		}
		c.mu.Unlock()
	}

	statuses := c.dispatch(f, plans, res, recorded)
	if err := c.flush(ctx, statuses); err != nil {
		c.log.Error("cannot write status", "err", err)
	}
	res.Duration = c.now().Sub(start)
	c.metrics.passDuration.Observe(res.Duration.Seconds())
	c.metrics.queueDepth.Set(float64(c.q.depth()))
	if n := len(res.Spawns) + len(res.Stops); n > 0 || res.Refused {
		c.log.Info("pass", "servers", res.Servers, "observed", res.Observed, "spawns", len(res.Spawns), "stops", len(res.Stops),
			"holds", len(res.Holds), "unmanaged", res.Unmanaged, "refused", res.Refused, "took", res.Duration)
	}
	return res, nil
}

// dispatch offers the plans' actions to the queue and computes statuses.
func (c *Controller) dispatch(f *fleet, plans map[string]*ServerPlan, res *PassResult, recorded bool) []desired.InstanceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []desired.InstanceStatus
	now := c.now()
	phases := map[string]int{}
	servers := map[Health]int{}
	unmanaged := 0
	for _, s := range f.servers {
		rt := c.servers[s.ID]
		if rt == nil {
			continue
		}
		servers[rt.health.state]++
		p, ok := plans[s.ID]
		if !ok {
			for i := range f.byServer[s.ID] {
				st := c.status(&f.byServer[s.ID][i], PhaseUnknown, "", rt.health.lastErr, 0)
				phases[st.Phase]++
				out = c.changed(out, st, now)
			}
			continue
		}
		keep := map[string]bool{}
		states := map[string]itemState{}
		if recorded {
			for _, a := range p.Spawns {
				keep[a.Name] = true
				states[a.Name] = c.q.offer(a, rt.snapAt, rt.key)
			}
		}
		if !res.Refused {
			for _, a := range p.Stops {
				keep[a.Name] = true
				states[a.Name] = c.q.offer(a, rt.snapAt, rt.key)
			}
		}
		c.q.retain(s.ID, keep)
		for _, o := range p.Observations {
			st := states[o.Instance.Name]
			phase, lastErr := o.Phase, st.lastErr
			if st.parked {
				phase = PhaseFailed
			}
			if o.Converged {
				m := c.memo[o.Instance.Key]
				m.obsGen = o.Instance.Generation
				c.memo[o.Instance.Key] = m
			}
			s := c.status(o.Instance, phase, o.Health, lastErr, st.attempts)
			phases[s.Phase]++
			out = c.changed(out, s, now)
		}
		for _, name := range p.Unmanaged {
			if !rt.unmanaged[name] {
				rt.unmanaged[name] = true
				c.events = append(c.events, desired.Event{At: now, Object: "server/" + s.ID, Reason: "Unmanaged",
					Message: name + " runs there but slum did not place it; it is left alone"})
			}
		}
		unmanaged += len(p.Unmanaged)
		c.forget = append(c.forget, p.Forget...)
		for _, fg := range p.Forget {
			delete(c.ledger[fg.ServerID], fg.Name)
		}
	}
	for _, h := range []Health{HealthUnknown, HealthOnline, HealthSuspect, HealthOffline, HealthUnauthorized} {
		c.metrics.servers.WithLabelValues(string(h)).Set(float64(servers[h]))
	}
	for _, ph := range []string{PhasePending, PhaseRunning, PhaseFailed, PhaseUnknown, PhaseStopped, PhaseIdle} {
		c.metrics.instances.WithLabelValues(ph).Set(float64(phases[ph]))
	}
	c.metrics.unmanaged.Set(float64(unmanaged))
	return out
}

func (c *Controller) status(d *Desired, phase, health, lastErr string, attempts int64) keyedStatus {
	return keyedStatus{d.Key, desired.InstanceStatus{TenantID: d.TenantID, InstanceID: d.ID, ServerID: d.ServerID, Phase: phase, Health: health,
		LastError: lastErr, Attempts: attempts, ObservedGeneration: c.memo[d.Key].obsGen}}
}

// statusMemo is what the controller remembers of each instance between
// passes: a fingerprint of the status last written (to write only
// changes) and the last generation it saw converged.
type statusMemo struct {
	written uint64
	obsGen  int64
}

func statusHash(st desired.InstanceStatus) uint64 {
	h := fnv.New64a()
	for _, s := range []string{st.TenantID, st.InstanceID, st.ServerID, st.Phase, st.Health, st.LastError} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(st.Attempts))
	binary.LittleEndian.PutUint64(b[8:], uint64(st.ObservedGeneration))
	h.Write(b[:])
	return h.Sum64() | 1 // never 0, which means "never written"
}

// internHealth shares the few words tenement uses.
func internHealth(h string) string {
	for _, w := range []string{"healthy", "unknown", "degraded", "unhealthy", "failed"} {
		if h == w {
			return w
		}
	}
	return strings.Clone(h)
}

// keyedStatus is a status with its instance's key.
type keyedStatus struct {
	key string
	desired.InstanceStatus
}

// changed appends st when it differs from what was last written.
func (c *Controller) changed(out []desired.InstanceStatus, ks keyedStatus, now time.Time) []desired.InstanceStatus {
	key, st := ks.key, ks.InstanceStatus
	m := c.memo[key]
	h := statusHash(st)
	if m.written == h {
		return out
	}
	m.written = h
	c.memo[key] = m
	st.UpdatedAt = now
	return append(out, st)
}

// flush writes statuses, events and forgotten placements, batched in one
// transaction each.
func (c *Controller) flush(ctx context.Context, statuses []desired.InstanceStatus) error {
	c.mu.Lock()
	events, forget := c.events, c.forget
	c.events, c.forget = nil, nil
	statuses = append(c.statuses, statuses...)
	c.statuses = nil
	var servers []desired.ServerStatus
	now := c.now()
	for id, rt := range c.servers {
		servers = append(servers, desired.ServerStatus{ServerID: id, Health: string(rt.health.state), LastError: rt.health.lastErr,
			ConsecutiveFailures: int64(rt.health.failures), LastSeenAt: rt.health.lastSeen, Instances: int64(len(rt.snap)),
			Unmanaged: int64(len(rt.unmanaged)), UpdatedAt: now})
	}
	c.mu.Unlock()
	sort.Slice(servers, func(i, j int) bool { return servers[i].ServerID < servers[j].ServerID })
	err := c.store.ForgetPlacements(ctx, forget)
	if err != nil {
		c.mu.Lock()
		c.forget = append(c.forget, forget...)
		c.mu.Unlock()
	}
	return errors.Join(err, c.store.WriteReport(ctx, desired.Report{Instances: statuses, Servers: servers, Events: events}))
}

// exec performs one action.
func (c *Controller) exec(ctx context.Context, a Action) error {
	c.mu.Lock()
	rt := c.servers[a.ServerID]
	var client Client
	if rt != nil {
		client = rt.client
	}
	c.mu.Unlock()
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

// done records an action's result.
func (c *Controller) done(a Action, err error, st itemState, idle bool) {
	result := "ok"
	switch {
	case err == nil:
	case st.parked:
		result = "permanent"
	default:
		result = "retry"
	}
	c.metrics.actions.WithLabelValues(string(a.Kind), result).Inc()
	c.mu.Lock()
	now := c.now()
	if a.Instance != "" && err != nil && c.fleet != nil {
		if d, ok := c.fleet.byKey[a.Instance]; ok && d.ServerID == a.ServerID {
			phase := PhasePending
			if st.parked {
				phase = PhaseFailed
			}
			c.statuses = c.changed(c.statuses, c.status(d, phase, "", st.lastErr, st.attempts), now)
		}
	}
	object := "server/" + a.ServerID + "/" + a.Name
	if a.Instance != "" {
		object = "instance/" + a.Instance
	}
	switch {
	case err == nil && a.Kind == Stop:
		c.forget = append(c.forget, desired.Placement{ServerID: a.ServerID, Name: a.Name})
		delete(c.ledger[a.ServerID], a.Name)
		c.events = append(c.events, desired.Event{At: now, Object: object, Reason: "Stopped", Message: fmt.Sprintf("stopped %s on %s: %s", a.Name, a.ServerID, a.Reason)})
	case err == nil && st.attempts == 0 && a.Kind == Spawn:
		// Successful spawns are too many to log one by one at scale; the
		// phase in the status says it.
	case st.parked:
		c.events = append(c.events, desired.Event{At: now, Object: object, Reason: "Parked",
			Message: fmt.Sprintf("%s on %s failed permanently; waiting for its desired state or server to change: %v", a.Kind, a.ServerID, err)})
		c.log.Error("action parked", "kind", a.Kind, "server", a.ServerID, "name", a.Name, "err", err)
	case st.attempts == 1:
		c.events = append(c.events, desired.Event{At: now, Object: object, Reason: "Retrying",
			Message: fmt.Sprintf("%s on %s failed, retrying with backoff: %v", a.Kind, a.ServerID, err)})
		c.log.Warn("action failed", "kind", a.Kind, "server", a.ServerID, "name", a.Name, "attempts", st.attempts, "err", err)
	default:
		c.log.Debug("action failed", "kind", a.Kind, "server", a.ServerID, "name", a.Name, "attempts", st.attempts, "err", err)
	}
	c.mu.Unlock()
	if idle {
		c.kick()
	}
}
