package reconcile

import (
	"context"
	"errors"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/observed"
)

// inbox is how the pieces beside the loop reach it without blocking:
// watchers' snapshots, the executor's results, and a kick (a backoff ran
// out: plan again).
type inbox struct {
	snaps   chan *observed.Snapshot
	results *mailbox[Result]
	spent   []Result // the results last taken, done with: the mailbox's next array
	kick    chan struct{}
	done    <-chan struct{} // the session's end: publishing gives up
}

func newInbox() *inbox {
	return &inbox{snaps: make(chan *observed.Snapshot, 4096), results: newMailbox[Result](), kick: make(chan struct{}, 1)}
}

// publish hands a watcher's snapshot to the loop.
func (in *inbox) publish(s *observed.Snapshot) {
	select {
	case in.snaps <- s:
	case <-in.done:
	}
}

func (in *inbox) wake() {
	select {
	case in.kick <- struct{}{}:
	default:
	}
}

// firstListWait is how long the first plan waits for servers' first lists.
const firstListWait = time.Second

// busyPlan is how often news of work under way is planned on while the
// executor is busy.
const busyPlan = 5 * time.Second

// waitPlan is how soon a plan with old copies waiting on new ones is
// followed by another: long enough for routers following the database to
// see a new serving copy before the old one stops.
const waitPlan = 250 * time.Millisecond

// pacer decides when the loop plans. A change of the desired state or of
// a server's health (urgent) plans at once; what only shows the effect of
// work under way (news: results of actions, servers listing what was just
// spawned) plans once the queue drains, or every busyPlan meanwhile, so a
// fleet converging from empty is not re-planned per spawn. Never more than
// half of the time is spent planning.
//
// The first plan waits for every server's first list (or its failure),
// for at most firstListWait: planned before, each instance of a server
// not listed yet would be reported unknown and rewritten a moment later
// (200,000 rows of status at 100,000 instances, written for nothing). The
// bound keeps a slow server from holding back a controller that takes
// over mid-failover.
type pacer struct {
	clock        clock.Clock
	first        bool
	firstBy      time.Time
	urgent, news bool
	lastAt       time.Time
	lastTook     time.Duration
	later        <-chan time.Time // a plan may be due then
}

func newPacer(clk clock.Clock, firstWait time.Duration) *pacer {
	return &pacer{clock: clk, first: true, firstBy: clk.Now().Add(firstWait), urgent: true}
}

// note takes news.
func (p *pacer) note(urgent, news bool) { p.urgent, p.news = p.urgent || urgent, p.news || news }

// due reports whether to plan at now; idle says the executor has nothing
// queued or in flight, heard whether every server was heard from. When
// not, it sets the timer for when a plan may be due.
func (p *pacer) due(now time.Time, idle bool, heard func() bool) bool {
	due := p.urgent || p.news && (idle || now.Sub(p.lastAt) >= busyPlan)
	if wait := p.lastTook - now.Sub(p.lastAt); due && wait > 0 {
		due, p.later = false, p.clock.After(wait)
	}
	if p.first && due && now.Before(p.firstBy) && !heard() {
		due = false
		if p.later == nil {
			p.later = p.clock.After(p.firstBy.Sub(now))
		}
	}
	if !due && p.news && p.later == nil {
		p.later = p.clock.After(busyPlan - now.Sub(p.lastAt))
	}
	return due
}

// planned notes a plan made at at that took took; waits says old copies
// wait on new ones (or on routers following): look again soon.
func (p *pacer) planned(at time.Time, took time.Duration, waits bool) {
	p.first = false
	p.lastAt, p.lastTook = at, took
	p.urgent, p.news, p.later = false, false, nil
	if waits {
		p.news, p.later = true, p.clock.After(waitPlan)
	}
}

// fired notes that the timer went off.
func (p *pacer) fired(idle bool) {
	p.later = nil
	p.urgent = p.urgent || p.news && idle
}

