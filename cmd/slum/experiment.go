package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/experiment"
	"github.com/slum-fleet/slum/postgres"
	"github.com/slum-fleet/slum/reconcile"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// experimentFlags are what 'slum experiment' is told.
type experimentFlags struct {
	faults, file, out, backend, routerAddr string
	trials, servers, tenants               int
	seed                                   int64
	rate                                   float64
	timeout, duration                      time.Duration
	observe, data                          bool
	set                                    slum.Settings
	parsed                                 []experiment.Fault // from faults, by check
	fleet                                  *desired.File      // read from file, by check
}

func (a *app) experimentCommand() *cobra.Command {
	e := &experimentFlags{set: slum.DefaultSettings()}
	cmd := &cobra.Command{
		Use:   "experiment [--data] [--fault kill|whole-kill|hang|cut|restart|controller-kill|partition|all|leader-kill|leader-cut] [--trials N] [--seed S] [--servers N] [--tenants N] [-f fleet.yaml] [--out DIR]",
		Short: "Measure what a failure costs: failover experiments on a local fleet, or observed on a real one",
		Long: `Experiment starts a local fleet (real tenement servers, each in a network
namespace of its own, when tenement is installed and this runs as root; slum's
simulator otherwise, and it says so), runs the controller and its router as
'slum run --route-addr' does, loads a fleet (a built-in one, or -f FILE with its
servers pointed at the local ones), sends steady HTTP load through the router
at every tenant, and injects faults, one trial at a time:

  kill             kill -9 of a tenement server (launched again afterwards);
                   its instances live on, reparented, until it starts again
  whole-kill       the whole server dies: every process of its namespace
                   killed, tenement and its instances (not part of "all")
  hang             SIGSTOP of a tenement server (SIGCONT afterwards)
  cut              its network link cut (packets dropped), then restored
  restart          a tenement restart, which loses every instance
  controller-kill  kill -9 of a server, then of the controller once it has
                   started failing it over; another controller is started at
                   once (the controller runs as a 'slum run' process of its
                   own for this fault, so the SIGKILL is real)
  partition        the links of most servers cut at once: nothing may move
and, on Postgres (--db postgres://..., or SLUM_DB_URL), not part of "all":
  leader-kill      two controllers ('slum run' processes), one leading and
                   one standing by; kill -9 of the leader. It measures when
                   the standby leads and the requests that failed through
                   the standby's router meanwhile. Each trial's fleet is a
                   schema of its own in that database,
                   slum_experiment_leader_kill_<trial>, dropped and made
                   again: point --db at a throwaway database
  leader-cut       the same, the leader's host cut off instead (the two
                   controllers run in network namespaces of their own, and
                   the leader's link goes down, then comes back: it must
                   rejoin as a standby). Real tenement only; the controllers
                   reach Postgres over TCP at the URL's port on this
                   machine's end of their links (10.77.x.x), so Postgres
                   must listen there and let 10.77.0.0/16 in

Each trial starts from a converged fleet on restarted servers and a new
database, and measures from the experiment's own clock: when the controller
declared the server dead, when every displaced instance ran again (by the
tenement servers' own lists), when the router served every tenant again, the
requests that failed and how, the longest gap a tenant saw, instances running
on two servers at once, stale copies fenced after the return, and anything
left behind. It prints p50, p99 and max over the trials of each fault (-o json:
every raw figure) and writes, in --out, a timeline and a distribution picture
per fault (PNG and SVG), results.json, and each trial's database and log.

The fleet's failover settings can be varied (--probe-interval, --dead-after,
...) to compare them; see 'slum settings'. Ctrl-C stops cleanly and reports the
trials that finished.

With --data it measures what a failover costs a tenant's data instead: a
built-in fleet of --servers real tenement servers with one replicated tenant
(examples/replicated's app under 'slum guard', real Litestream, its replica on
a SeaweedFS server the experiment starts), a new tenant each trial, served from
a server chosen at random, which the fault hits. The app acknowledges a write
only once its transaction has committed; the experiment writes to the tenant
through its serving copy as fast as it answers, and, for the faults that leave
the old copy running (all but whole-kill), also to the old copy directly from
inside its server's namespace: a client on its side, the attempt at a second
writer. Its faults are whole-kill, kill (only 'ten' dies, its tenants live on
as orphans), hang, cut and controller-kill (ten killed, then the controller
mid-failover); --fault all (the default with --data) runs the five. Per trial:
the acknowledged writes lost (those the old copy took before the fault that
the new copy did not restore: count, and the seconds they span back from the
fault), the old copy's writes after the fault kept on its own disk only (lost
too), writes accepted by two copies (the old copy's, acknowledged at or after
the new copy's first) and of those the ones found in the new copy's history
(two writers of one history: must be 0), the new copy's writes gone after the
old server returned (must be 0), the time until the tenant is served again
with its data (a copy elsewhere acknowledges a write), and of that the wait
for the old writer's lease and the restore, where seen. It needs root,
tenement, litestream and weed (scripts/setup.sh installs them).

With --observe it runs against an existing fleet instead (--db, and the
router's address with --router): it sends the same load through that router
and records the same figures from the router's and the controller's view
while you cause the fault yourself, until --duration ends or Ctrl-C.`,
		Example: `  slum experiment                                   # 5 trials of kill -9 on three servers
  slum experiment --data --trials 10                # a replicated tenant through the five data faults
  slum experiment --data --fault whole-kill,cut --trials 3
  slum experiment --fault kill --trials 20 --seed 13 # the table in docs/experiments
  slum experiment --fault all --trials 3 -o json > results.json
  slum experiment --fault hang --probe-interval 500ms --dead-after 2
  SLUM_DB_URL=postgres://slum:pw@127.0.0.1/scratch slum experiment --fault leader-kill
  slum experiment --observe --router 127.0.0.1:8080 --duration 2m`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.check(cmd.Flags()); err != nil {
				return err
			}
			if e.observe {
				return a.observeExperiment(cmd.Context(), e.routerAddr, e.out, e.duration, e.rate, e.timeout)
			}
			if e.data {
				return a.dataExperiment(cmd.Context(), e)
			}
			db, err := leaderFaultsDB(e.parsed, a.dbPath)
			if err != nil {
				return err
			}
			if slices.Contains(e.parsed, experiment.FaultLeaderCut) && e.backend == "simulator" {
				return usageError{errors.New("--fault leader-cut cuts a controller's network link: it needs real tenement servers, not --backend simulator")}
			}
			opt, err := e.options()
			if err != nil {
				return err
			}
			opt.DB = db
			opt.Progress = newProgress(a.stderr).show
			return a.finishExperiment(cmd.Context(), opt, opt.Dir)
		},
	}
	e.register(cmd.Flags())
	return cmd
}

