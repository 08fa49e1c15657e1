package experiment

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/localfleet"
	"github.com/slum-fleet/slum/names"
	"github.com/slum-fleet/slum/observed"
	"github.com/slum-fleet/slum/postgres"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// ControllerSpec says how to start the controller under test.
type ControllerSpec struct {
	DB string
	// Separate: run it as a process of its own, which Kill ends with
	// SIGKILL (for a controller killed mid-failover).
	Separate bool
	// RouterAddr is where its router listens; "" picks a free loopback
	// port.
	RouterAddr string
	// Log is the file its log goes to.
	Log string
	// Netns is the network namespace it runs in ("": this machine's).
	Netns string
}

// Launcher starts the controller and its router, as 'slum run' does.
type Launcher interface {
	Start(ctx context.Context, spec ControllerSpec) (Controller, error)
}

// Controller is a running controller with its router.
type Controller interface {
	RouterAddr() string
	// Stop ends it as SIGTERM would: in-flight calls finish.
	Stop() error
	// Kill ends it at once, as SIGKILL does; only a Separate one can be.
	Kill() error
}

// Options describe an experiment.
type Options struct {
	Faults  []Fault
	Trials  int
	Seed    int64
	Servers int
	Tenants int
	// File is the fleet to load; nil: DefaultFleet(Servers, Tenants).
	// Its servers are pointed at the local fleet's.
	File *desired.File
	// Settings are the fleet's failure detection and failover settings.
	Settings slum.Settings
	Backend  string // localfleet backend; "" picks real tenement when it can
	// DB is the Postgres database (a postgres:// URL) in which the leader
	// faults make each trial's fleet, in a schema of its own
	// (slum_experiment_<fault>_<trial>, dropped and made again).
	DB  string
	Dir string
	// Rate is the load per tenant, in requests a second; Timeout bounds
	// each request.
	Rate    float64
	Timeout time.Duration
	// ReturnGrace is one controller poll: a copy may run on two servers
	// that long after its server returns.
	ReturnGrace time.Duration
	Launcher    Launcher
	Progress    func(Progress)
	Clock       clock.Clock
}

// Progress is where an experiment is.
type Progress struct {
	Fault         Fault
	Trial, Trials int
	Phase         string
	Done          *Trial // set when a trial ends
}

// Report is an experiment's outcome.
type Report struct {
	Backend       string        `json:"backend"`
	BackendReason string        `json:"backend_reason"`
	Servers       int           `json:"servers"`
	Tenants       int           `json:"tenants"`
	WarmTenants   int           `json:"warm_spare_tenants"`
	Settings      slum.Settings `json:"settings"`
	Seed          int64         `json:"seed"`
	TrialsAsked   int           `json:"trials_asked"`
	Faults        []Fault       `json:"faults"`
	Rate          float64       `json:"rate_per_tenant"`
	Started       time.Time     `json:"started"`
	Finished      time.Time     `json:"finished"`
	Interrupted   bool          `json:"interrupted"`
	Observe       bool          `json:"observe,omitempty"`
	// Data: a data experiment (RunData), whose trials carry Trial.Data.
	Data       bool      `json:"data,omitempty"`
	Trials     []Trial   `json:"trials"`
	Summaries  []Summary `json:"summaries"`
	Pictures   []string  `json:"pictures"`
	LeftBehind []string  `json:"left_behind"`
	// LoadAverage is this machine's load average (/proc/loadavg) as the
	// experiment started and ended: others' work skews what it measures.
	LoadAverage []string `json:"load_average"`
}

// loadAverage reads this machine's 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Run runs the experiment: a local fleet, then each fault's trials in
// turn. When ctx ends it stops cleanly (the fault undone, the controller
// and the fleet stopped) and reports the trials that finished.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	file := opt.File
	if file == nil {
		var err error
		if file, err = DefaultFleet(opt.Servers, opt.Tenants); err != nil {
			return nil, err
		}
	}
	rep := &Report{Servers: len(file.Servers), Tenants: len(file.Tenants), Settings: opt.Settings, Seed: opt.Seed,
		TrialsAsked: opt.Trials, Faults: opt.Faults, Rate: opt.Rate, Started: time.Now(), Trials: []Trial{}, LeftBehind: []string{},
		LoadAverage: []string{loadAverage()}}
	opt.progress(Progress{Phase: "starting the local fleet"})
	fleet, err := localfleet.Start(ctx, localfleet.Options{Servers: len(file.Servers), Dir: filepath.Join(opt.Dir, "servers"),
		Backend: opt.Backend, Services: Processes(file), Names: file.ServerIDs()})
	if err != nil {
		return nil, fmt.Errorf("start the local fleet: %w", err)
	}
	rep.Backend, rep.BackendReason = fleet.Backend, fleet.Reason
	if fleet.Backend == localfleet.BackendTenement {
		opt.progress(Progress{Phase: "using " + fleet.Reason})
	} else {
		opt.progress(Progress{Phase: "using SIMULATED tenement servers (slum's own simulator, not tenement): " + fleet.Reason})
	}
	for _, t := range file.Tenants {
		if len(t.Instances) > 1 {
			rep.WarmTenants++
		}
	}
	if file, err = localfleet.PointAt(file, fleet.Members); err != nil {
		fleet.Close()
		return nil, err
	}
	hosts, relays, restore, err := controllerHosts(opt.Faults, fleet, opt.DB)
	if err != nil {
		fleet.Close()
		return nil, err
	}
	defer restore()
	defer func() {
		fleet.Close()
		rep.LeftBehind = append(rep.LeftBehind, namespacesLeft(fleet)...)
		rep.LoadAverage = append(rep.LoadAverage, loadAverage())
	}()
	// The fleet file names the servers; the i-th is the i-th local one.
	ids := map[*localfleet.Member]string{}
	for i, m := range fleet.Members {
		ids[m] = file.Servers[i].ID
	}
	runTrials(ctx, rep, opt.Faults, opt.Trials, opt.Seed, opt.Dir, opt.progress, func(t trialSpec) Trial {
		r := trialRun{opt: opt, file: file, fleet: fleet, ids: ids, hosts: hosts, relays: relays, fault: t.fault, k: t.k,
			rng: t.rng, dir: t.dir}
		return Measure(r.run(ctx))
	})
	return rep, nil
}

