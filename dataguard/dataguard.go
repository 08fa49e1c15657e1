package dataguard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/replica"
	"github.com/slum-fleet/slum/replica/lease"
)

// Source is what the data guard reads of the fleet, and where it writes
// its events.
type Source interface {
	Revision(ctx context.Context) (int64, error)
	Snapshot(ctx context.Context) (*slum.Snapshot, error)
	ListServerStatus(ctx context.Context) ([]slum.ServerStatus, error)
	WriteReport(ctx context.Context, f slum.Fence, r slum.Report) error
}

// ErrNotReady is a Source's answer before it has a desired state to give
// (a controller that has not read its first): the guard waits for it
// without a word.
var ErrNotReady = errors.New("the desired state is not read yet")

// OpenStore opens the replica store of one replica.
type OpenStore func(loc replica.Location) (replica.Store, error)

// Config is how the data guard runs.
type Config struct {
	Interval time.Duration // between two looks at every replicated tenant's lease; default 250 ms
	Timeout  time.Duration // one lease read or write; default 1 s
	TTL      time.Duration // the guards' TTL; default lease.DefaultTiming.TTL
	By       string        // who writes, in the lease ("slum controller")
	Clock    clock.Clock
}

// Guard watches every replicated tenant's lease and acts on it by Decide.
// One goroutine runs it (Run, or Tick in tests).
type Guard struct {
	src     Source
	open    OpenStore
	fence   slum.Fence
	cfg     Config
	log     *slog.Logger
	metrics *Metrics

	revision int64
	loaded   bool
	view     view
	tenants  map[string]*tenant
}

// view is what the guard keeps of the desired state at its revision: the
// servers, and the replicated tenants with where their instances run. It
// is built once per revision and holds nothing of other tenants, so a
// fleet of 100,000 instances with a few replicated tenants costs the
// guard a few of them.
type view struct {
	servers    []string
	replicated []replicatedTenant
}

type replicatedTenant struct {
	tenant slum.Tenant
	placed map[string]string // instance id → server id, of instances that should run
}

func viewOf(snap *slum.Snapshot) view {
	v := view{servers: make([]string, 0, len(snap.Servers))}
	for _, s := range snap.Servers {
		v.servers = append(v.servers, s.ID)
	}
	index := map[string]int{}
	for _, t := range snap.Tenants {
		if t.Data == slum.DataReplicated {
			index[t.ID] = len(v.replicated)
			v.replicated = append(v.replicated, replicatedTenant{tenant: t, placed: map[string]string{}})
		}
	}
	if len(index) == 0 {
		return v
	}
	for _, in := range snap.Instances {
		if i, ok := index[in.TenantID]; ok && in.DesiredState == slum.StateRunning {
			v.replicated[i].placed[in.ID] = in.ServerID
		}
	}
	return v
}

// tenant is what the guard keeps of one replicated tenant.
type tenant struct {
	replica      string
	watcher      *lease.Watcher
	waitingSince time.Time // zero: not waiting
	lastWhy      string
	lastErr      string
}

