package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/slum-fleet/slum"

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

// runFlags are what 'slum run' is told.
type runFlags struct {
	cfg                              reconcile.Config
	metricsAddr, logFormat, logLevel string
	memoryLimitMB                    int64
	profiling, dryRun                bool
	leaseTTL                         time.Duration
	route                            routeFlags
	api                              apiServeFlags
}

func (a *app) runCommand() *cobra.Command {
	r := &runFlags{cfg: reconcile.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the controller: keep every tenement server matching the desired state, and fail over dead ones",
		Long: `Run watches every tenement server (a health probe every probe_interval, one
instance list each per --poll-interval, and its log stream held open so a
crash shows at once), plans what to do, and spawns and stops instances until
the fleet converges, retrying failures with per-instance exponential backoff.
It reacts within a fraction of a second to changes made with the CLI.

A server that misses dead_after probes in a row is dead: its instances are
placed on healthy servers and started there (failover), unless their tenant's
failover policy is none; when it returns, its stale copies are stopped
(fenced). When most servers look dead at once, the controller assumes it is
the one cut off and moves nothing. These settings are the fleet's: see
'slum settings'.

Only instances slum placed are ever stopped; others are reported as
unmanaged. A plan that would stop more than --max-stop-fraction of the
instances slum placed (and more than --max-stop-floor), for instances that
vanished from the database without being removed, is held until an operator
approves it once with 'slum approve'. SIGTERM or Ctrl-C lets in-flight calls
finish, then exits.

One controller acts on a fleet at a time: it holds a lease on the database
(--lease-ttl: 15s on SQLite, 4s on Postgres), renewed every second. A 'slum run' that finds a live holder,
or whose database cannot be used (deleted, replaced, read-only, full), or
that could not renew its lease for 2/3 of --lease-ttl (so before another can
take it), stands by: it acts on nothing, keeps routing and serving the API,
says why on /readyz (503) and in slum_controller_leader, and takes over by
itself as soon as it can: at once from a holder of this host that has died
(killed, even if not reaped yet), otherwise when the holder's lease lapses.

With --route-addr it also routes tenants' traffic (see 'slum route'), from
the route table of each plan: no database read on the request path, and a
failover reaches the router the moment it is decided.

With --api-addr it also serves the fleet's HTTP API and dashboard (see
'slum serve'; the --api-* flags are serve's).`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error { return a.run(cmd, r) },
	}
	r.register(cmd)
	return cmd
}

func (r *runFlags) register(cmd *cobra.Command) {
	f, cfg := cmd.Flags(), &r.cfg
	f.DurationVar(&cfg.PollInterval, "poll-interval", cfg.PollInterval, "list every server's instances at least this often")
	f.DurationVar(&cfg.PollTimeout, "poll-timeout", cfg.PollTimeout, "timeout of one server's list call")
	f.DurationVar(&cfg.ActionTimeout, "action-timeout", cfg.ActionTimeout, "timeout of one spawn or stop call")
	f.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "spawn and stop calls in flight overall")
	f.IntVar(&cfg.PerServer, "per-server", cfg.PerServer, "spawn and stop calls in flight per server")
	f.DurationVar(&cfg.Backoff.Initial, "backoff-initial", cfg.Backoff.Initial, "first retry delay of a failed action")
	f.DurationVar(&cfg.Backoff.Max, "backoff-max", cfg.Backoff.Max, "longest retry delay")
	f.Float64Var(&cfg.Guard.Fraction, "max-stop-fraction", cfg.Guard.Fraction, "hold a plan that would stop more than this share of placed instances")
	f.IntVar(&cfg.Guard.Floor, "max-stop-floor", cfg.Guard.Floor, "a plan may always stop this many instances")
	f.BoolVar(&cfg.NoStream, "no-log-stream", false, "do not hold servers' log streams open (a crash is then noticed by probes only)")
	f.StringVar(&r.metricsAddr, "metrics-addr", "127.0.0.1:9464", "serve /metrics, /healthz and /readyz here (empty: off)")
	f.BoolVar(&r.profiling, "pprof", false, "also serve Go's profiles under /debug/pprof/ on the metrics address")
	f.StringVar(&r.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&r.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.BoolVar(&r.dryRun, "dry-run", false, "observe every server once, print the plan, act on nothing")
	f.DurationVar(&r.leaseTTL, "lease-ttl", 0, "how long the controller's lease on the database outlives a controller that dies without releasing it (a leader that cannot renew stops acting after 2/3 of it); default 15s on SQLite, 4s on Postgres")
	r.route.register(cmd, "route-addr", "")
	r.api.register(cmd, "api-", "api-addr", "")
	f.Int64Var(&r.memoryLimitMB, "memory-limit-mb", 0, "soft memory limit for the Go runtime, in MB (0: none; GOMEMLIMIT overrides); keep it above twice the live heap (~1.2 KB per instance at the height of a converge), or the collector takes the CPU")
}