// trialSpec is one trial's place in an experiment: its fault, its number
// among that fault's trials (k) and in the whole run (n), its own random
// source and its directory.
type trialSpec struct {
	fault Fault
	k, n  int
	rng   *rand.Rand
	dir   string
}

// runTrials runs each fault's trials in turn into rep, each reported as it
// ends; when ctx ends it stops (rep.Interrupted) and keeps only the trials
// that finished.
func runTrials(ctx context.Context, rep *Report, faults []Fault, trials int, seed int64, dir string, progress func(Progress), run func(trialSpec) Trial) {
	n := 0
	for _, f := range faults {
		for k := 1; k <= trials; k++ {
			if ctx.Err() != nil {
				rep.Interrupted = true
				return
			}
			n++
			tr := run(trialSpec{fault: f, k: k, n: n, rng: rand.New(rand.NewPCG(uint64(seed), uint64(n))), dir: filepath.Join(dir, fmt.Sprintf("%s-%d", f, k))})
			if ctx.Err() != nil {
				rep.Interrupted = true
				return
			}
			rep.Trials = append(rep.Trials, tr)
			progress(Progress{Fault: f, Trial: k, Trials: trials, Phase: "done", Done: &tr})
		}
	}
}

func (o Options) progress(p Progress) {
	if o.Progress != nil {
		o.Progress(p)
	}
}

// trialRun is one trial in progress.
type trialRun struct {
	opt    Options
	file   *desired.File
	fleet  *localfleet.Fleet
	ids    map[*localfleet.Member]string // each local server's id in the fleet file
	hosts  []*localfleet.Host            // the leader's and the standby's, for leader-cut
	relays []*relay                      // the database, on each host's end of its link
	fault  Fault
	k      int
	rng    *rand.Rand
	dir    string
	rec    Record
}

func (r *trialRun) phase(p string) {
	r.opt.progress(Progress{Fault: r.fault, Trial: r.k, Trials: r.opt.Trials, Phase: p})
}

func (r *trialRun) fail(err error) Record {
	r.rec.Err = err.Error()
	return r.rec
}

// run runs the trial and returns what it saw. A trial that cannot run to
// its end says why in Record.Err. Whatever happens, it leaves nothing
// running: the fault is undone and the controller stopped, even when ctx
// has ended.
func (r *trialRun) run(ctx context.Context) Record {
	r.rec = Record{Fault: r.fault, Trial: r.k, Seed: r.opt.Seed, ReturnGrace: r.opt.ReturnGrace, AllowVictim: r.fault == FaultRestart}
	st, db, err := r.prepare(ctx)
	if err != nil {
		return r.fail(err)
	}
	defer st.Close()
	t := &trial{st: st, db: db}
	defer t.cleanup(context.WithoutCancel(ctx), r)
	if err := r.start(ctx, t); err != nil {
		return r.fail(err)
	}
	if err := r.fault1(ctx, t); err != nil || ctx.Err() != nil {
		if err != nil {
			return r.fail(err)
		}
		return r.rec
	}
	if err := r.finish(ctx, t); err != nil {
		return r.fail(err)
	}
	return r.rec
}

// trial is what a trial holds while it runs.
type trial struct {
	st      *store.Store
	db      string // where the controllers find the fleet: a file, or a URL with its password
	spec    ControllerSpec
	ctl     Controller
	standby Controller // the second controller of a leader fault, until the leader is killed
	listers map[string]Lister
	targets []Target
	victims []*localfleet.Member
	healed  bool
	obs     *observer
	stopObs func() Watch
	load    *Load
	stopLd  func() []Sample
}

