// Package api serves slum's fleet over HTTP: JSON endpoints for everything
// the CLI does (each one a store.Store operation, with the same
// validation and typed errors, mapped to HTTP statuses), a watch stream of
// server-sent events for routers and dashboards, the web dashboard at "/",
// and what keeps it safe: API tokens with roles, a per-address limit on
// failed authentications, request body limits, and no plain HTTP or
// unauthenticated access beyond loopback. The bodies it speaks are in
// api/wire; api/client is its Go client.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/routes"
	"github.com/slum-fleet/slum/traffic"
	"golang.org/x/sync/semaphore"
)

// Config tunes the API.
type Config struct {
	// NoAuth serves every request as an admin, without a token. Listen
	// allows it only on a loopback address.
	NoAuth bool
	// AuthLimit bounds failed authentications per client address.
	AuthLimit AuthLimit
	// MaxBody bounds the bodies of requests that carry a few fields;
	// MaxFileBody those of an admin's apply or diff, which carry fleet
	// files, and MaxReadFileBody those of a read token's diff. Routers
	// send no bodies. A body is refused from its declared length before
	// it is read, and a chunked one as it streams.
	MaxBody, MaxFileBody, MaxReadFileBody int64
	// MaxReportBody bounds a router's traffic report (about 60 bytes a
	// tenant, 150 with its latency buckets).
	MaxReportBody int64
	// BodyBudget bounds the memory large bodies (over MaxBody) take at
	// once, all requests together (twice a body's size: its bytes and
	// what decoding makes of them): one more is refused with 503 until
	// others finish, so large requests cannot exhaust the API's memory.
	BodyBudget int64
	// WatchEvery is how often the watch looks for changes. A look that
	// finds none costs a few small queries (~0.1 ms), whatever the
	// fleet's size; one that finds some reads only what changed.
	WatchEvery time.Duration
	// WatchHistory is how many batches of changes the watch remembers
	// for clients that resume; one further behind is sent a reset.
	WatchHistory int
	// Keepalive is how often an idle watch stream gets a comment, so
	// proxies in between do not close it.
	Keepalive time.Duration
	// Traffic is the traffic history routers report to and the dashboard
	// and GET /v1/metrics read; nil: a new one. A router in the same
	// process feeds it directly (Server.Traffic).
	Traffic *traffic.History
	Clock   clock.Clock
	Log     *slog.Logger
	// Restarts runs the rolling restarts asked of the API (nil: it
	// refuses them), with the store's server tokens.
	Restarts slum.Restarts
}

// DefaultConfig is the API's configuration unless told otherwise.
func DefaultConfig() Config {
	return Config{AuthLimit: DefaultAuthLimit, MaxBody: 64 << 10, MaxFileBody: 16 << 20, MaxReadFileBody: 4 << 20, MaxReportBody: 8 << 20, BodyBudget: 32 << 20,
		WatchEvery: 10 * time.Millisecond, WatchHistory: 1024, Keepalive: 15 * time.Second}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.AuthLimit.Burst <= 0 || c.AuthLimit.Every <= 0 {
		c.AuthLimit = d.AuthLimit
	}
	if c.MaxBody <= 0 {
		c.MaxBody = d.MaxBody
	}
	if c.MaxFileBody <= 0 {
		c.MaxFileBody = d.MaxFileBody
	}
	if c.MaxReadFileBody <= 0 {
		c.MaxReadFileBody = min(d.MaxReadFileBody, c.MaxFileBody)
	}
	if c.MaxReportBody <= 0 {
		c.MaxReportBody = d.MaxReportBody
	}
	if c.BodyBudget < 2*max(c.MaxFileBody, c.MaxReportBody) {
		c.BodyBudget = max(d.BodyBudget, 2*c.MaxFileBody, 2*c.MaxReportBody)
	}
	if c.WatchEvery <= 0 {
		c.WatchEvery = d.WatchEvery
	}
	if c.WatchHistory <= 0 {
		c.WatchHistory = d.WatchHistory
	}
	if c.Keepalive <= 0 {
		c.Keepalive = d.Keepalive
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Traffic == nil {
		c.Traffic = traffic.New(traffic.Config{Clock: c.Clock})
	}
	return c
}

// Store is what the API serves: the fleet's operations, and what its
// authentication, route table and watch read. A *store.Store on either
// engine is one.
type Store interface {
	slum.Fleet
	routes.Reader
	VerifyAPIToken(ctx context.Context, token string) (slum.APIToken, error)
	OpenHolds(ctx context.Context) ([]slum.Hold, error)
	ChangeSeq(ctx context.Context) (int64, error)
	ChangedSince(ctx context.Context, seq int64, max int) (*slum.Changed, error)
	KeepChangeLog(ctx context.Context, d time.Duration, until int64) (newUntil int64, lapsed bool, err error)
}

// Server is the fleet API over one fleet's store.
type Server struct {
	store   Store
	fleet   slum.Fleet // store, as the operations call it
	bodies  *semaphore.Weighted
	streams *streams
	freed   atomic.Int64 // when memory of large bodies was last given back (unix ns)
	cfg     Config
	log     *slog.Logger
	limiter *failLimiter
	watch   *watcher
	handler http.Handler
	closing chan struct{} // closed when Serve starts shutting down: watch streams end
}

// New makes the API for the fleet in st. Its watch runs once Run or
// Serve runs.
func New(st Store, cfg Config) *Server {
	cfg = cfg.withDefaults()
	var fleet slum.Fleet = trafficFleet{st, cfg.Traffic}
	if cfg.Restarts != nil {
		fleet = fleetWithRestarts{trafficFleet: trafficFleet{st, cfg.Traffic}, restarts: cfg.Restarts}
	}
	s := &Server{store: st, fleet: fleet, bodies: semaphore.NewWeighted(cfg.BodyBudget), streams: newStreams(), cfg: cfg, log: cfg.Log, limiter: newFailLimiter(cfg.AuthLimit), closing: make(chan struct{})}
	s.watch = newWatcher(st, cfg)
	s.handler = s.routes()
	return s
}

// Traffic is the history routers report their traffic to.
func (s *Server) Traffic() *traffic.History { return s.cfg.Traffic }

// Handler serves the API and the dashboard.
func (s *Server) Handler() http.Handler { return s.handler }

// Run runs the watch, which follows the database for watch streams,
// until ctx ends.
func (s *Server) Run(ctx context.Context) {
	go s.sweepRevoked(ctx)
	s.watch.run(ctx)
}

// Serve serves the API on ln until ctx ends, then lets requests in flight
// finish (watch streams end at once) for up to five seconds.
func (s *Server) Serve(ctx context.Context, ln Listener) error {
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go s.Run(wctx)
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // fleet files may be large
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(func() { close(s.closing) })
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln.Listener) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