// New makes a data guard.
func New(src Source, open OpenStore, cfg Config, log *slog.Logger) *Guard {
	if cfg.Interval <= 0 {
		cfg.Interval = 250 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.TTL <= 0 {
		cfg.TTL = lease.DefaultTiming.TTL
	}
	if cfg.By == "" {
		cfg.By = "slum controller"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	return &Guard{src: src, open: open, cfg: cfg, log: log, metrics: NewMetrics(), tenants: map[string]*tenant{}}
}

// S3FromEnv opens replicas on S3 with the credentials and region that
// Litestream and the guards take from the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION).
func S3FromEnv(lookup func(string) (string, bool)) OpenStore {
	return func(loc replica.Location) (replica.Store, error) {
		creds, err := replica.CredentialsFromEnv(lookup)
		if err != nil {
			return nil, err
		}
		region, _ := lookup("AWS_REGION")
		return replica.OpenS3(loc, creds, region)
	}
}

// Metrics are the guard's metrics.
func (g *Guard) Metrics() *Metrics { return g.metrics }

// Run looks at every replicated tenant's lease every Interval until ctx
// ends, writing its events under fence (the controller's). Failures are
// logged and retried: the guard never stops a tenant by failing, it only
// stops helping it.
func (g *Guard) Run(ctx context.Context, fence slum.Fence) error {
	g.fence = fence
	for {
		if err := g.Tick(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrNotReady) {
			g.metrics.errors.Inc()
			g.log.Warn("data guard: cannot read the fleet; replicated tenants' leases are not watched meanwhile", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-g.cfg.Clock.After(g.cfg.Interval):
		}
	}
}

// Tick looks at every replicated tenant's lease once and acts on it.
func (g *Guard) Tick(ctx context.Context) error {
	if err := g.reload(ctx); err != nil {
		return err
	}
	if len(g.view.replicated) == 0 {
		g.metrics.waiting.Set(0)
		return nil
	}
	statuses, err := g.src.ListServerStatus(ctx)
	if err != nil {
		return err
	}
	health := make(map[string]slum.Health, len(g.view.servers))
	for _, id := range g.view.servers {
		health[id] = slum.HealthUnknown
	}
	deadFor := map[string]time.Duration{}
	now := g.cfg.Clock.Now()
	for _, s := range statuses {
		if _, ok := health[s.ServerID]; ok {
			health[s.ServerID] = s.Health
			if s.Health == slum.HealthDead {
				deadFor[s.ServerID] = now.Sub(s.HealthSince)
			}
		}
	}
	var events []slum.Event
	waiting := 0
	for _, r := range g.view.replicated {
		ev, wait := g.tenant(ctx, r.tenant, Input{Tenant: r.tenant.ID, Placed: r.placed, Health: health, DeadFor: deadFor, TTL: g.cfg.TTL})
		events = append(events, ev...)
		if wait {
			waiting++
		}
	}
	g.metrics.waiting.Set(float64(waiting))
	if len(events) > 0 {
		if err := g.src.WriteReport(ctx, g.fence, slum.Report{Events: events}); err != nil {
			g.log.Warn("data guard: cannot write its events", "err", err)
		}
	}
	return nil
}

// reload reads the desired state when its revision moved, and forgets
// tenants no longer replicated.
func (g *Guard) reload(ctx context.Context) error {
	rev, err := g.src.Revision(ctx)
	if err != nil {
		return err
	}
	if g.loaded && rev == g.revision {
		return nil
	}
	snap, err := g.src.Snapshot(ctx)
	if err != nil {
		return err
	}
	g.view, g.revision, g.loaded = viewOf(snap), snap.Revision, true
	replicas := make(map[string]string, len(g.view.replicated))
	for _, r := range g.view.replicated {
		replicas[r.tenant.ID] = r.tenant.Replica
	}
	for id, t := range g.tenants {
		if replica, ok := replicas[id]; !ok || replica != t.replica {
			delete(g.tenants, id)
		}
	}
	return nil
}

// tenant looks at one tenant's lease, acts on it, and says what changed.
func (g *Guard) tenant(ctx context.Context, t slum.Tenant, in Input) ([]slum.Event, bool) {
	st, err := g.state(t)
	if err != nil {
		return g.failed(t.ID, st, fmt.Errorf("cannot open its replica: %w", err)), false
	}
	cctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	in.Lease, err = st.watcher.Observe(cctx)
	if err != nil {
		return g.failed(t.ID, st, fmt.Errorf("cannot read its lease: %w", err)), !st.waitingSince.IsZero()
	}
	st.lastErr = ""
	d := Decide(in)
	var events []slum.Event
	now := g.cfg.Clock.Now()
	ref := slum.TenantRef(t.ID)
	if d.Step != StepNone {
		if err := g.act(cctx, st.watcher, d); err != nil {
			return append(events, g.failed(t.ID, st, fmt.Errorf("cannot %s its lease: %w", d.Step, err))...), true
		}
		g.metrics.actions.WithLabelValues(string(d.Step)).Inc()
		events = append(events, g.event(now, ref, reasonOf(d.Step), d.Why))
	}
	switch {
	case d.Waiting && st.waitingSince.IsZero():
		st.waitingSince = now
		if d.Step == StepNone {
			events = append(events, g.event(now, ref, slum.ReasonWaitingForWriter, d.Why))
		}
	case !d.Waiting && !st.waitingSince.IsZero() && in.Lease.Present && in.Lease.Record.State != lease.StateReleased:
		waited := now.Sub(st.waitingSince)
		g.metrics.waits.Observe(waited.Seconds())
		st.waitingSince = time.Time{}
		events = append(events, g.event(now, ref, slum.ReasonWriterTookOver,
			fmt.Sprintf("%s, after %s waiting for the old writer", d.Why, waited.Round(time.Millisecond))))
	}
	st.lastWhy = d.Why
	return events, d.Waiting
}

// state is the tenant's kept state, its replica opened on first use.
func (g *Guard) state(t slum.Tenant) (*tenant, error) {
	if st, ok := g.tenants[t.ID]; ok && st.watcher != nil {
		return st, nil
	}
	st := &tenant{replica: t.Replica}
	g.tenants[t.ID] = st
	loc, err := replica.ParseLocation(t.Replica)
	if err != nil {
		return st, err
	}
	store, err := g.open(loc)
	if err != nil {
		return st, err
	}
	st.watcher = lease.NewWatcher(store, loc, g.cfg.Clock)
	return st, nil
}

func (g *Guard) act(ctx context.Context, w *lease.Watcher, d Decision) error {
	var err error
	switch d.Step {
	case StepRevoke:
		_, err = w.Revoke(ctx, g.cfg.By, d.Why)
	case StepHandover:
		_, err = w.RequestHandover(ctx, g.cfg.By, d.Why)
	case StepRelease:
		_, err = w.ReleaseFenced(ctx, g.cfg.By, d.Why, g.cfg.TTL)
	}
	return err
}

// failed logs a failure once per distinct message and counts it.
func (g *Guard) failed(id string, st *tenant, err error) []slum.Event {
	g.metrics.errors.Inc()
	if msg := err.Error(); msg != st.lastErr {
		st.lastErr = msg
		g.log.Warn("data guard: "+id+": "+msg+"; retrying", "tenant", id)
	}
	return nil
}

func (g *Guard) event(now time.Time, ref slum.ObjectRef, reason slum.EventReason, msg string) slum.Event {
	g.log.Info("data guard: "+msg, "object", ref, "reason", reason)
	return slum.Event{At: now, Object: ref, Reason: reason, Message: msg}
}

func reasonOf(s Step) slum.EventReason {
	switch s {
	case StepRevoke:
		return slum.ReasonLeaseRevoked
	case StepHandover:
		return slum.ReasonHandoverAsked
	default:
		return slum.ReasonLeaseReleased
	}
}