// cleanup undoes what a trial left: the fault, the observer, the load and
// the controller.
func (t *trial) cleanup(ctx context.Context, r *trialRun) {
	if !t.healed {
		r.healAll(ctx, t.victims)
	}
	if t.stopLd != nil {
		t.stopLd()
	}
	if t.stopObs != nil {
		t.stopObs()
	}
	if r.fault == FaultLeaderCut && len(r.hosts) > 0 {
		_ = r.hosts[0].SetLink(true)
	}
	if t.ctl != nil {
		_ = t.ctl.Stop()
	}
	if t.standby != nil {
		_ = t.standby.Stop()
	}
}

// prepare resets the servers and makes the trial's fleet database: a
// SQLite file in the trial's directory, or for a leader fault a schema of
// its own in the Postgres database. It returns where the controllers find
// it.
func (r *trialRun) prepare(ctx context.Context) (*store.Store, string, error) {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, "", err
	}
	r.phase("restarting the tenement servers")
	if err := reset(ctx, r.fleet); err != nil {
		return nil, "", err
	}
	db := filepath.Join(r.dir, "slum.db")
	if r.fault.NeedsPostgres() {
		var err error
		schema := strings.ReplaceAll(fmt.Sprintf("slum_experiment_%s_%d", r.fault, r.k), "-", "_")
		if db, err = postgres.FreshSchema(ctx, r.opt.DB, schema); err != nil {
			return nil, "", err
		}
	}
	st, err := openFleet(ctx, db)
	if err != nil {
		return nil, "", err
	}
	if _, err := st.SetSettings(ctx, r.opt.Settings); err != nil {
		st.Close()
		return nil, "", err
	}
	src, err := desired.Send(r.file)
	if err == nil {
		_, err = st.Apply(ctx, src, slum.ApplyOptions{})
	}
	if err != nil {
		st.Close()
		return nil, "", fmt.Errorf("apply the fleet: %w", err)
	}
	return st, db, nil
}

func openFleet(ctx context.Context, db string) (*store.Store, error) {
	if postgres.IsURL(db) {
		return postgres.Open(ctx, db)
	}
	return sqlite.Open(ctx, db)
}

// start starts the controller, lets the fleet converge, chooses the
// victims and starts watching and loading the fleet.
func (r *trialRun) start(ctx context.Context, t *trial) error {
	r.phase("starting the controller and the router")
	var err error
	if t.spec, err = r.controllerSpec(t.db, 0, "slum.log"); err != nil {
		return err
	}
	ctl, err := r.opt.Launcher.Start(ctx, t.spec)
	if err != nil {
		return fmt.Errorf("start the controller: %w", err)
	}
	t.ctl = ctl
	if t.listers, err = serverListers(ctx, t.st); err != nil {
		return err
	}
	r.phase("converging")
	if t.targets, err = r.converge(ctx, t.st, t.listers, ctl.RouterAddr(), 90*time.Second); err != nil {
		return err
	}
	// Choose the victims and see what the fault will take down.
	t.victims = r.chooseVictims()
	for _, v := range t.victims {
		r.rec.Victims = append(r.rec.Victims, r.ids[v])
	}
	if err := r.expectations(ctx, t.st); err != nil {
		return err
	}
	routerAddr := ctl.RouterAddr()
	if r.fault.NeedsPostgres() {
		if err := r.startStandby(ctx, t); err != nil {
			return err
		}
		// The load goes through the standby's router, which must keep
		// serving while the leader dies and it takes over.
		routerAddr = t.standby.RouterAddr()
	}
	clk := r.opt.Clock
	t.obs = newObserver(t.st, clk, t.listers, r.rec.Victims, r.rec.AllowVictim)
	t.obs.setPhase(listAll)
	t.obs.start(ctx)
	t.stopObs = sync.OnceValue(t.obs.stop)
	r.phase("load")
	t.load = StartLoad(ctx, LoadOptions{RouterAddr: routerAddr, Targets: t.targets, Rate: r.opt.Rate, Timeout: r.opt.Timeout,
		Limit: 3 * time.Minute, Clock: clk})
	t.stopLd = sync.OnceValue(t.load.Stop)
	r.rec.LoadStart = clk.Now()
	return nil
}

