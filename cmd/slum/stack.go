package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/dataguard"
	"github.com/slum-fleet/slum/leader"
	"github.com/slum-fleet/slum/leadmetrics"
	"github.com/slum-fleet/slum/rebalance"
	"github.com/slum-fleet/slum/reconcile"
	"github.com/slum-fleet/slum/router"
	"github.com/slum-fleet/slum/routes"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
	"github.com/slum-fleet/slum/traffic"
)

// stackOptions say how to run the controller and what runs beside it.
type stackOptions struct {
	cfg         reconcile.Config
	route       *routeFlags    // nil: no router
	api         *apiServeFlags // nil: no API
	metricsAddr string         // "": no metrics server
	profiling   bool           // serve /debug/pprof/ beside the metrics
	leaseTTL    time.Duration
	// traffic is the slot of the API's traffic history; 0: 5 s.
	traffic time.Duration
	log     *slog.Logger
}

// stack is a controller with its router, API and metrics server: what
// 'slum run' runs. The controller leads or stands by in turn (package
// leader), a fresh one each term; the router, the API and the metrics
// outlive every term, so routing never fate-shares with the lease or the
// database. The demo and the experiments run the same stack over a local
// fleet, so what they show is what users run.
type stack struct {
	Elector     *leader.Elector
	Proxy       *router.Proxy // nil without a router
	RouterAddr  string        // where the router listens, when there is one
	APIURL      string        // where the API and dashboard are served, when they are
	MetricsAddr string
	ctrl        atomic.Pointer[reconcile.Controller] // this term's, or the last one's
	done        chan error
	cancel      context.CancelFunc
	cleanup     []func()
}

// startStack starts the router, the API and the metrics server, and the
// elector, which leads (one controller per database) or stands by.
func startStack(ctx context.Context, st *store.Store, o stackOptions) (*stack, error) {
	s := &stack{done: make(chan error, 1)}
	fail := func(err error) (*stack, error) {
		s.close()
		return nil, err
	}
	el, err := leader.New(st, leader.Config{Timing: leader.DefaultTiming(o.leaseTTL), Log: o.log})
	if err != nil {
		return nil, usageError{err}
	}
	s.Elector = el
	cfg := o.cfg
	gatherers := prometheus.Gatherers{}
	var health []http.Handler // the router's /healthz, when there is one
	if o.route != nil {
		// The router outlives every term: it stops after the elector,
		// letting in-flight requests finish.
		rctx, stopRouter := context.WithCancel(context.WithoutCancel(ctx))
		p, addr, done, err := o.route.start(rctx, o.log)
		if err != nil {
			stopRouter()
			return fail(err)
		}
		s.cleanup = append(s.cleanup, func() { stopRouter(); <-done })
		s.Proxy, s.RouterAddr = p, addr
		p.SetSource("controller")
		seedRoutes(ctx, st, p, o.log)
		cfg.OnRoutes = func(t *routes.Table) { setRoutes(p, t, o.log) }
		health = append(health, p.HealthHandler())
		gatherers = append(gatherers, p.Metrics().Registry)
	}
	if o.api != nil && s.Proxy != nil {
		// The router in this process reports to the API here directly.
		api := *o.api
		o.api = &api
		hist := traffic.New(traffic.Config{Resolution: o.traffic})
		api.traffic = hist
		fctx, stopFeed := context.WithCancel(context.WithoutCancel(ctx))
		s.cleanup = append(s.cleanup, stopFeed)
		go traffic.Feed(fctx, nil, trafficReportEvery, traffic.SourceName("in-process"), s.Proxy.Metrics().Traffic,
			func(_ context.Context, r traffic.Report) error { return hist.Record(r) },
			func(err error) { o.log.Warn("traffic not recorded", "err", err) })
	}
	if o.api != nil {
		// The API, like the router, stops after the elector.
		actx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
		url, done, err := o.api.start(actx, st, o.log)
		if err != nil {
			stopAPI()
			return fail(err)
		}
		s.cleanup = append(s.cleanup, func() { stopAPI(); <-done })
		s.APIURL = url
	}
	metrics := reconcile.NewMetrics()
	dg := dataguard.New(guardSource{Store: st, ctrl: &s.ctrl}, dataguard.S3FromEnv(os.LookupEnv), dataguard.Config{}, o.log)
	gatherers = append(gatherers, metrics.Registry, el.Metrics().Registry, dg.Metrics().Registry, leadmetrics.New(st).Registry())
	if o.metricsAddr != "" {
		srv, err := serveMetrics(o.metricsAddr, gatherers, s.readyz, o.profiling, health...)
		if err != nil {
			return fail(err)
		}
		s.cleanup = append(s.cleanup, func() { srv.Close() })
		s.MetricsAddr = srv.Addr
		o.log.Info("serving metrics", "addr", "http://"+srv.Addr+"/metrics")
	}
	ectx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	if st.Engine() == "sqlite" {
		s.markRuns(ectx, st, el, o.log)
	}
	o.log.Info("slum run", "db", st.Where(), "holder", el.Holder())
	go func() {
		s.done <- el.Run(ectx, leader.Hooks{
			Lead:    s.lead(st, el, cfg, metrics, dg, o.log),
			Standby: s.standby(st),
		})
	}()
	return s, nil
}

