package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
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
	spawned     int                      // spawn events since the last flush
	quiet       int                      // spawns since the last flush not logged one by one
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

// HTTPClientFactory makes observed.Clients that share one connection pool,
// so connections are reused across passes.
func HTTPClientFactory(timeout time.Duration) ClientFactory {
	shared := &http.Client{Transport: observed.NewTransport()}
	return func(url, token string) (Client, error) {
		return observed.NewClient(url, token, observed.WithHTTPClient(shared), observed.WithTimeout(timeout))
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
			if c.q != nil {
				c.q.dropServer(id)
			}
		}
	}
	c.metrics.desiredLoaded.Set(float64(rev))
	return f, nil
}

func fingerprint(url, token string) string {
	h := sha256.Sum256([]byte(url + "\x00" + token))
	return hex.EncodeToString(h[:8])
}
