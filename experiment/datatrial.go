package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/internal/replicastore"
	"github.com/slum-fleet/slum/localfleet"
	"github.com/slum-fleet/slum/observed"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// dataCopyProcesses is how many processes a copy of the data tenant runs
// at most: the guard, the app and Litestream.
const dataCopyProcesses = 3

// dataRun is one data trial in progress.
type dataRun struct {
	opt      DataOptions
	fleet    *localfleet.Fleet
	fault    Fault
	k        int
	tenant   string
	endpoint string // the replica store's, as this machine reaches it
	rng      *rand.Rand
	dir      string

	members map[string]*localfleet.Member
	ids     map[*localfleet.Member]string
	clients map[string]*observed.Client
	st      *store.Store
	ctl     Controller
	spec    ControllerSpec
	victim  string
	w       *dataWriter
	orphan  *orphanWriter
	healed  bool
	tr      Trial
	rec     DataRecord
}

func (r *dataRun) phase(p string) {
	r.opt.progress(Progress{Fault: r.fault, Trial: r.k, Trials: r.opt.Trials, Phase: p})
}

// run runs the trial and returns its figures; a trial that cannot run to
// its end says why in Trial.Error. Whatever happens it leaves nothing
// running: the fault undone, the writers and the controller stopped.
func (r *dataRun) run(ctx context.Context) Trial {
	// Data is set even when the trial fails: it marks a data trial.
	r.tr = Trial{Fault: r.fault, Trial: r.k, Seed: r.opt.Seed, LeftBehind: []string{}, Marks: []MarkAt{}, Data: &DataTrial{Tenant: r.tenant}}
	defer r.cleanup(context.WithoutCancel(ctx))
	err := r.prepare(ctx)
	if err == nil {
		err = r.start(ctx)
	}
	if err == nil {
		err = r.inject(ctx)
	}
	if err == nil && ctx.Err() == nil {
		err = r.finish(ctx)
	}
	if err != nil {
		r.tr.Error = err.Error()
	}
	return r.tr
}

func (r *dataRun) cleanup(ctx context.Context) {
	r.orphan.halt()
	if r.w != nil {
		r.w.halt()
	}
	if !r.healed && r.victim != "" {
		_ = heal(ctx, r.fault, r.members[r.victim])
	}
	if r.ctl != nil {
		_ = r.ctl.Stop()
	}
	if r.st != nil {
		r.st.Close()
	}
}

// prepare restarts the servers and makes the trial's fleet database with
// one replicated tenant, served from a server chosen at random: the victim.
func (r *dataRun) prepare(ctx context.Context) error {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	r.phase("restarting the tenement servers")
	if err := reset(ctx, r.fleet); err != nil {
		return err
	}
	r.members, r.ids = map[string]*localfleet.Member{}, map[*localfleet.Member]string{}
	for _, m := range r.fleet.Members {
		r.members[m.ID], r.ids[m] = m, m.ID
	}
	r.victim = r.fleet.Members[r.rng.IntN(len(r.fleet.Members))].ID
	r.tr.Victims = []string{r.victim}
	file, err := dataFleet(r.fleet.Members, r.tenant, r.victim, fmt.Sprintf("s3://%s/experiment/%s?endpoint=%s", replicastore.Bucket, r.tenant, r.endpoint))
	if err != nil {
		return err
	}
	db := filepath.Join(r.dir, "slum.db")
	if r.st, err = sqlite.Open(ctx, db); err != nil {
		return err
	}
	if _, err := r.st.SetSettings(ctx, r.opt.Settings); err != nil {
		return err
	}
	src, err := desired.Send(file)
	if err == nil {
		_, err = r.st.Apply(ctx, src, slum.ApplyOptions{})
	}
	if err != nil {
		return fmt.Errorf("apply the fleet: %w", err)
	}
	r.spec = ControllerSpec{DB: db, Separate: r.fault == FaultControllerKill, Log: filepath.Join(r.dir, "slum.log")}
	r.clients = map[string]*observed.Client{}
	for _, m := range r.fleet.Members {
		if r.clients[m.ID], err = observed.NewClient(m.URL, m.Token, observed.WithTimeout(2*time.Second)); err != nil {
			return err
		}
	}
	return nil
}

// dataFleet is a data trial's fleet file: the local servers and one
// replicated tenant with one copy, on server on.
func dataFleet(members []*localfleet.Member, tenant, on, replicaURL string) (*desired.File, error) {
	var b strings.Builder
	b.WriteString("version: 1\nservers:\n")
	for i, m := range members {
		fmt.Fprintf(&b, "  - {id: %s, url: \"http://127.0.0.1:%d\", capacity_mb: 65536, no_token: true}\n", m.ID, 18080+i)
	}
	fmt.Fprintf(&b, "tenants:\n  - {id: %s, domain: %s.experiment.test, data: replicated, replica: '%s', instances: [{id: prod, process: %s, server: %s, memory_mb: 64}]}\n",
		tenant, tenant, replicaURL, dataProcess, on)
	f, err := desired.Parse("built-in data experiment fleet", []byte(b.String()))
	if err != nil {
		return nil, err
	}
	return localfleet.PointAt(f, members)
}