func (e *experimentFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&e.faults, "fault", "kill", "the faults, comma-separated: kill, hang, cut, restart, controller-kill, partition, or all; whole-kill; leader-kill, leader-cut on Postgres; with --data: whole-kill, kill, hang, cut, controller-kill, or all")
	fl.IntVar(&e.trials, "trials", 5, "trials of each fault")
	fl.Int64Var(&e.seed, "seed", 1, "seeds the choice of servers and moments, so a run can be repeated")
	fl.IntVar(&e.servers, "servers", 3, "tenement servers in the local fleet")
	fl.IntVar(&e.tenants, "tenants", 6, "tenants of the built-in fleet; every other one has a warm spare")
	fl.StringVarP(&e.file, "file", "f", "", "a fleet file to load instead of the built-in fleet (its servers are pointed at the local ones)")
	fl.StringVar(&e.out, "out", "slum-experiment", "where pictures, results.json and each trial's database and log go (wiped on start)")
	fl.StringVar(&e.backend, "backend", "auto", "auto, tenement or simulator")
	fl.Float64Var(&e.rate, "rate", 20, "requests a second per tenant, through the router")
	fl.DurationVar(&e.timeout, "request-timeout", 5*time.Second, "a request not answered by then has failed")
	fl.BoolVar(&e.data, "data", false, "measure a replicated tenant's data through failovers (built-in fleet; --fault defaults to all of whole-kill, kill, hang, cut, controller-kill)")
	fl.BoolVar(&e.observe, "observe", false, "observe an existing fleet (--db, --router) while you cause the fault")
	fl.StringVar(&e.routerAddr, "router", "127.0.0.1:8080", "with --observe: the router's address (host:port)")
	fl.DurationVar(&e.duration, "duration", 5*time.Minute, "with --observe: how long to observe at most")
	d := slum.DefaultSettings()
	fl.DurationVar(&e.set.ProbeInterval, "probe-interval", d.ProbeInterval, "fleet setting: how often each server is probed")
	fl.DurationVar(&e.set.ProbeTimeout, "probe-timeout", d.ProbeTimeout, "fleet setting: a probe without an answer by then has failed")
	fl.IntVar(&e.set.DeadAfter, "dead-after", d.DeadAfter, "fleet setting: failed probes in a row that make a server dead")
	fl.Float64Var(&e.set.PartitionFraction, "partition-fraction", d.PartitionFraction, "fleet setting: share of servers dead at once beyond which nothing fails over")
	fl.IntVar(&e.set.FailoverRate, "failover-rate", d.FailoverRate, "fleet setting: servers failed over a minute, at most")
}