// run runs the controller as r says, with what runs beside it.
func (a *app) run(cmd *cobra.Command, r *runFlags) error {
	log, err := newLogger(os.Stderr, r.logFormat, r.logLevel)
	if err != nil {
		return err
	}
	if r.cfg.Guard.Fraction <= 0 || r.cfg.Guard.Fraction > 1 {
		return usageError{fmt.Errorf("--max-stop-fraction must be in (0, 1], not %v", r.cfg.Guard.Fraction)}
	}
	if cmd.Flags().Changed("lease-ttl") && r.leaseTTL <= 0 {
		return usageError{fmt.Errorf("--lease-ttl must be positive, not %v", r.leaseTTL)}
	}
	if _, set := a.lookupEnv("GOGC"); !set {
		// Collect at half the live heap's growth, not all of it: a
		// long-running controller of a large fleet holds about half the
		// memory for a little more collector work.
		debug.SetGCPercent(50)
	}
	if _, set := a.lookupEnv("GOMEMLIMIT"); !set && r.memoryLimitMB > 0 {
		// A soft limit: close to the live heap, the collector runs all
		// the time (at 100,000 instances the heap is ~150 MB).
		debug.SetMemoryLimit(r.memoryLimitMB << 20)
	}
	ctx := cmd.Context()
	st, err := a.open(ctx, dbMustExist)
	if err != nil {
		return err
	}
	defer st.Close()
	if r.dryRun {
		return a.dryRun(ctx, reconcile.New(st, reconcile.HTTPClientFactory(r.cfg.ActionTimeout), r.cfg, log, nil))
	}
	var route *routeFlags
	if r.route.server.Addr != "" {
		route = &r.route
	}
	var apiServe *apiServeFlags
	if r.api.listen.Addr != "" {
		apiServe = &r.api
	} else if cmd.Flags().Changed("api-tls-cert") || cmd.Flags().Changed("api-no-auth") || cmd.Flags().Changed("api-insecure-no-tls") {
		return usageError{fmt.Errorf("the --api-* flags need --api-addr")}
	}
	stk, err := startStack(ctx, st, stackOptions{cfg: r.cfg, route: route, api: apiServe, metricsAddr: r.metricsAddr,
		profiling: r.profiling, leaseTTL: defaultLeaseTTL(st.Engine(), r.leaseTTL), log: log})
	if err != nil {
		return err
	}
	return stk.Wait()
}

func (a *app) dryRun(ctx context.Context, c *reconcile.Controller) error {
	plan, err := c.Sync(ctx, slum.Fence{}, false)
	if err != nil {
		return err
	}
	type row struct {
		Action string `json:"action"`
		Server string `json:"server"`
		Name   string `json:"name"`
		Reason string `json:"reason"`
	}
	rows := []row{}
	for _, s := range plan.Spawns {
		rows = append(rows, row{"spawn", s.ServerID, s.Name, s.Reason})
	}
	for _, s := range plan.Stops {
		rows = append(rows, row{"stop", s.ServerID, s.Name, s.Reason})
	}
	for _, w := range plan.Waits {
		rows = append(rows, row{"wait", w.ServerID, w.Name, "stop waits: " + w.Reason + " and not running there yet"})
	}
	for _, r := range plan.Reschedules {
		rows = append(rows, row{"move", r.To, string(r.Key()), "from " + r.From + ": " + r.Reason})
	}
	for _, u := range plan.Unplaceable {
		rows = append(rows, row{"stuck", u.From, string(u.Instance), u.Reason})
	}
	for _, h := range plan.Held {
		for _, s := range h.Stops {
			rows = append(rows, row{"held", s.ServerID, s.Name, "stop held: " + h.Summary})
		}
		for _, r := range h.Reschedules {
			rows = append(rows, row{"held", r.To, string(r.Key()), "move from " + r.From + " held: " + h.Summary})
		}
	}
	observedN := 0
	for _, s := range plan.Servers {
		if s.Listed {
			observedN++
		}
	}
	if a.json() {
		return a.printJSON(struct {
			Servers  int   `json:"servers"`
			Observed int   `json:"observed"`
			Held     int   `json:"held"`
			Actions  []row `json:"actions"`
		}{len(plan.Servers), observedN, len(plan.Held), rows})
	}
	for _, r := range rows {
		fmt.Fprintf(a.stdout, "%-5s %-40s on %-12s %s\n", r.Action, r.Name, r.Server, r.Reason)
	}
	spawns, stops, waits, moves := plan.Counts()
	fmt.Fprintf(a.stdout, "dry run: %d of %d servers observed; %d spawns, %d stops, %d waiting, %d moves",
		observedN, len(plan.Servers), spawns, stops, waits, moves)
	unmanaged := 0
	for _, s := range plan.Servers {
		unmanaged += len(s.Unmanaged)
	}
	if unmanaged > 0 {
		fmt.Fprintf(a.stdout, "; %d unmanaged instances left alone", unmanaged)
	}
	fmt.Fprintln(a.stdout)
	for _, h := range plan.Held {
		fmt.Fprintf(a.stdout, "HELD (%s): %s\n", h.Kind, h.Summary)
	}
	if observedN < len(plan.Servers) {
		fmt.Fprintln(a.stdout, "servers not observed get no actions; see 'slum status' for their errors")
	}
	return nil
}

// defaultLeaseTTL is the lease --lease-ttl asks for, or the engine's
// default. On SQLite every controller shares one host, where a dead
// holder is seen at once (its pid), so the lease only bounds a hung one
// and may be long enough to ride out a large write holding the file's
// lock. On Postgres a holder on another host is seen only by its lease
// lapsing: the lease is the takeover time, and short.
func defaultLeaseTTL(engine string, flag time.Duration) time.Duration {
	switch {
	case flag > 0:
		return flag
	case engine == "postgres":
		return 4 * time.Second
	default:
		return 15 * time.Second
	}
}
