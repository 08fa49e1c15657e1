package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/router"
	"github.com/slum-fleet/slum/traffic"
)

// routeFlags are the router's settings, shared by 'slum route' and
// 'slum run --route-addr'.
type routeFlags struct {
	server    router.ServerConfig
	proxy     router.Config
	maxBodyMB int64
	accessLog bool
}

func (rf *routeFlags) register(cmd *cobra.Command, addrFlag string, addrDefault string) {
	rf.server = router.DefaultServerConfig()
	rf.proxy = router.DefaultConfig()
	f := cmd.Flags()
	f.StringVar(&rf.server.Addr, addrFlag, addrDefault, "where the router listens for tenants' traffic (host:port; beyond loopback it is public)")
	f.StringVar(&rf.server.TLSCertFile, "tls-cert", "", "serve HTTPS (and HTTP/2) with this PEM certificate; give --tls-key too")
	f.StringVar(&rf.server.TLSKeyFile, "tls-key", "", "the PEM key of --tls-cert")
	f.DurationVar(&rf.proxy.DialTimeout, "route-dial-timeout", rf.proxy.DialTimeout, "connecting to a tenement server; a copy that cannot be reached in time is skipped for the next")
	f.DurationVar(&rf.proxy.ResponseHeaderTimeout, "route-header-timeout", rf.proxy.ResponseHeaderTimeout, "waiting for a copy's response headers (504 after it)")
	f.DurationVar(&rf.proxy.ColdStartAllowance, "route-cold-start", rf.proxy.ColdStartAllowance, "added to --route-header-timeout for on-demand copies, which may have to start")
	f.DurationVar(&rf.proxy.UpstreamIdleTimeout, "route-idle-timeout", rf.proxy.UpstreamIdleTimeout, "silence of a copy mid-response before the exchange is abandoned")
	f.Int64Var(&rf.maxBodyMB, "route-max-body-mb", 64, "largest request body accepted, in MB (413 beyond it; 0: no limit)")
	f.BoolVar(&rf.accessLog, "access-log", true, "log every request (slog, Info)")
	f.BoolVar(&rf.server.FastPath, "route-fast-path", rf.server.FastPath, "serve plain HTTP/1.1 requests on the router's own fast path (false: net/http's server serves every request)")
}

// start builds the router, serves it until ctx ends, and returns the proxy
// (to hand route tables to), the address it listens on, and a channel that
// yields the server's end.
func (rf *routeFlags) start(ctx context.Context, log *slog.Logger) (*router.Proxy, string, <-chan error, error) {
	if (rf.server.TLSCertFile == "") != (rf.server.TLSKeyFile == "") {
		return nil, "", nil, usageError{fmt.Errorf("--tls-cert and --tls-key go together")}
	}
	if rf.maxBodyMB < 0 {
		return nil, "", nil, usageError{fmt.Errorf("--route-max-body-mb must be 0 or more, not %d", rf.maxBodyMB)}
	}
	rf.proxy.MaxBodyBytes = rf.maxBodyMB << 20
	if rf.maxBodyMB == 0 {
		rf.proxy.MaxBodyBytes = -1
	}
	accessLog := log
	if !rf.accessLog {
		accessLog = slog.New(slog.DiscardHandler)
	}
	p, err := router.New(rf.proxy, accessLog, nil)
	if err != nil {
		return nil, "", nil, usageError{err}
	}
	srv, err := router.NewServer(rf.server, p, log)
	if err != nil {
		p.Close()
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", rf.server.Addr)
	if err != nil {
		p.Close()
		return nil, "", nil, fmt.Errorf("router: listen on %s: %w", rf.server.Addr, err)
	}
	scheme := "http"
	if rf.server.TLSCertFile != "" {
		scheme = "https"
	}
	log.Info("routing tenants' traffic", "addr", scheme+"://"+ln.Addr().String())
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ctx, ln)
		p.Close()
		done <- err
	}()
	return p, ln.Addr().String(), done, nil
}