// check refuses flags that do not go together or are out of range, and
// takes the fleet file's settings where no flag overrides them.
func (e *experimentFlags) check(flags *pflag.FlagSet) error {
	if e.observe {
		for _, name := range []string{"fault", "trials", "seed", "servers", "tenants", "file", "backend"} {
			if flags.Changed(name) {
				return usageError{fmt.Errorf("--%s does not go with --observe: the fleet is an existing one and you cause the fault", name)}
			}
		}
	} else if flags.Changed("router") || flags.Changed("duration") {
		return usageError{errors.New("--router and --duration go with --observe")}
	}
	if err := e.checkData(flags); err != nil {
		return err
	}
	var err error
	parse := experiment.ParseFaults
	if e.data {
		parse = experiment.ParseDataFaults
	}
	if e.parsed, err = parse(e.faults); err != nil {
		return usageError{err}
	}
	if e.backend == "auto" {
		e.backend = ""
	} else if e.backend != "tenement" && e.backend != "simulator" {
		return usageError{fmt.Errorf("--backend must be auto, tenement or simulator, not %q", e.backend)}
	}
	for _, c := range []struct {
		name   string
		v      int
		lo, hi int
	}{{"trials", e.trials, 1, 1000}, {"servers", e.servers, 2, 63}, {"tenants", e.tenants, 1, 500}} {
		if c.v < c.lo || c.v > c.hi {
			return &slum.FieldError{Field: "--" + c.name, Value: strconv.Itoa(c.v), Reason: fmt.Sprintf("must be from %d to %d", c.lo, c.hi)}
		}
	}
	if !(e.rate > 0 && e.rate <= 500) {
		return &slum.FieldError{Field: "--rate", Value: strconv.FormatFloat(e.rate, 'g', -1, 64), Reason: "must be more than 0 and at most 500 requests a second per tenant"}
	}
	if e.timeout <= 0 || e.timeout > time.Minute {
		return &slum.FieldError{Field: "--request-timeout", Value: e.timeout.String(), Reason: "must be more than 0 and at most 1m"}
	}
	if e.file != "" && flags.Changed("tenants") {
		return usageError{errors.New("--tenants does not go with -f: the file names the tenants")}
	}
	if e.file != "" {
		f, err := loadExperimentFleet(e.file)
		if err != nil {
			return err
		}
		if flags.Changed("servers") && e.servers != len(f.Servers) {
			return usageError{fmt.Errorf("--servers %d, but %s names %d servers", e.servers, e.file, len(f.Servers))}
		}
		e.servers, e.fleet = len(f.Servers), f
		if f.Settings != nil {
			e.set = overrideSettings(flags.Changed, f.Settings.Over(slum.DefaultSettings()), e.set)
		}
	}
	return e.set.Validate()
}

// checkData refuses what does not go with --data, and makes all the
// faults its default.
func (e *experimentFlags) checkData(flags *pflag.FlagSet) error {
	if !e.data {
		return nil
	}
	for _, name := range []string{"observe", "file", "tenants", "backend", "rate", "request-timeout"} {
		if flags.Changed(name) {
			return usageError{fmt.Errorf("--%s does not go with --data: it runs a built-in fleet of one replicated tenant on real tenement servers, and writes as fast as the tenant answers", name)}
		}
	}
	if !flags.Changed("fault") {
		e.faults = "all"
	}
	return nil
}