// start starts the controller, waits until the victim serves the tenant,
// and starts writing.
func (r *dataRun) start(ctx context.Context) error {
	r.phase("starting the controller and the router")
	ctl, err := r.opt.Launcher.Start(ctx, r.spec)
	if err != nil {
		return fmt.Errorf("start the controller: %w", err)
	}
	r.ctl = ctl
	r.phase("waiting for the tenant to be served with its database")
	r.w = newDataWriter(r.members, r.st, r.tenant)
	if !r.until(ctx, 90*time.Second, func() bool {
		if r.w.serving(ctx) != r.victim {
			return false
		}
		_, err := r.w.bodies(ctx, r.victim)
		return err == nil
	}) {
		return fmt.Errorf("the tenant was not served from %s with its database within 90s", r.victim)
	}
	r.phase("writing")
	r.w.start(ctx)
	if r.fault.OrphansLive() {
		port, err := r.copyPort(ctx, r.victim)
		if err != nil {
			return err
		}
		if r.orphan, err = startOrphanWriter(r.members[r.victim], r.victim, port, 3*time.Minute); err != nil {
			return err
		}
	}
	// A few seconds of writes, replicated; then a moment out of step with
	// the controller's probes and Litestream's syncs.
	if !r.sleep(ctx, 3*time.Second+time.Duration(r.rng.Int64N(int64(time.Second)))) {
		return ctx.Err()
	}
	return nil
}

// copyPort is the local port of the tenant's copy on server, as its
// tenement lists it.
func (r *dataRun) copyPort(ctx context.Context, server string) (int, error) {
	list, err := r.clients[server].List(ctx)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", server, err)
	}
	name := dataProcess + ":" + r.tenant + "--prod"
	for _, in := range list {
		if in.Name == name {
			if port, err := strconv.Atoi(in.Socket[strings.LastIndex(in.Socket, ":")+1:]); err == nil {
				return port, nil
			}
		}
	}
	return 0, fmt.Errorf("%s does not list %s with a port", server, name)
}

// inject causes the fault (for controller-kill, also kills the controller
// once it has started the failover) and waits until a copy on another
// server acknowledges a write: served again with its data.
func (r *dataRun) inject(ctx context.Context) error {
	r.phase("fault: " + r.fault.Title())
	r.rec.FaultAt = time.Now()
	r.tr.FaultAt = r.rec.FaultAt
	r.mark(r.rec.FaultAt, MarkFault, r.victim)
	if err := inject(ctx, r.fault, r.members[r.victim]); err != nil {
		return fmt.Errorf("inject %s: %w", r.fault, err)
	}
	if r.fault == FaultControllerKill {
		if err := r.killController(ctx); err != nil {
			return err
		}
	}
	r.phase("waiting for the tenant to be served again with its data")
	if !r.until(ctx, 60*time.Second, func() bool { _, ok := r.w.firstAckAway(r.victim, r.rec.FaultAt); return ok }) {
		return errors.New("no copy on another server acknowledged a write within 60s of the fault")
	}
	// Let the old copy try a while longer to write beside the new one.
	r.sleep(ctx, 2*time.Second)
	return nil
}

// killController waits until the controller has started the failover (it
// placed the copy elsewhere, or waits for the old writer), kills it with
// SIGKILL and starts another on the same database.
func (r *dataRun) killController(ctx context.Context) error {
	r.phase("waiting for the failover to start, to kill the controller")
	started := func() bool {
		if ins, err := r.st.ListInstances(ctx); err == nil {
			for _, in := range ins {
				if in.TenantID == r.tenant && in.ServerID != r.victim {
					return true
				}
			}
		}
		return !r.firstEvent(ctx, slum.ReasonRescheduled, slum.ReasonWaitingForWriter, slum.ReasonLeaseRevoked).IsZero()
	}
	if !r.until(ctx, 30*time.Second, started) {
		return errors.New("the controller did not start a failover within 30s, so it was not killed")
	}
	r.spec.RouterAddr = r.ctl.RouterAddr()
	if err := r.ctl.Kill(); err != nil {
		return fmt.Errorf("kill the controller: %w", err)
	}
	at := time.Now()
	r.tr.ControllerKilled = since(r.rec.FaultAt, at)
	r.mark(at, MarkControllerKill, "")
	r.phase("controller killed; starting another")
	next, err := r.opt.Launcher.Start(ctx, r.spec)
	if err != nil {
		r.ctl = nil
		return fmt.Errorf("start the next controller: %w", err)
	}
	r.ctl = next
	return nil
}