// Run reconciles until ctx ends, writing under fence, then lets in-flight
// actions finish, writes what they changed and returns. It returns an
// error wrapping desired.ErrFenced when another controller took the lease.
func (c *Controller) Run(ctx context.Context, fence slum.Fence) error {
	if err := c.start(ctx, fence); err != nil {
		return err
	}
	c.run.running = true
	c.servers.watch(ctx)
	repCtx, stopRep := context.WithCancel(context.WithoutCancel(ctx))
	repDone := make(chan error, 1)
	go func() { repDone <- c.run.rep.Run(repCtx) }()
	revs := make(chan int64, 1)
	go c.watchRevision(ctx, revs)
	resync := c.cfg.Clock.NewTicker(c.cfg.PollInterval)
	defer resync.Stop()
	pace := newPacer(c.cfg.Clock, min(c.cfg.PollTimeout, firstListWait))
	var fatal error
	for fatal == nil {
		now := c.cfg.Clock.Now()
		if pace.due(now, c.run.exec.Depth() == 0, c.heardFromAll) {
			plan := c.step(ctx, true)
			pace.planned(now, c.cfg.Clock.Now().Sub(now), len(plan.Waits) > 0)
		}
		select {
		case <-ctx.Done():
		case err := <-repDone:
			fatal = err
			repDone <- err
		case s := <-c.in.snaps:
			pace.note(c.onSnapshot(s))
		case <-c.in.results.ready:
			pace.note(false, c.takeResults())
		case rev := <-revs:
			if rev != c.fleet().Revision {
				if err := c.reload(ctx); err != nil && ctx.Err() == nil {
					c.log.Error("cannot read the desired state", "err", err)
				}
				pace.note(true, false)
			}
		case <-c.in.kick:
			pace.note(true, false)
		case <-resync.C():
			pace.note(false, true)
		case <-pace.later:
			pace.fired(c.run.exec.Depth() == 0)
		}
		if ctx.Err() != nil {
			break
		}
		pace.note(c.drain())
	}
	return c.shutdown(ctx, stopRep, repDone, fatal)
}

// shutdown stops watching, lets in-flight calls finish and writes what
// they changed.
func (c *Controller) shutdown(ctx context.Context, stopRep func(), repDone chan error, fatal error) error {
	c.servers.stop()
	c.log.Info("stopping: waiting for in-flight actions")
	done := make(chan struct{})
	go func() { c.run.exec.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-c.in.results.ready:
			c.takeResults()
		case <-done:
			waiting = false
		}
	}
	c.drain()
	c.run.rep.Submit(c.update(nil), false)
	stopRep()
	err := <-repDone
	if fatal != nil {
		err = fatal
	}
	c.log.Info("stopped")
	if err != nil && !errors.Is(err, slum.ErrFenced) && ctx.Err() != nil {
		// Shutting down anyway: a failed last write is worth a log line,
		// not a failed exit.
		c.log.Error("last status write failed", "err", err)
		return nil
	}
	return err
}

// takeResults takes the results of actions waiting in the mailbox and
// reports whether there were any.
func (c *Controller) takeResults() bool {
	rs := c.in.results.take(c.in.spent)
	for _, r := range rs {
		c.onResult(r)
	}
	c.in.spent = rs
	return len(rs) > 0
}

// drain takes everything already waiting on the loop's channels, so one
// plan follows a burst of news. It reports whether urgent news came in
// (a server's health changed) or other news worth a plan.
func (c *Controller) drain() (urgent, news bool) {
	for {
		select {
		case s := <-c.in.snaps:
			u, n := c.onSnapshot(s)
			urgent, news = urgent || u, news || n
		case <-c.in.results.ready:
			news = c.takeResults() || news
		default:
			return urgent, news
		}
	}
}

// watchRevision sends the desired state's revision whenever it differs
// from the last one sent: another process (the CLI) committed a change.
func (c *Controller) watchRevision(ctx context.Context, out chan<- int64) {
	t := c.cfg.Clock.NewTicker(c.cfg.RevisionPoll)
	defer t.Stop()
	feed := slum.Changes(ctx, c.store) // a commit is looked at once (Postgres' NOTIFY), not at the next tick
	last := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-feed:
		}
		rev, err := c.store.Revision(ctx)
		if err != nil || rev == last {
			continue
		}
		last = rev
		c.intent.seen(rev)
		select {
		case out <- rev:
		case <-ctx.Done():
			return
		}
	}
}
