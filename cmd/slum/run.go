package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/reconcile"
)

func newLogger(w *os.File, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level must be debug, info, warn or error, not %q", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format must be text or json, not %q", format)}
}

func (a *app) runCommand() *cobra.Command {
	cfg := reconcile.DefaultConfig()
	var metricsAddr, logFormat, logLevel string
	var memoryLimitMB int64
	leaseTTL := 15 * time.Second
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the controller: keep every tenement server matching the desired state",
		Long: `Run polls every tenement server (one list call each per interval), diffs
what runs against the database, and spawns and stops instances until the
fleet converges, retrying failures with per-instance exponential backoff. It
reacts within a fraction of a second to changes made with the CLI.

Only instances slum placed are ever stopped; others are reported as
unmanaged. A pass that would stop more than --max-stop-fraction of the
instances slum placed (and more than --max-stop-floor) is refused and
reported. SIGTERM or Ctrl-C lets in-flight calls finish, then exits.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(os.Stderr, logFormat, logLevel)
			if err != nil {
				return err
			}
			if cfg.MaxStopFraction <= 0 || cfg.MaxStopFraction > 1 {
				return usageError{fmt.Errorf("--max-stop-fraction must be in (0, 1], not %v", cfg.MaxStopFraction)}
			}
			if _, set := a.lookupEnv("GOMEMLIMIT"); !set && memoryLimitMB > 0 {
				// A soft limit: the collector works harder near it rather
				// than letting a large fleet's pass garbage double the heap.
				debug.SetMemoryLimit(memoryLimitMB << 20)
			}
			ctx := cmd.Context()
			st, err := a.open(ctx, dbMustExist)
			if err != nil {
				return err
			}
			defer st.Close()
			c := reconcile.New(st, reconcile.HTTPClientFactory(cfg.ActionTimeout), cfg, log, nil)
			if dryRun {
				return a.dryRun(ctx, c)
			}
			if metricsAddr != "" {
				srv, err := serveOps(metricsAddr, c)
				if err != nil {
					return err
				}
				defer srv.Close()
				log.Info("serving metrics", "addr", "http://"+srv.Addr+"/metrics")
			}
			// One controller per database: a second would fight the first.
			lctx, release, err := reconcile.HoldLease(ctx, st, reconcile.Holder(), leaseTTL, log)
			if err != nil {
				return err
			}
			defer release()
			log.Info("slum run", "db", st.Path())
			if err := c.Run(lctx); err != nil {
				return err
			}
			if cause := context.Cause(lctx); errors.Is(cause, reconcile.ErrLeaseLost) {
				return cause
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&cfg.PollInterval, "poll-interval", cfg.PollInterval, "poll every server at least this often")
	f.DurationVar(&cfg.PollTimeout, "poll-timeout", cfg.PollTimeout, "timeout of one server's list call")
	f.DurationVar(&cfg.ActionTimeout, "action-timeout", cfg.ActionTimeout, "timeout of one spawn or stop call")
	f.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "spawn and stop calls in flight overall")
	f.IntVar(&cfg.PerServer, "per-server", cfg.PerServer, "spawn and stop calls in flight per server")
	f.IntVar(&cfg.Health.SuspectAfter, "suspect-after", cfg.Health.SuspectAfter, "missed polls in a row before a server is suspect")
	f.DurationVar(&cfg.Health.OfflineAfter, "offline-after", cfg.Health.OfflineAfter, "time without an answer before a server is offline")
	f.DurationVar(&cfg.Backoff.Initial, "backoff-initial", cfg.Backoff.Initial, "first retry delay of a failed action")
	f.DurationVar(&cfg.Backoff.Max, "backoff-max", cfg.Backoff.Max, "longest retry delay")
	f.Float64Var(&cfg.MaxStopFraction, "max-stop-fraction", cfg.MaxStopFraction, "refuse a pass that would stop more than this share of placed instances")
	f.IntVar(&cfg.MaxStopFloor, "max-stop-floor", cfg.MaxStopFloor, "a pass may always stop this many instances")
	f.StringVar(&metricsAddr, "metrics-addr", "127.0.0.1:9464", "serve /metrics, /healthz and /readyz here (empty: off)")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.BoolVar(&dryRun, "dry-run", false, "poll once, print the plan, act on nothing")
	f.DurationVar(&leaseTTL, "lease-ttl", leaseTTL, "how long the controller's lease on the database outlives a controller that dies without releasing it")
	f.Int64Var(&memoryLimitMB, "memory-limit-mb", 256, "soft memory limit for the Go runtime, in MB (0: none; GOMEMLIMIT overrides); raise it for fleets beyond ~200,000 instances")
	return cmd
}

// serveOps serves Prometheus metrics and health probes.
func serveOps(addr string, c *reconcile.Controller) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.Metrics().Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !c.Ready() {
			http.Error(w, "not ready: no pass has completed yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	srv := &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("metrics server", "err", err)
		}
	}()
	return srv, nil
}

func (a *app) dryRun(ctx context.Context, c *reconcile.Controller) error {
	res, err := c.Pass(ctx, false)
	if err != nil {
		return err
	}
	type row struct {
		Action string `json:"action"`
		Server string `json:"server"`
		Name   string `json:"name"`
		Reason string `json:"reason"`
	}
	var rows []row
	for _, s := range res.Spawns {
		rows = append(rows, row{"spawn", s.ServerID, s.Name, s.Reason})
	}
	for _, s := range res.Stops {
		rows = append(rows, row{"stop", s.ServerID, s.Name, s.Reason})
	}
	for _, h := range res.Holds {
		rows = append(rows, row{"hold", h.ServerID, h.Name, "stop waits: " + h.Reason + " and not running there yet"})
	}
	if a.json() {
		if rows == nil {
			rows = []row{}
		}
		return a.printJSON(struct {
			Servers  int   `json:"servers"`
			Observed int   `json:"observed"`
			Refused  bool  `json:"stops_refused"`
			Actions  []row `json:"actions"`
		}{res.Servers, res.Observed, res.Refused, rows})
	}
	for _, r := range rows {
		fmt.Fprintf(a.stdout, "%-5s %-40s on %-12s %s\n", r.Action, r.Name, r.Server, r.Reason)
	}
	fmt.Fprintf(a.stdout, "dry run: %d of %d servers observed; %d spawns, %d stops, %d held", res.Observed, res.Servers,
		len(res.Spawns), len(res.Stops), len(res.Holds))
	if res.Unmanaged > 0 {
		fmt.Fprintf(a.stdout, "; %d unmanaged instances left alone", res.Unmanaged)
	}
	fmt.Fprintln(a.stdout)
	if res.Refused {
		fmt.Fprintln(a.stdout, "the stops would be REFUSED: they exceed --max-stop-fraction of the instances slum placed")
	}
	if res.Observed < res.Servers {
		fmt.Fprintln(a.stdout, "servers not observed get no actions; see 'slum status' for their errors")
	}
	return nil
}