// dataExperiment runs 'slum experiment --data'.
func (a *app) dataExperiment(ctx context.Context, e *experimentFlags) error {
	if err := experiment.CheckDataTools(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find slum's own binary, which every copy runs as its guard: %w", err)
	}
	abs, err := filepath.Abs(e.out)
	if err != nil {
		return err
	}
	if err := experiment.PrepareDir(abs); err != nil {
		return err
	}
	rep, err := experiment.RunData(ctx, experiment.DataOptions{Faults: e.parsed, Trials: e.trials, Seed: e.seed, Servers: e.servers,
		Settings: e.set, Dir: abs, Slum: self, Launcher: stackLauncher{cfg: reconcile.DefaultConfig()}, Progress: newProgress(a.stderr).show})
	if err != nil {
		return err
	}
	return a.writeExperiment(rep, abs)
}

// options are the experiment the checked flags describe, its directory
// prepared.
func (e *experimentFlags) options() (experiment.Options, error) {
	abs, err := filepath.Abs(e.out)
	if err != nil {
		return experiment.Options{}, err
	}
	if err := experiment.PrepareDir(abs); err != nil {
		return experiment.Options{}, err
	}
	return experiment.Options{Faults: e.parsed, Trials: e.trials, Seed: e.seed, Servers: e.servers, Tenants: e.tenants, File: e.fleet,
		Settings: e.set, Backend: e.backend, Dir: abs, Rate: e.rate, Timeout: e.timeout,
		ReturnGrace: reconcile.DefaultConfig().PollInterval, Launcher: stackLauncher{cfg: reconcile.DefaultConfig()}}, nil
}

// leaderFaultsDB is the Postgres database the leader faults among faults
// run on, db; "" when there are none. They refuse any other database.
func leaderFaultsDB(faults []experiment.Fault, db string) (string, error) {
	for _, f := range faults {
		if f.NeedsPostgres() && !postgres.IsURL(db) {
			return "", usageError{fmt.Errorf("--fault %s runs several controllers over Postgres: give --db postgres://... (or SLUM_DB_URL) naming a throwaway database", f)}
		}
		if f.NeedsPostgres() {
			return db, nil
		}
	}
	return "", nil
}

// overrideSettings keeps the settings given as flags and takes the rest
// from the fleet file's.
func overrideSettings(changed func(string) bool, file, flags slum.Settings) slum.Settings {
	out := file
	if changed("probe-interval") {
		out.ProbeInterval = flags.ProbeInterval
	}
	if changed("probe-timeout") {
		out.ProbeTimeout = flags.ProbeTimeout
	}
	if changed("dead-after") {
		out.DeadAfter = flags.DeadAfter
	}
	if changed("partition-fraction") {
		out.PartitionFraction = flags.PartitionFraction
	}
	if changed("failover-rate") {
		out.FailoverRate = flags.FailoverRate
	}
	return out
}

// loadExperimentFleet reads a fleet file whose servers will be replaced by
// local ones: their tokens are not read.
func loadExperimentFleet(path string) (*desired.File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &slum.FieldError{Field: "-f", Value: path, Reason: "cannot be read: " + err.Error()}
	}
	f, err := desired.Parse(path, data)
	if err != nil {
		return nil, err
	}
	if len(f.Servers) < 2 || len(f.Servers) > 63 {
		return nil, &slum.FieldError{Where: path, Field: "servers", Value: strconv.Itoa(len(f.Servers)), Reason: "an experiment needs 2 to 63 servers"}
	}
	if len(f.Tenants) == 0 {
		return nil, &slum.FieldError{Where: path, Field: "tenants", NoValue: true, Reason: "an experiment needs at least one tenant to send load to"}
	}
	return f, nil
}

func (a *app) finishExperiment(ctx context.Context, opt experiment.Options, dir string) error {
	rep, err := experiment.Run(ctx, opt)
	if err != nil {
		return err
	}
	return a.writeExperiment(rep, dir)
}