// startStandby starts a second controller on the fleet and waits until it
// stands by.
func (r *trialRun) startStandby(ctx context.Context, t *trial) error {
	r.phase("starting a standby controller")
	spec, err := r.controllerSpec(t.db, 1, "slum-standby.log")
	if err != nil {
		return err
	}
	sb, err := r.opt.Launcher.Start(ctx, spec)
	if err != nil {
		return fmt.Errorf("start the standby controller: %w", err)
	}
	t.standby = sb
	deadline := r.opt.Clock.Now().Add(30 * time.Second)
	for r.opt.Clock.Now().Before(deadline) {
		if l, err := t.st.Leadership(ctx, slum.ControllerLease); err == nil && l.Live && len(l.Standbys) > 0 {
			return nil
		}
		if !r.sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	return errors.New("the second controller did not stand by within 30s")
}

// serverListers are clients that list each server of the fleet.
func serverListers(ctx context.Context, st *store.Store) (map[string]Lister, error) {
	servers, err := st.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	listers := make(map[string]Lister, len(servers))
	for _, s := range servers {
		c, err := observed.NewClient(s.URL, s.Token, observed.WithTimeout(time.Second))
		if err != nil {
			return nil, err
		}
		listers[s.ID] = c
	}
	return listers, nil
}

// fault1 injects the trial's fault at a random moment and waits for the
// fleet to recover.
func (r *trialRun) fault1(ctx context.Context, t *trial) error {
	clk := r.opt.Clock
	// Not in step with the controller's probes: a random moment.
	if !r.sleep(ctx, time.Second+time.Duration(r.rng.Int64N(int64(time.Second)))) {
		return nil
	}
	r.phase("fault: " + r.faultText())
	names := make([]string, 0, len(r.rec.Displaced))
	for n := range r.rec.Displaced {
		names = append(names, n)
	}
	t.obs.watch(names)
	t.obs.setPhase(listSurvive)
	r.rec.FaultAt = clk.Now()
	r.rec.Marks = append(r.rec.Marks, Mark{At: r.rec.FaultAt, Kind: MarkFault, Subject: strings.Join(r.rec.Victims, ",")})
	if err := r.injectAll(ctx, t.victims); err != nil {
		return fmt.Errorf("inject %s: %w", r.fault, err)
	}
	switch r.fault {
	case FaultLeaderKill:
		if err := t.ctl.Kill(); err != nil {
			return fmt.Errorf("kill the leader: %w", err)
		}
		r.rec.ControllerKilledAt = r.rec.FaultAt
		t.ctl, t.standby = t.standby, nil
	case FaultLeaderCut:
		if err := r.hosts[0].SetLink(false); err != nil {
			return fmt.Errorf("cut the leader off: %w", err)
		}
		r.rec.ControllerKilledAt = r.rec.FaultAt
	}
	if r.fault == FaultRestart {
		// Until the restart is done the server may still list what it
		// is about to lose: that is not running again.
		r.rec.ListFrom = clk.Now()
		t.obs.watch(names)
	}
	if r.fault == FaultControllerKill {
		r.phase("waiting for the failover to start, to kill the controller")
		ctl, err := r.killController(ctx, t.obs, t.ctl, t.spec)
		t.ctl = ctl
		if err != nil {
			return err
		}
	}
	r.phase("recovering")
	r.waitRecovered(ctx, t.st, t.obs, t.load)
	return nil
}

// finish undoes the fault, waits for the victims to return, and reads
// what the trial left behind and what it measured.
func (r *trialRun) finish(ctx context.Context, t *trial) error {
	clk := r.opt.Clock
	r.phase("undoing the fault")
	t.obs.setPhase(listAll)
	if r.fault != FaultRestart {
		r.rec.HealAt = clk.Now()
		r.rec.Marks = append(r.rec.Marks, Mark{At: r.rec.HealAt, Kind: MarkHealed, Subject: strings.Join(r.rec.Victims, ",")})
	}
	t.healed = true
	if err := r.healAll(ctx, t.victims); err != nil {
		return fmt.Errorf("undo %s: %w", r.fault, err)
	}
	if r.fault == FaultLeaderCut {
		if err := r.hosts[0].SetLink(true); err != nil {
			return fmt.Errorf("undo %s: %w", r.fault, err)
		}
	}
	r.phase("returning")
	r.waitReturned(ctx, t.obs)
	if ctx.Err() != nil {
		return nil
	}
	r.rec.LoadEnd = clk.Now()
	r.rec.Samples = t.stopLd()
	watch := t.stopObs()
	r.phase("checking what is left")
	r.rec.LeftBehind = r.leftBehind(ctx, t.st, t.listers)
	err := t.ctl.Stop()
	t.ctl = nil
	if err != nil && !errors.Is(err, context.Canceled) {
		r.rec.LeftBehind = append(r.rec.LeftBehind, "the controller stopped with an error: "+err.Error())
	}
	interpret(&r.rec, watch)
	return nil
}

func (r *trialRun) faultText() string {
	v := strings.Join(r.rec.Victims, ", ")
	switch r.fault {
	case FaultKill:
		return "kill -9 of " + v
	case FaultWholeKill:
		return "every process of " + v + " killed"
	case FaultHang:
		return "SIGSTOP of " + v
	case FaultCut:
		return "link of " + v + " cut"
	case FaultRestart:
		return "restart of " + v
	case FaultControllerKill:
		return "kill -9 of " + v + ", then of the controller"
	case FaultPartition:
		return "links of " + v + " cut"
	case FaultLeaderKill:
		return "kill -9 of the leading controller"
	case FaultLeaderCut:
		return "the leading controller's link cut"
	}
	return string(r.fault)
}

func (r *trialRun) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-r.opt.Clock.After(d):
		return true
	}
}

