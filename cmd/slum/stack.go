package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/rebalance"
	"github.com/slum-fleet/slum/reconcile"
	"github.com/slum-fleet/slum/router"
	"github.com/slum-fleet/slum/routes"
	"github.com/slum-fleet/slum/store"
)

// stackOptions say how to run the controller and what runs beside it.
type stackOptions struct {
	cfg         reconcile.Config
	route       *routeFlags    // nil: no router
	api         *apiServeFlags // nil: no API
	metricsAddr string         // "": no metrics server
	profiling   bool           // serve /debug/pprof/ beside the metrics
	leaseTTL    time.Duration
	log         *slog.Logger
}

// stack is a running controller with its router and metrics server:
// what 'slum run' runs. The demo and the experiments run the same stack
// over a local fleet, so what they show is what users run.
type stack struct {
	Controller  *reconcile.Controller
	Proxy       *router.Proxy // nil without a router
	RouterAddr  string        // where the router listens, when there is one
	APIURL      string        // where the API and dashboard are served, when they are
	MetricsAddr string
	Epoch       int64 // of the controller's lease
	done        chan error
	cancel      context.CancelFunc
	cleanup     []func()
}

// startStack takes the controller lease on st (one controller per
// database) and starts the router, the API, the metrics server and the
// controller.
func startStack(ctx context.Context, st *store.Store, o stackOptions) (*stack, error) {
	s := &stack{done: make(chan error, 1)}
	fail := func(err error) (*stack, error) {
		s.close()
		return nil, err
	}
	cfg := o.cfg
	gatherers := prometheus.Gatherers{}
	if o.route != nil {
		// The router outlives the controller's last plan: it stops after
		// the controller, letting in-flight requests finish.
		rctx, stopRouter := context.WithCancel(context.WithoutCancel(ctx))
		p, addr, done, err := o.route.start(rctx, o.log)
		if err != nil {
			stopRouter()
			return fail(err)
		}
		s.cleanup = append(s.cleanup, func() { stopRouter(); <-done })
		s.Proxy, s.RouterAddr = p, addr
		seedRoutes(ctx, st, p, o.log)
		cfg.OnRoutes = func(t *routes.Table) {
			if err := p.Set(t); err != nil {
				o.log.Error("route table refused", "err", err)
			}
		}
		gatherers = append(gatherers, p.Metrics().Registry)
	}
	if o.api != nil {
		// The API, like the router, stops after the controller.
		actx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
		url, done, err := o.api.start(actx, st, o.log)
		if err != nil {
			stopAPI()
			return fail(err)
		}
		s.cleanup = append(s.cleanup, func() { stopAPI(); <-done })
		s.APIURL = url
	}
	c := reconcile.New(st, reconcile.HTTPClientFactory(cfg.ActionTimeout), cfg, o.log, nil)
	s.Controller = c
	gatherers = append(gatherers, c.Metrics().Registry)
	if o.metricsAddr != "" {
		srv, err := serveMetrics(o.metricsAddr, gatherers, readyz(c), o.profiling)
		if err != nil {
			return fail(err)
		}
		s.cleanup = append(s.cleanup, func() { srv.Close() })
		s.MetricsAddr = srv.Addr
		o.log.Info("serving metrics", "addr", "http://"+srv.Addr+"/metrics")
	}
	lease, lctx, release, err := reconcile.HoldLease(ctx, st, reconcile.Holder(), o.leaseTTL, o.log)
	if err != nil {
		return fail(err)
	}
	s.cleanup = append(s.cleanup, release)
	s.Epoch = lease.Epoch
	rctx, cancel := context.WithCancel(lctx)
	s.cancel = cancel
	o.log.Info("slum run", "db", st.Where(), "epoch", lease.Epoch)
	go rebalance.NewAuto(st, clock.Real{}, o.log).Run(rctx) // off unless the fleet's rebalance setting is on
	go func() {
		err := c.Run(rctx, lease.Fence())
		if cause := context.Cause(lctx); err == nil && errors.Is(cause, reconcile.ErrLeaseLost) {
			err = cause
		}
		s.done <- err
	}()
	return s, nil
}

// Wait blocks until the controller stops (its context ended, or its lease
// was lost), stops what runs beside it and returns the controller's error.
func (s *stack) Wait() error {
	err := <-s.done
	s.done <- err
	s.close()
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

// readyz fails until the controller has made a plan, and while a plan is
// held back waiting for an operator.
func readyz(c *reconcile.Controller) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		st := c.Status()
		switch {
		case !st.Ready:
			http.Error(w, "not ready: "+st.Reason, http.StatusServiceUnavailable)
		case st.Holds > 0:
			http.Error(w, "held, waiting for an operator ('slum status', 'slum approve'): "+st.Reason, http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	}
}