// finish undoes the fault, waits until the old server is back and nothing
// stale runs, and reads what each copy holds.
func (r *dataRun) finish(ctx context.Context) error {
	orphanAcks := r.orphan.halt()
	r.orphan = nil
	r.phase("undoing the fault")
	r.healed = true
	healAt := time.Now()
	r.tr.Healed = since(r.rec.FaultAt, healAt)
	r.mark(healAt, MarkHealed, r.victim)
	if err := heal(ctx, r.fault, r.members[r.victim]); err != nil {
		return fmt.Errorf("undo %s: %w", r.fault, err)
	}
	// The returning server's stale copy is fenced; it must not replicate
	// over the new one, so keep writing to the new one meanwhile.
	r.phase("returning")
	listers := map[string]Lister{}
	for id, c := range r.clients {
		listers[id] = c
	}
	r.sleep(ctx, 4*time.Second)
	r.until(ctx, 30*time.Second, func() bool { return len(leftBehind(ctx, r.st, listers, r.fleet, r.ids, dataCopyProcesses)) == 0 })
	acks, restored := r.w.halt()
	first, _ := r.w.firstAckAway(r.victim, r.rec.FaultAt)
	r.rec.Old, r.rec.Acks = r.victim, append(acks, orphanAcks...)
	r.rec.Restored = restored[first.Server]
	var err error
	r.until(ctx, 10*time.Second, func() bool { r.rec.Final, err = r.w.bodies(ctx, first.Server); return err == nil })
	if err != nil {
		return fmt.Errorf("read the new copy's writes after the old server returned: %w", err)
	}
	r.phase("checking what is left")
	r.tr.LeftBehind = leftBehind(ctx, r.st, listers, r.fleet, r.ids, dataCopyProcesses)
	r.observe(ctx, first.Server)
	if raw, err := json.Marshal(r.rec); err == nil {
		// Every acknowledged write and what each copy held: the trial
		// can be measured again.
		_ = os.WriteFile(filepath.Join(r.dir, "data-record.json"), raw, 0o644)
	}
	d := MeasureData(r.rec)
	d.Tenant = r.tenant
	r.tr.Data = &d
	r.tr.ServedAgain = d.ServedWithData
	if d.ServedWithData != nil {
		r.mark(first.At, MarkServedAgain, first.Server)
	}
	return nil
}

// observe reads, from the controller's events and the new copy's guard,
// when the victim was declared dead, the wait for the old writer, and the
// restore.
func (r *dataRun) observe(ctx context.Context, newServer string) {
	if at := r.firstEvent(ctx, slum.ReasonServerDead); !at.IsZero() {
		r.tr.Detected = since(r.rec.FaultAt, at)
		r.mark(at, MarkDetected, r.victim)
	}
	r.rec.WaitingAt = r.firstEvent(ctx, slum.ReasonWaitingForWriter)
	r.rec.TookOverAt = r.firstEvent(ctx, slum.ReasonWriterTookOver)
	if c := r.clients[newServer]; c != nil {
		r.rec.Restore = r.guardSays(ctx, c, "database: restored", restoredIn)
		r.rec.GuardWait = r.guardSays(ctx, c, "lease: acquired", acquiredAfter)
	}
}

// guardSays reads a duration from the newest line of the tenant's copy on
// c that contains search, by re's first group; nil when there is none.
func (r *dataRun) guardSays(ctx context.Context, c *observed.Client, search string, re *regexp.Regexp) *time.Duration {
	lines, err := c.Logs(ctx, observed.LogQuery{LogFilter: observed.LogFilter{Process: dataProcess, ID: r.tenant + "--prod"}, Search: search})
	if err != nil || len(lines) == 0 {
		return nil
	}
	return durationIn(lines[len(lines)-1].Message, re)
}

// The guard's lines: its restore, and its wait for the lease.
var (
	restoredIn    = regexp.MustCompile(`database: restored .* from the replica in (\S+)$`)
	acquiredAfter = regexp.MustCompile(`lease: acquired generation .*; waited (\S+)\)$`)
)

// durationIn reads the duration re's first group finds in line.
func durationIn(line string, re *regexp.Regexp) *time.Duration {
	m := re.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return nil
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		return nil
	}
	return &d
}

// firstEvent is when the controller first wrote one of the reasons about
// the tenant or the victim, from the fault on; zero: not yet.
func (r *dataRun) firstEvent(ctx context.Context, reasons ...slum.EventReason) time.Time {
	evs, err := r.st.RecentEvents(ctx, 500)
	if err != nil {
		return time.Time{}
	}
	var at time.Time
	for _, e := range evs {
		ours := strings.Contains(string(e.Object), r.tenant) || e.Object.Kind() == slum.ObjectServer && e.Object.ID() == r.victim
		if !ours || e.At.Before(r.rec.FaultAt.Truncate(time.Millisecond)) {
			continue
		}
		for _, want := range reasons {
			if e.Reason == want && (at.IsZero() || e.At.Before(at)) {
				at = e.At
			}
		}
	}
	return at
}

func (r *dataRun) mark(at time.Time, kind MarkKind, subject string) {
	r.tr.Marks = append(r.tr.Marks, MarkAt{At: Millis(at.Sub(r.rec.FaultAt)), Kind: kind, Subject: subject})
}

// until polls ok every 50 ms until it holds (true) or limit passes or ctx
// ends (false).
func (r *dataRun) until(ctx context.Context, limit time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) || !r.sleep(ctx, 50*time.Millisecond) {
			return false
		}
	}
}

func (r *dataRun) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