// chooseVictims picks the servers the fault hits: one, or for a partition
// the fewest whose share of the fleet exceeds partition_fraction.
func (r *trialRun) chooseVictims() []*localfleet.Member {
	ms := r.fleet.Members
	n := 1
	if r.fault.NeedsPostgres() {
		n = 0 // no server is hit: the controller is
	} else if r.fault == FaultPartition {
		n = min(len(ms), int(r.opt.Settings.PartitionFraction*float64(len(ms)))+1)
	}
	perm := r.rng.Perm(len(ms))
	out := make([]*localfleet.Member, 0, n)
	for _, i := range perm[:n] {
		out = append(out, ms[i])
	}
	sort.Slice(out, func(i, j int) bool { return r.ids[out[i]] < r.ids[out[j]] })
	return out
}

// expectations work out, from the converged fleet, what the fault takes
// down: the displaced instances, the tenants with a warm spare, and those
// expected to stay down.
func (r *trialRun) expectations(ctx context.Context, st *store.Store) error {
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return err
	}
	victim := map[string]bool{}
	for _, v := range r.rec.Victims {
		victim[v] = true
	}
	tenants := map[string]slum.Tenant{}
	for _, t := range snap.Tenants {
		tenants[t.ID] = t
	}
	on, off := map[string]int{}, map[string]int{}
	r.rec.Displaced, r.rec.Warm, r.rec.Down = map[string]string{}, map[string]bool{}, map[string]bool{}
	for _, in := range snap.Instances {
		if in.DesiredState != slum.StateRunning || in.Mode != slum.ModeAlways {
			continue
		}
		if !victim[in.ServerID] {
			off[in.TenantID]++
			continue
		}
		on[in.TenantID]++
		moves := r.fault == FaultRestart || (r.fault.Moves() && tenants[in.TenantID].Failover == slum.FailoverMove)
		if moves {
			r.rec.Displaced[in.TenementName()] = in.TenantID
		}
	}
	r.rec.Affected = map[string]bool{}
	for t := range on {
		r.rec.Affected[t] = true
		switch {
		case off[t] > 0:
			r.rec.Warm[t] = true
		case r.fault == FaultPartition || tenants[t].Failover == slum.FailoverNone && r.fault != FaultRestart:
			r.rec.Down[t] = true
		}
	}
	return nil
}