// lead is a term of leadership: a fresh controller, acting only while
// the elector may act under the term's lease, with the rebalancer and the
// replicated tenants' data guard beside it.
func (s *stack) lead(st *store.Store, el *leader.Elector, cfg reconcile.Config, metrics *reconcile.Metrics, dg *dataguard.Guard, log *slog.Logger) func(context.Context, slum.Lease) error {
	return func(ctx context.Context, lease slum.Lease) error {
		cfg := cfg
		cfg.MayAct = func() error { return el.MayAct(lease.Epoch) }
		c := reconcile.New(st, reconcile.HTTPClientFactory(cfg.ActionTimeout), cfg, log, metrics)
		s.ctrl.Store(c)
		// Beside the controller, for this term only: the rebalancer (off
		// unless the fleet's setting is on) and the data guard. Both have
		// stopped before the term is over, so neither acts after it.
		bctx, stopBeside := context.WithCancel(ctx)
		var beside sync.WaitGroup
		beside.Go(func() { rebalance.NewAuto(st, clock.Real{}, log).Run(bctx) })
		beside.Go(func() { _ = dg.Run(bctx, lease.Fence()) })
		defer func() { stopBeside(); beside.Wait() }()
		return c.Run(ctx, lease.Fence())
	}
}

// markRuns keeps a run marker beside the SQLite database while the stack
// runs, so no command creates (or suggests creating) a new database where
// one was deleted under this controller.
func (s *stack) markRuns(ctx context.Context, st *store.Store, el *leader.Elector, log *slog.Logger) {
	mk, err := sqlite.WriteRunMarker(st.Where(), el.Holder(), leader.HolderGone)
	if err != nil {
		log.Warn("could not note beside the database that this controller uses it", "err", err)
		return
	}
	mctx, stopMarking := context.WithCancel(ctx)
	marked := make(chan struct{})
	go func() { defer close(marked); mark(mctx, el, mk) }()
	s.cleanup = append(s.cleanup, func() { stopMarking(); <-marked; mk.Remove() })
}

// trafficReportEvery is how often a router reports its counters to the
// traffic history: more often than its slots, so each slot gets its share.
const trafficReportEvery = time.Second

// mark keeps the run marker saying whether the elector leads, and why not,
// checked every 200 ms, until ctx ends.
func mark(ctx context.Context, el *leader.Elector, mk *sqlite.Marker) {
	var last leader.Status
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if st := el.Status(); st.Leading != last.Leading || st.Reason != last.Reason {
			if mk.Update(st.Leading, st.Reason) == nil {
				last = st
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// standby is what the stack does while it does not lead: its router
// follows the database (the leader's decisions, when another process
// leads), as 'slum route --db' does, keeping its last table while the
// database cannot be read (its /healthz and slum_router_source_up say so).
func (s *stack) standby(st *store.Store) func(ctx context.Context) {
	if s.Proxy == nil {
		return nil
	}
	return func(ctx context.Context) {
		s.Proxy.SetSource(st.Where())
		defer s.Proxy.SetSource("controller")
		routes.FollowInto(ctx, st, 50*time.Millisecond, s.Proxy)
	}
}

// setRoutes hands the router a table of this term's controller: its
// source is up.
func setRoutes(p *router.Proxy, t *routes.Table, log *slog.Logger) {
	if err := p.Update(t); err != nil {
		log.Error("route table refused", "err", err)
	}
}

// Controller is the controller of the current term (or of the last one,
// or nil before the first).
func (s *stack) Controller() *reconcile.Controller { return s.ctrl.Load() }

// Wait blocks until the stack stops (its context ended), stops what runs
// beside the elector, and returns nil on a clean stop.
func (s *stack) Wait() error {
	err := <-s.done
	s.done <- err
	s.close()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Stop stops the controller and everything beside it.
func (s *stack) Stop() error {
	s.cancel()
	return s.Wait()
}

func (s *stack) close() {
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
	s.cleanup = nil
}

// seedRoutes routes as the database last said, until the controller's
// first plan: a restarted controller's router does not answer 503 for
// every tenant meanwhile.
func seedRoutes(ctx context.Context, st *store.Store, p *router.Proxy, log *slog.Logger) {
	t, err := routes.Load(ctx, st)
	if err == nil {
		err = p.Set(t)
	}
	if err != nil {
		log.Warn("routing nothing until the first plan: the routes in the database cannot be used", "err", err)
	}
}

// readyz fails while the stack stands by (with the reason: who leads, or
// what is wrong with the database), until its controller has made a plan,
// and while a plan is held back waiting for an operator.
func (s *stack) readyz(w http.ResponseWriter, _ *http.Request) {
	el := s.Elector.Status()
	if !el.Leading {
		http.Error(w, "standby, not acting on the fleet: "+el.Reason, http.StatusServiceUnavailable)
		return
	}
	c := s.Controller()
	if c == nil {
		http.Error(w, "not ready: no plan made yet", http.StatusServiceUnavailable)
		return
	}
	st := c.Status()
	switch {
	case !st.Ready:
		http.Error(w, "not ready: "+st.Reason, http.StatusServiceUnavailable)
	case st.Holds > 0:
		http.Error(w, "held, waiting for an operator ('slum status', 'slum approve'): "+st.Reason, http.StatusServiceUnavailable)
	default:
		fmt.Fprintf(w, "ready: leading (epoch %d)\n", el.Lease.Epoch)
	}
}

// guardSource is what the data guard reads: the desired state the term's
// controller holds (one copy of a large fleet, not two: the guard reads
// none of its own, not even while the controller reads its first), and
// the store for the rest.
type guardSource struct {
	*store.Store
	ctrl *atomic.Pointer[reconcile.Controller]
}

func (g guardSource) desired() (*slum.Snapshot, error) {
	if c := g.ctrl.Load(); c != nil {
		if snap := c.Desired(); snap != nil {
			return snap, nil
		}
	}
	return nil, dataguard.ErrNotReady
}

func (g guardSource) Revision(context.Context) (int64, error) {
	snap, err := g.desired()
	if err != nil {
		return 0, err
	}
	return snap.Revision, nil
}

func (g guardSource) Snapshot(context.Context) (*slum.Snapshot, error) { return g.desired() }