func (a *app) routeCommand() *cobra.Command {
	var rf routeFlags
	var metricsAddr, logFormat, logLevel string
	var profiling bool
	var trafficTo apiFlags
	every := 50 * time.Millisecond
	cmd := &cobra.Command{
		Use:         "route [--listen ADDR] [--tls-cert F --tls-key F]",
		Annotations: remoteOK,
		Short:       "Route each tenant's domain to the copy that serves it now",
		Long: `Route is slum's HTTP reverse proxy. A request whose Host is a tenant's domain
goes to the tenant's serving copy (as 'slum tenant get' shows it) on that
copy's tenement server, with Host rewritten to tenement's subdomain for the
instance ({tenant}--{instance}.{process}.{server domain}); the original host
travels in X-Forwarded-Host, with X-Forwarded-For and X-Forwarded-Proto.

An unknown domain gets 404; a tenant nothing serves now (its server is dead,
nothing is placed yet) gets 503 with Retry-After. A request that cannot
connect is retried once on another copy when that is safe (GET, HEAD,
OPTIONS, or a body not yet sent). Requests in flight to a server declared
dead are ended half a second later (retried on the copy that serves now
when safe, else 502/503). Streams, server-sent events and large uploads
pass through unbuffered; WebSocket upgrades too, but tenement 0.2.2 closes
the connection right after relaying the 101.

This router follows the fleet database (--db), seeing every change within
about 50 ms; 'slum run --route-addr' runs one inside the controller instead.
With --api (and a router token, 'slum token create --role router') it
follows a fleet elsewhere through its API's watch, resuming where it left
off when the connection breaks, and reports its traffic (requests, errors,
latency) to that API every two seconds for the dashboard and 'slum status'.
A router following --db reports its traffic to the API given by
--traffic-to (with --traffic-token-file, a router token), so the API that
draws the dashboard sees every router, wherever it follows the fleet from.
When its source fails it keeps routing with the last good table, says so on
/healthz, in slum_router_source_up and in its log, and follows again by
itself. SIGTERM lets in-flight requests finish.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(os.Stderr, logFormat, logLevel)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := checkTrafficTo(cmd, a.remote()); err != nil {
				return err
			}
			src, err := a.routeSource(ctx, every)
			if err != nil {
				return err
			}
			defer src.close()
			if trafficTo.url != "" {
				c, err := a.clientFor(trafficTo, apiFlagNames{url: "--traffic-to", token: "--traffic-token-file", ca: "--traffic-ca"})
				if err != nil {
					return err
				}
				defer c.Close()
				src.report, src.source = c.RecordTraffic, traffic.SourceName("route")
			}
			first, err := src.load(ctx)
			if err != nil {
				return err
			}
			p, _, done, err := rf.start(ctx, log)
			if err != nil {
				return err
			}
			p.SetSource(src.name)
			if err := p.Update(first); err != nil {
				return err
			}
			log.Info("following the fleet", "from", src.name, "routes", first.Len())
			if metricsAddr != "" {
				srv, err := serveMetrics(metricsAddr, p.Metrics().Registry, nil, profiling, p.HealthHandler())
				if err != nil {
					return err
				}
				defer srv.Close()
				log.Info("serving metrics", "addr", "http://"+srv.Addr+"/metrics")
			}
			if src.report != nil {
				go traffic.Feed(ctx, nil, 2*trafficReportEvery, src.source, p.Metrics().Traffic, src.report,
					func(err error) { log.Warn("traffic not reported to the API", "err", err) })
			}
			go src.follow(ctx, p)
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			log.Info("stopped")
			return nil
		},
	}
	rf.register(cmd, "listen", "127.0.0.1:8080")
	f := cmd.Flags()
	f.StringVar(&metricsAddr, "metrics-addr", "127.0.0.1:9465", "serve /metrics and /healthz here (empty: off)")
	f.BoolVar(&profiling, "pprof", false, "also serve Go's profiles under /debug/pprof/ on the metrics address")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.DurationVar(&every, "follow-interval", every, "how often the database is checked for changes")
	f.StringVar(&trafficTo.url, "traffic-to", "", "with --db: report this router's traffic to the fleet's API at this URL (https://host:port, or http:// on loopback)")
	f.StringVar(&trafficTo.tokenFile, "traffic-token-file", "", "with --traffic-to: the file holding a router token ('slum token create --role router')")
	f.StringVar(&trafficTo.caFile, "traffic-ca", "", "with --traffic-to: trust the API's certificate from this PEM file")
	return cmd
}

// checkTrafficTo refuses the --traffic-* flags where they do not belong: a
// router following --api reports to that API already.
func checkTrafficTo(cmd *cobra.Command, remote bool) error {
	f := cmd.Flags()
	to := f.Changed("traffic-to")
	switch {
	case to && remote:
		return usageError{errors.New("--traffic-to goes with --db: a router following --api reports its traffic to that API")}
	case !to && (f.Changed("traffic-token-file") || f.Changed("traffic-ca")):
		return usageError{errors.New("--traffic-token-file and --traffic-ca go with --traffic-to")}
	case to && !f.Changed("traffic-token-file"):
		return usageError{errors.New("--traffic-to needs a router token: --traffic-token-file F; make one with 'slum token create --role router'")}
	}
	return nil
}

// serveMetrics serves Prometheus metrics from the gatherers, /healthz (a
// bare "ok", or health when given: a router's source and table), /readyz
// when ready is given, and Go's profiles under /debug/pprof/ when
// profiling is asked for.
func serveMetrics(addr string, g prometheus.Gatherer, ready http.HandlerFunc, profiling bool, health ...http.Handler) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	if len(health) > 0 {
		mux.Handle("GET /healthz", health[0])
	} else {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	}
	if ready != nil {
		mux.HandleFunc("GET /readyz", ready)
	}
	if profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("metrics server", "err", err)
		}
	}()
	return srv, nil
}