func (r *trialRun) injectAll(ctx context.Context, victims []*localfleet.Member) error {
	errs := make([]error, len(victims))
	var wg sync.WaitGroup
	for i, m := range victims {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = inject(ctx, r.fault, m) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *trialRun) healAll(ctx context.Context, victims []*localfleet.Member) error {
	errs := make([]error, len(victims))
	var wg sync.WaitGroup
	for i, m := range victims {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = heal(ctx, r.fault, m) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// converge waits until every instance runs where the desired state puts
// it (by the servers' own lists) and the router serves every tenant from
// one of its copies; it returns the load's targets.
func (r *trialRun) converge(ctx context.Context, st *store.Store, listers map[string]Lister, routerAddr string, limit time.Duration) ([]Target, error) {
	tenants, err := st.ListTenants(ctx)
	if err != nil {
		return nil, err
	}
	ins, err := st.ListInstances(ctx)
	if err != nil {
		return nil, err
	}
	targets := targetsOf(tenants, ins)
	if len(targets) == 0 {
		return nil, errors.New("no tenant has an instance that should run: there is nothing to send load to")
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	why := "nothing checked yet"
	for time.Now().Before(deadline) {
		why = r.unconverged(ctx, st, listers, routerAddr, targets, client)
		if why == "" {
			return targets, nil
		}
		if !r.sleep(ctx, 250*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("the fleet did not converge in %s: %s", limit, why)
}

// targetsOf lists the tenants to send load to: a tenant none of whose
// instances should run is not served by design.
func targetsOf(tenants []slum.Tenant, ins []slum.Instance) []Target {
	runs := map[string]bool{}
	for _, in := range ins {
		runs[in.TenantID] = runs[in.TenantID] || in.DesiredState == slum.StateRunning
	}
	var out []Target
	for _, t := range tenants {
		if runs[t.ID] {
			out = append(out, Target{Tenant: t.ID, Domain: t.Domain})
		}
	}
	return out
}

// unconverged says what is not yet as it should be, or "".
func (r *trialRun) unconverged(ctx context.Context, st *store.Store, listers map[string]Lister, routerAddr string, targets []Target, client *http.Client) string {
	ins, err := st.ListInstances(ctx)
	if err != nil {
		return err.Error()
	}
	listed := map[string]map[string]bool{}
	for id, l := range listers {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		list, err := l.List(lctx)
		cancel()
		if err != nil {
			return fmt.Sprintf("server %s does not list its instances: %v", id, err)
		}
		listed[id] = map[string]bool{}
		for _, in := range list {
			listed[id][in.Name] = true
		}
	}
	for _, in := range ins {
		if in.DesiredState == slum.StateRunning && in.Mode == slum.ModeAlways && !listed[in.ServerID][in.TenementName()] {
			return fmt.Sprintf("%s does not run on %s yet", in.Key(), in.ServerID)
		}
	}
	ts, err := st.ListTenantStatus(ctx)
	if err != nil {
		return err.Error()
	}
	copies := map[string]int{}
	for _, in := range ins {
		if in.DesiredState == slum.StateRunning {
			copies[in.TenantID]++
		}
	}
	for _, t := range ts {
		if copies[t.TenantID] > len(t.Serving)+len(t.Spares) {
			return fmt.Sprintf("the controller does not count every copy of %s as running yet", t.TenantID)
		}
	}
	for _, t := range targets {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+routerAddr+"/experiment", nil)
		req.Host = t.Domain
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Sprintf("the router does not answer for %s: %v", t.Tenant, err)
		}
		body := make([]byte, 4096)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("the router answers %d for %s", resp.StatusCode, t.Tenant)
		}
		if out, _ := answeredBy(t.Tenant, body[:n]); out != OutcomeOK {
			return fmt.Sprintf("the router's answer for %s is not its app's", t.Tenant)
		}
	}
	return ""
}

// killController waits for the controller to start the failover (an
// instance placed away from a victim), kills it with SIGKILL and starts
// another on the same database and router address.
func (r *trialRun) killController(ctx context.Context, obs *observer, ctl Controller, spec ControllerSpec) (Controller, error) {
	clk := r.opt.Clock
	deadline := clk.Now().Add(30 * time.Second)
	for len(obs.latest().Placements) == 0 && !hasReason(obs.latest().Events, slum.ReasonRescheduled) {
		if clk.Now().After(deadline) {
			return ctl, errors.New("the controller did not start a failover within 30s, so it was not killed")
		}
		if !r.sleep(ctx, 5*time.Millisecond) {
			return ctl, ctx.Err()
		}
	}
	spec.RouterAddr = ctl.RouterAddr()
	if err := ctl.Kill(); err != nil {
		return ctl, fmt.Errorf("kill the controller: %w", err)
	}
	r.rec.ControllerKilledAt = clk.Now()
	r.rec.Marks = append(r.rec.Marks, Mark{At: r.rec.ControllerKilledAt, Kind: MarkControllerKill})
	r.phase("controller killed; starting another")
	next, err := r.opt.Launcher.Start(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("start the next controller: %w", err)
	}
	return next, nil
}

func hasReason(evs []slum.Event, reason slum.EventReason) bool {
	for _, e := range evs {
		if e.Reason == reason {
			return true
		}
	}
	return false
}

// waitRecovered waits until the fault has cost what it will: every
// displaced instance runs again and no request has failed for a while
// (or, for a partition, the controller has held the failover a while).
func (r *trialRun) waitRecovered(ctx context.Context, st *store.Store, obs *observer, load *Load) {
	clk := r.opt.Clock
	defer r.dropUnplaceable()
	var lastCheck time.Time
	s := r.opt.Settings
	detect := s.ProbeInterval*time.Duration(s.DeadAfter) + s.ProbeTimeout
	limit := max(30*time.Second, 3*detect)
	deadline := r.rec.FaultAt.Add(limit)
	quiet := 1500 * time.Millisecond
	for clk.Now().Before(deadline) {
		now := clk.Now()
		w := obs.latest()
		lastFail := load.Status().LastFailure
		calm := lastFail.Before(r.rec.FaultAt) || now.Sub(lastFail) > quiet
		switch {
		case r.fault == FaultPartition:
			// Nothing may move: hold the partition until the controller
			// has said it holds back, and a while longer.
			if at := firstReasonAfter(w.Events, r.rec.FaultAt, slum.ReasonHeld, slum.ReasonFailoverBlocked); !at.IsZero() && now.Sub(at) > 3*time.Second {
				return
			}
		case r.fault.NeedsPostgres():
			// Done once another controller leads and the load is calm.
			if at := takeoverAt(w.Leases); !at.IsZero() && now.Sub(at) > quiet && calm {
				return
			}
		case len(r.rec.Displaced) == 0:
			if now.Sub(r.rec.FaultAt) > detect+quiet && calm {
				return
			}
		case obs.seenAll() && calm:
			return
		}
		if now.Sub(lastCheck) > 250*time.Millisecond {
			lastCheck = now
			if r.findUnplaceable(ctx, st) {
				var rest []string
				for name := range r.rec.Displaced {
					if !slices.Contains(r.rec.Unplaceable, name) {
						rest = append(rest, name)
					}
				}
				obs.watch(rest)
				if len(rest) == 0 && calm && now.Sub(r.rec.FaultAt) > detect+quiet {
					return
				}
			}
		}
		if !r.sleep(ctx, 50*time.Millisecond) {
			return
		}
	}
}

// findUnplaceable notes the displaced instances the controller reports it
// cannot place anywhere (no server has room, or every other one holds a
// copy of the tenant); it reports whether there are any.
func (r *trialRun) findUnplaceable(ctx context.Context, st *store.Store) bool {
	sts, err := st.ListInstanceStatus(ctx)
	if err != nil {
		return len(r.rec.Unplaceable) > 0
	}
	displaced := map[slum.InstanceKey]string{}
	for name := range r.rec.Displaced {
		if _, tenant, inst, ok := names.ParseTenementName(name); ok {
			displaced[slum.KeyOf(tenant, inst)] = name
		}
	}
	r.rec.Unplaceable = nil
	for _, s := range sts {
		if n, ok := displaced[s.Key()]; ok && s.Phase == slum.PhaseUnplaceable {
			r.rec.Unplaceable = append(r.rec.Unplaceable, n)
		}
	}
	sort.Strings(r.rec.Unplaceable)
	return len(r.rec.Unplaceable) > 0
}

// dropUnplaceable leaves the instances that could not be placed out of
// the displaced ones: "every displaced instance runs again" is about those
// that could.
func (r *trialRun) dropUnplaceable() {
	for _, n := range r.rec.Unplaceable {
		delete(r.rec.Displaced, n)
	}
}

func firstReasonAfter(evs []slum.Event, after time.Time, reasons ...slum.EventReason) time.Time {
	for _, e := range evs {
		for _, want := range reasons {
			if e.Reason == want && !e.At.Before(after.Truncate(time.Millisecond)) {
				return e.At
			}
		}
	}
	return time.Time{}
}

// waitReturned waits until every victim is online again by the
// controller's view, one controller poll more, and until no server lists
// a copy the desired state puts elsewhere.
func (r *trialRun) waitReturned(ctx context.Context, obs *observer) {
	clk := r.opt.Clock
	from := r.rec.HealAt
	if from.IsZero() {
		// Nothing was undone (a restart is its own end): the server is
		// back once it is online again after the fault, or if the
		// controller never saw it go.
		from = r.rec.FaultAt
	}
	deadline := clk.Now().Add(45 * time.Second)
	for clk.Now().Before(deadline) {
		hs := obs.latest().Health
		back := backAt(hs, r.rec.Victims, from)
		if back.IsZero() && (len(r.rec.Victims) == 0 || r.rec.HealAt.IsZero() && allOnline(hs, r.rec.Victims)) {
			// No server was hit (a leader fault), or none went away.
			back = from
		}
		if !back.IsZero() && clk.Now().Sub(back) > r.opt.ReturnGrace+time.Second && obs.clean() {
			return
		}
		if !r.sleep(ctx, 100*time.Millisecond) {
			return
		}
	}
}

// allOnline reports whether the controller last saw every victim online.
func allOnline(hs []HealthChange, victims []string) bool {
	last := map[string]slum.Health{}
	for _, h := range hs {
		last[h.Server] = h.Health
	}
	for _, v := range victims {
		if last[v] != slum.HealthOnline {
			return false
		}
	}
	return true
}

// backAt is when the last of the victims was online again after from, by
// the controller's view; zero while one is not.
func backAt(hs []HealthChange, victims []string, from time.Time) time.Time {
	last := map[string]HealthChange{}
	for _, h := range hs {
		last[h.Server] = h
	}
	var at time.Time
	for _, v := range victims {
		h, ok := last[v]
		if !ok || h.Health != slum.HealthOnline || h.Seen.Before(from) {
			return time.Time{}
		}
		since := h.Since
		if since.Before(from) {
			since = h.Seen
		}
		if since.After(at) {
			at = since
		}
	}
	return at
}

// leftBehind lists what the trial leaves that it should not: copies that
// run where the desired state does not put them, instances that do not run
// where it does, holds still open.
func (r *trialRun) leftBehind(ctx context.Context, st *store.Store, listers map[string]Lister) []string {
	return leftBehind(ctx, st, listers, r.fleet, r.ids, 1)
}

// leftBehind is trialRun.leftBehind for any fleet, whose servers have the
// fleet file's ids, whose instances run perInstance processes at most (the
// test app alone: 1).
func leftBehind(ctx context.Context, st *store.Store, listers map[string]Lister, fleet *localfleet.Fleet, serverIDs map[*localfleet.Member]string, perInstance int) []string {
	out := []string{}
	ins, err := st.ListInstances(ctx)
	if err != nil {
		return append(out, "cannot read the desired state: "+err.Error())
	}
	want := map[string]slum.Instance{}
	for _, in := range ins {
		want[in.TenementName()] = in
	}
	listed := map[string][]string{}
	ids := make([]string, 0, len(listers))
	for id := range listers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		list, err := listers[id].List(lctx)
		cancel()
		if err != nil {
			out = append(out, fmt.Sprintf("server %s cannot be listed: %v", id, err))
			continue
		}
		for _, o := range list {
			listed[o.Name] = append(listed[o.Name], id)
			in, ok := want[o.Name]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("%s runs on %s and belongs to no instance", o.Name, id))
			case in.ServerID != id:
				out = append(out, fmt.Sprintf("stale copy of %s runs on %s (placed on %s)", in.Key(), id, in.ServerID))
			}
		}
	}
	for _, in := range ins {
		if in.DesiredState == slum.StateRunning && in.Mode == slum.ModeAlways {
			found := false
			for _, s := range listed[in.TenementName()] {
				found = found || s == in.ServerID
			}
			if !found {
				out = append(out, fmt.Sprintf("%s does not run on %s, where it is placed", in.Key(), in.ServerID))
			}
		}
	}
	if holds, err := st.OpenHolds(ctx); err == nil {
		for _, h := range holds {
			out = append(out, fmt.Sprintf("hold %d (%s) still open: %s", h.ID, h.Kind, h.Summary))
		}
	}
	// A killed tenement's instances outlive it; once it is back, nothing
	// may run in its namespace beyond the server and what it lists.
	for _, m := range fleet.Members {
		n, err := processesIn(m)
		if err != nil || m.Host == nil {
			continue
		}
		runs := 0
		for _, servers := range listed {
			for _, s := range servers {
				if s == serverIDs[m] {
					runs++
				}
			}
		}
		if extra := n - 1 - perInstance*runs; extra > 0 {
			out = append(out, fmt.Sprintf("%d process(es) in %s's namespace beyond its server and the %d instances it lists (%d each at most)", extra, serverIDs[m], runs, perInstance))
		}
	}
	return out
}