// writeExperiment summarises the report, writes the pictures and
// results.json to dir, and prints the table (or the JSON).
func (a *app) writeExperiment(rep *experiment.Report, dir string) error {
	rep.Finished = time.Now()
	rep.Summaries = experiment.Summarize(rep.Trials)
	pics, err := experiment.WritePictures(rep, dir)
	if err != nil {
		a.warn("pictures: %v", err)
	}
	rep.Pictures = pics
	if rep.Pictures == nil {
		rep.Pictures = []string{}
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if a.json() {
		_, err = a.stdout.Write(append(data, '\n'))
	} else {
		err = rep.WriteTable(a.stdout)
		fmt.Fprintf(a.stdout, "raw figures: %s\n", filepath.Join(dir, "results.json"))
	}
	if err != nil {
		return err
	}
	if rep.Interrupted {
		return fmt.Errorf("interrupted: %d of %d trials finished (reported above)", len(rep.Trials), rep.TrialsAsked*len(rep.Faults))
	}
	return nil
}

// progress shows where an experiment is on stderr: one line updated in
// place on a terminal, a line per phase otherwise.
type progress struct {
	w   io.Writer
	tty bool
}

func newProgress(w io.Writer) *progress { return &progress{w: w, tty: isTerminal(w)} }

func (p *progress) show(pr experiment.Progress) {
	prefix := "slum experiment"
	if pr.Trials > 0 {
		prefix = fmt.Sprintf("%s trial %d of %d", pr.Fault, pr.Trial, pr.Trials)
	}
	line := prefix + ": " + pr.Phase
	if t := pr.Done; t != nil {
		line = prefix + ": " + trialLine(t)
		if p.tty {
			fmt.Fprintf(p.w, "\r\033[K%s\n", line)
		} else {
			fmt.Fprintln(p.w, line)
		}
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(p.w, line)
}

func trialLine(t *experiment.Trial) string {
	if t.Error != "" {
		return "could not run to its end: " + t.Error
	}
	f := func(m *experiment.Millis) string {
		if m == nil {
			return "never"
		}
		return fmt.Sprintf("%.2fs", m.D().Seconds())
	}
	if d := t.Data; d != nil {
		line := fmt.Sprintf("served again with its data %s, %d acknowledged writes lost (%.2fs of writes), %d accepted by two copies (%d in the new history)",
			f(d.ServedWithData), d.Lost, d.LostSpan.D().Seconds(), d.AcceptedByTwo, d.TwoWriters)
		if d.OldOnly > 0 {
			line += fmt.Sprintf(", %d on the old copy's disk only", d.OldOnly)
		}
		if d.NewGone > 0 {
			line += fmt.Sprintf(", %d OF THE NEW COPY'S GONE", d.NewGone)
		}
		if len(t.LeftBehind) > 0 {
			line += fmt.Sprintf(", %d left behind", len(t.LeftBehind))
		}
		return line + fmt.Sprintf(", %d acknowledged", d.Acked)
	}
	parts := []string{"detected " + f(t.Detected)}
	if t.Fault.NeedsPostgres() {
		parts = []string{"the standby leads " + f(t.ControllerBack)}
	}
	if t.Displaced > 0 {
		parts = append(parts, fmt.Sprintf("%d displaced running again %s", t.Displaced, f(t.Replaced)))
	}
	parts = append(parts, "served again "+f(t.ServedAgain), fmt.Sprintf("%d of %d requests failed", t.Failed, t.Requests),
		fmt.Sprintf("longest gap %.2fs", t.LongestGap.D().Seconds()))
	if n := len(t.OnTwoServers); n > 0 {
		parts = append(parts, fmt.Sprintf("%d on two servers", n))
	}
	if t.Fenced > 0 {
		parts = append(parts, fmt.Sprintf("%d fenced", t.Fenced))
	}
	if len(t.Moved) > 0 && t.Fault == experiment.FaultPartition {
		parts = append(parts, fmt.Sprintf("%d MOVED", len(t.Moved)))
	}
	if len(t.LeftBehind) > 0 {
		parts = append(parts, fmt.Sprintf("%d left behind", len(t.LeftBehind)))
	}
	return strings.Join(parts, ", ")
}

// stackLauncher starts the controller under test with the stack 'slum run'
// runs: in this process, or as a 'slum run' process of its own when it is
// to be killed with SIGKILL.
type stackLauncher struct{ cfg reconcile.Config }

func (l stackLauncher) Start(ctx context.Context, spec experiment.ControllerSpec) (experiment.Controller, error) {
	logf, err := os.OpenFile(spec.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if spec.Separate {
		c, err := startChild(spec, logf)
		if err != nil {
			logf.Close()
		}
		return c, err
	}
	st, err := sqlite.OpenExisting(ctx, spec.DB)
	if err != nil {
		logf.Close()
		return nil, err
	}
	var rf routeFlags
	rf.register(&cobra.Command{}, "route-addr", "127.0.0.1:0")
	if spec.RouterAddr != "" {
		rf.server.Addr = spec.RouterAddr
	}
	stk, err := startStack(ctx, st, stackOptions{cfg: l.cfg, route: &rf, leaseTTL: 15 * time.Second,
		log: slog.New(slog.NewTextHandler(logf, nil))})
	if err != nil {
		st.Close()
		logf.Close()
		return nil, err
	}
	return &inProcess{stk: stk, st: st, logf: logf}, nil
}

// inProcess is the stack running in this process.
type inProcess struct {
	stk  *stack
	st   *store.Store
	logf *os.File
}

func (c *inProcess) RouterAddr() string { return c.stk.RouterAddr }

func (c *inProcess) Stop() error {
	err := c.stk.Stop()
	c.st.Close()
	c.logf.Close()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (c *inProcess) Kill() error {
	return errors.New("a controller in the experiment's own process cannot be killed with SIGKILL")
}

// child is 'slum run --route-addr' in a process of its own.
type child struct {
	cmd  *exec.Cmd
	addr string
	done chan error
	logf *os.File
}

func startChild(spec experiment.ControllerSpec, logf *os.File) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find slum's own binary: %w", err)
	}
	addr := spec.RouterAddr
	if addr == "" {
		if addr, err = freeLoopbackAddr(); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(exe, "run", "--route-addr", addr, "--metrics-addr", "")
	if spec.Netns != "" {
		// ip netns exec becomes slum itself: its pid is slum's.
		cmd = exec.Command("ip", append([]string{"netns", "exec", spec.Netns, exe}, cmd.Args[1:]...)...)
	}
	// The database in the environment: a Postgres URL's password stays
	// off the command line.
	cmd.Env = append(os.Environ(), "SLUM_DB=", "SLUM_DB_URL=")
	if postgres.IsURL(spec.DB) {
		cmd.Env = append(cmd.Env, "SLUM_DB_URL="+spec.DB)
	} else {
		cmd.Env = append(cmd.Env, "SLUM_DB="+spec.DB)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// It dies with the experiment, whatever ends the experiment.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start slum run: %w", err)
	}
	c := &child{cmd: cmd, addr: addr, done: make(chan error, 1), logf: logf}
	go func() { c.done <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-c.done:
			c.done <- err
			return nil, fmt.Errorf("slum run exited at once (%v); see %s", err, spec.Log)
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			conn.Close()
			return c, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = c.Kill()
	return nil, fmt.Errorf("slum run's router did not listen on %s within 15s; see %s", addr, spec.Log)
}

func (c *child) RouterAddr() string { return c.addr }

func (c *child) Stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		c.done <- err
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		c.done <- <-c.done
	}
	c.logf.Close()
	return nil
}

func (c *child) Kill() error {
	_ = c.cmd.Process.Kill()
	err := <-c.done
	c.done <- err
	c.logf.Close()
	return nil
}

// freeLoopbackAddr finds a loopback port nothing listens on now.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// observeExperiment records what a fault the operator causes costs an
// existing fleet, through its router and from its database.
func (a *app) observeExperiment(ctx context.Context, routerAddr, out string, duration time.Duration, rate float64, timeout time.Duration) error {
	if _, port, err := net.SplitHostPort(routerAddr); err != nil || port == "" {
		return &slum.FieldError{Field: "--router", Value: routerAddr, Reason: "must be host:port, where the fleet's router listens"}
	}
	if duration <= 0 || duration > 24*time.Hour {
		return &slum.FieldError{Field: "--duration", Value: duration.String(), Reason: "must be more than 0 and at most 24h"}
	}
	st, err := a.open(ctx, dbMustExist)
	if err != nil {
		return err
	}
	defer st.Close()
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if err := experiment.PrepareDir(abs); err != nil {
		return err
	}
	rep, err := experiment.Observe(ctx, experiment.ObserveOptions{Store: st, RouterAddr: routerAddr, Rate: rate, Timeout: timeout,
		Duration: duration, ReturnGrace: reconcile.DefaultConfig().PollInterval, Progress: newProgress(a.stderr).show})
	if err != nil {
		return err
	}
	return a.writeExperiment(rep, abs)
}