// interpret reads the observer's raw watch into the record: detection,
// the first move, holds, the return, fencing, placements that changed.
func interpret(rec *Record, w Watch) {
	t0 := rec.FaultAt
	victim := map[string]bool{}
	for _, v := range rec.Victims {
		victim[v] = true
	}
	earliest := func(cur *time.Time, t time.Time) {
		if t.IsZero() || t.Before(t0.Truncate(time.Millisecond)) {
			return
		}
		if cur.IsZero() || t.Before(*cur) {
			*cur = t
		}
	}
	for _, h := range w.Health {
		if victim[h.Server] && h.Health == slum.HealthDead {
			earliest(&rec.DeadAt, h.Since)
		}
	}
	for _, e := range w.Events {
		switch e.Reason {
		case slum.ReasonServerDead:
			if e.Object.Kind() == slum.ObjectServer && victim[e.Object.ID()] {
				earliest(&rec.DeadAt, e.At)
			}
		case slum.ReasonFailoverStarted:
			earliest(&rec.DeadAt, e.At)
		case slum.ReasonRescheduled:
			earliest(&rec.DeadAt, e.At)
			earliest(&rec.FailoverAt, e.At)
		case slum.ReasonHeld, slum.ReasonFailoverBlocked:
			if rec.HeldAt.IsZero() {
				earliest(&rec.HeldAt, e.At)
			}
		}
		if m, ok := markOf(e); ok && !e.At.Before(t0.Truncate(time.Millisecond)) {
			rec.Marks = append(rec.Marks, m)
		}
	}
	for _, p := range w.Placements {
		earliest(&rec.FailoverAt, p.Seen)
		rec.Moved = append(rec.Moved, fmt.Sprintf("%s: %s -> %s", p.Key, p.From, p.To))
	}
	if !rec.HealAt.IsZero() {
		rec.BackAt = backAt(w.Health, rec.Victims, rec.HealAt)
	}
	if !rec.BackAt.IsZero() {
		rec.Marks = append(rec.Marks, Mark{At: rec.BackAt, Kind: MarkBack, Subject: strings.Join(rec.Victims, ",")})
	}
	if at := takeoverAt(w.Leases); !rec.ControllerKilledAt.IsZero() && !at.IsZero() {
		rec.ControllerBackAt = at
		rec.Marks = append(rec.Marks, Mark{At: at, Kind: MarkControllerBack})
	}
	rec.Rounds = w.Rounds
}

// takeoverAt is when the lease was first seen held under an epoch other
// than the first one seen: another controller leads. Zero until then.
func takeoverAt(ls []LeaseChange) time.Time {
	if len(ls) == 0 {
		return time.Time{}
	}
	for _, l := range ls[1:] {
		if l.Epoch != ls[0].Epoch && l.Holder != "" {
			return l.Seen
		}
	}
	return time.Time{}
}

// markOf turns an event worth drawing into a Mark.
func markOf(e slum.Event) (Mark, bool) {
	if e.Reason == slum.ReasonFenced && e.Object.Kind() != slum.ObjectInstance {
		return Mark{}, false // the server's "back, fencing" news, not a copy stopped
	}
	subject := e.Object.ID()
	kind, ok := map[slum.EventReason]MarkKind{
		slum.ReasonServerDead: MarkDetected, slum.ReasonRescheduled: MarkFailover,
		slum.ReasonServingChanged: MarkServing, slum.ReasonFenced: MarkFenced,
		slum.ReasonHeld: MarkHeld, slum.ReasonFailoverBlocked: MarkHeld,
	}[e.Reason]
	return Mark{At: e.At, Kind: kind, Subject: subject}, ok
}
