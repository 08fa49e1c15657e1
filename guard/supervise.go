package guard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/slum-fleet/slum/replica/lease"
)

// tick is how often the supervisor checks the renew deadline and its
// parent: well inside the 0.8 s between the deadline and the TTL.
const tick = 25 * time.Millisecond

type supervisor struct {
	cfg         Config
	spawn       *spawner
	holder      *lease.Holder
	logw        *lineWriter
	acquired    lease.Acquired
	restoreTook time.Duration

	// the loop's state, owned by the goroutine running run
	validUntil time.Time
	app, ls    *child
	lsWanted   bool      // Litestream should run: prepared, not stopping
	lsKilled   bool      // the running Litestream was killed or told to stop by the guard
	lsRetryAt  time.Time // when to start Litestream again after it exited by itself
	cutSince   time.Time // when renewals began failing; zero while they succeed
	stopping   *Exit     // set once a clean stop has begun
	appKillAt  time.Time // SIGKILL for an app told to stop
	frozenAt   time.Time // when the app was frozen (SIGSTOP) for a lease not renewed; zero while it runs
	lsKillAt   time.Time // SIGKILL for a Litestream told to stop
	finalSync  bool      // the last sync before release has been started (or skipped)
	ready      bool      // the database was made the newest: only then may it be replicated
	revoked    bool      // fenced by a revocation of its own lease: confirm it once stopped
}

func (s *supervisor) logf(format string, args ...any) { s.logw.line(fmt.Sprintf(format, args...)) }

// run acquires the lease, then supervises until the guard stops.
func (s *supervisor) run(ctx context.Context) *Exit {
	s.logf("lease: acquiring the lease of %s as %s", s.cfg.Replica.Canonical(), s.holder.ID())
	acq, early := s.acquire(ctx)
	if early != nil {
		return early
	}
	s.acquired, s.validUntil = acq, s.holder.ValidUntil()

	rctx, stopRenewer := context.WithCancel(context.Background())
	results, renewerDone := make(chan renewal), make(chan struct{})
	go s.renewer(rctx, results, renewerDone)
	pctx, cancelPrep := context.WithCancel(ctx)
	prepDone := make(chan error, 1)
	go func() { prepDone <- s.prepareDB(pctx) }()

	exit, release := s.loop(ctx, prepDone, cancelPrep, results)
	cancelPrep()
	stopRenewer()
	<-renewerDone
	switch {
	case release:
		s.release()
	case s.revoked:
		s.confirmRevoked()
	}
	s.logf("stopped: %s (exit %d)", exit.Reason, exit.Code)
	return exit
}

// acquire blocks until the lease is held, or a signal, the parent's death
// or ctx ends the wait (nothing is held then, nothing to release).
func (s *supervisor) acquire(ctx context.Context) (lease.Acquired, *Exit) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	why := make(chan *Exit, 1)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-actx.Done():
				return
			case sig := <-s.cfg.Signals:
				why <- &Exit{Code: ExitStopped, Reason: fmt.Sprintf("stopped by %v while waiting for the lease", sig)}
				cancel()
				return
			case <-s.cfg.Clock.After(tick * 8):
				if s.parentGone() {
					why <- &Exit{Code: ExitParentGone, Reason: "the parent process died while waiting for the lease"}
					cancel()
					return
				}
			}
		}
	}()
	acq, err := s.holder.Acquire(actx)
	cancel()
	<-watchDone
	select {
	case e := <-why:
		return lease.Acquired{}, e
	default:
	}
	if err != nil {
		return lease.Acquired{}, &Exit{Code: ExitFailure, Reason: "lease: " + err.Error()}
	}
	return acq, nil
}

type renewal struct {
	err        error
	validUntil time.Time
}

// renewer renews the lease every TTL/4, each attempt bounded by the renew
// deadline, and reports every outcome. It alone touches the holder while
// the loop runs.
func (s *supervisor) renewer(ctx context.Context, out chan<- renewal, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.cfg.Clock.After(s.cfg.Timing.RenewEvery()):
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.Timing.RenewDeadline)
		err := s.holder.Renew(rctx)
		cancel()
		select {
		case out <- renewal{err: err, validUntil: s.holder.ValidUntil()}:
		case <-ctx.Done():
			return
		}
		if errors.Is(err, lease.ErrFenced) {
			return
		}
	}
}

// loop supervises the children until the guard stops; release says
// whether the lease is still this guard's to release.
func (s *supervisor) loop(ctx context.Context, prepDone <-chan error, cancelPrep func(), results <-chan renewal) (*Exit, bool) {
	ctxDone := ctx.Done()
	for {
		var appDone, lsDone <-chan struct{}
		if s.app != nil {
			appDone = s.app.done
		}
		if s.ls != nil {
			lsDone = s.ls.done
		}
		select {
		case <-ctxDone:
			ctxDone = nil
			s.beginStop(&Exit{Code: ExitStopped, Reason: "told to stop"}, cancelPrep)
		case sig := <-s.cfg.Signals:
			s.beginStop(&Exit{Code: ExitStopped, Reason: fmt.Sprintf("stopped by %v", sig)}, cancelPrep)
		case err := <-prepDone:
			prepDone = nil
			s.prepared(err, cancelPrep)
		case r := <-results:
			var fe *lease.FencedError
			if errors.As(r.err, &fe) {
				return s.fence(fe, cancelPrep, prepDone), false
			}
			if errors.Is(r.err, lease.ErrHandover) {
				s.beginStop(&Exit{Code: ExitStopped, Reason: "handing the lease over: " + r.err.Error()}, cancelPrep)
				continue
			}
			s.renewed(r)
		case <-appDone:
			s.appExited()
		case <-lsDone:
			s.litestreamExited()
		case <-s.cfg.Clock.After(tick):
		}
		s.enforce(cancelPrep)
		if s.stopping != nil && s.app == nil && s.ls == nil && prepDone == nil {
			return s.stopping, true
		}
	}
}

// enforce runs on every pass: the renew deadline, the parent, the grace
// periods, and starting Litestream when it should run.
func (s *supervisor) enforce(cancelPrep func()) {
	now := s.cfg.Clock.Now()
	if s.ls != nil && !now.Before(s.validUntil) && !s.lsKilledHard() {
		s.ls.signal(syscall.SIGKILL)
		s.lsKilled, s.lsKillAt = true, time.Time{}
		s.logf("lease: not renewed by the deadline (%s after the last renewal was sent): killed litestream so this copy no longer writes the replica",
			s.cfg.Timing.RenewDeadline)
	}
	if s.app != nil && s.frozenAt.IsZero() && !now.Before(s.validUntil) {
		s.freezeApp(now)
	}
	if s.stopping == nil && s.parentGone() {
		s.beginStop(&Exit{Code: ExitParentGone, Reason: "the parent process (tenement) died: this copy is unreachable and will be replaced"}, cancelPrep)
	}
	if s.app != nil && !s.appKillAt.IsZero() && !now.Before(s.appKillAt) {
		s.app.signal(syscall.SIGKILL)
		s.appKillAt = time.Time{}
		s.logf("app: still running %s after SIGTERM: killed", s.cfg.Grace)
	}
	if s.ls != nil && !s.lsKillAt.IsZero() && !now.Before(s.lsKillAt) {
		s.ls.signal(syscall.SIGKILL)
		s.lsKillAt = time.Time{}
	}
	if s.ls == nil && s.lsWanted && s.stopping == nil && now.Before(s.validUntil) && !now.Before(s.lsRetryAt) {
		s.startLitestream()
	}
}

// lsKilledHard: SIGKILL was already sent to the running Litestream.
func (s *supervisor) lsKilledHard() bool { return s.lsKilled && s.lsKillAt.IsZero() }

func (s *supervisor) parentGone() bool {
	return s.cfg.ParentPID != 0 && os.Getppid() != s.cfg.ParentPID
}

func (s *supervisor) prepared(err error, cancelPrep func()) {
	if s.stopping != nil {
		return
	}
	if err != nil {
		s.beginStop(&Exit{Code: ExitFailure, Reason: "database: " + err.Error()}, cancelPrep)
		return
	}
	s.ready = true
	app, err := s.spawn.start("app", newCommand(s.cfg.App, s.cfg.AppEnv))
	if err != nil {
		s.beginStop(&Exit{Code: ExitFailure, Reason: "cannot start the app: " + err.Error()}, cancelPrep)
		return
	}
	s.app, s.lsWanted = app, true
	s.logf("app: started %q (pid %d) on generation %d", s.cfg.App[0], app.cmd.Process.Pid, s.acquired.Generation)
}

func (s *supervisor) startLitestream() {
	restart := !s.cutSince.IsZero() || s.lsKilled
	ls, err := s.spawn.start("litestream", s.cfg.Litestream.Replicate())
	if err != nil {
		s.lsRetryAt = s.cfg.Clock.Now().Add(time.Second)
		s.logf("litestream: cannot start (retrying in 1s): %v", err)
		return
	}
	s.ls, s.lsKilled, s.lsKillAt = ls, false, time.Time{}
	if restart {
		s.logf("litestream: restarted (pid %d): the lease is renewed again", ls.cmd.Process.Pid)
	} else {
		s.logf("litestream: replicating %s (pid %d)", s.cfg.DB, ls.cmd.Process.Pid)
	}
}

func (s *supervisor) renewed(r renewal) {
	now := s.cfg.Clock.Now()
	if r.err != nil {
		if s.cutSince.IsZero() {
			s.cutSince = now
			s.logf("lease: cannot renew (%v); litestream is killed %s after the last renewal unless one succeeds",
				r.err, s.cfg.Timing.RenewDeadline)
		}
		return
	}
	s.validUntil = r.validUntil
	if s.app != nil && !s.frozenAt.IsZero() && now.Before(s.validUntil) && s.stopping == nil {
		s.app.signalTree(syscall.SIGCONT)
		s.logf("app: resumed after %s frozen: the lease is renewed, still generation %d", now.Sub(s.frozenAt).Round(time.Millisecond), s.acquired.Generation)
		s.frozenAt = time.Time{}
	}
	if !s.cutSince.IsZero() {
		s.logf("lease: renewed again after %s of failures (generation %d unchanged)", now.Sub(s.cutSince).Round(time.Millisecond), s.acquired.Generation)
		s.cutSince = time.Time{}
	}
}

// freezeApp stops the app (SIGSTOP, its whole tree) once the lease may
// lapse: another copy may take it a TTL after the last renewal, and a
// write this copy accepted after that could never reach the replica, so
// it would be a second writer's. Frozen, it keeps its memory and its
// connections and resumes at once if the lease is renewed unchanged; it
// is killed, never resumed, if the lease is lost or the guard stops.
func (s *supervisor) freezeApp(now time.Time) {
	s.app.signalTree(syscall.SIGSTOP)
	s.frozenAt = now
	if s.stopping != nil {
		// already told to stop: resuming it to finish would let it accept
		// writes without a lease
		s.killApp("it was stopping when its lease could no longer be renewed")
		return
	}
	s.logf("app: frozen (SIGSTOP, pid %d and its children): the lease was not renewed by the deadline, so this copy takes no write another copy could not see; it resumes if a renewal succeeds",
		s.app.cmd.Process.Pid)
}

// killApp kills the app's whole tree at once (it may be frozen: SIGTERM
// would wait for a resume that must not come).
func (s *supervisor) killApp(why string) (below []int) {
	below = s.app.signalTree(syscall.SIGKILL)
	s.appKillAt = time.Time{}
	s.logf("app: killed (SIGKILL, pid %d and its children): %s", s.app.cmd.Process.Pid, why)
	return below
}

// confirmRevoked tells the next copy, through the lease, that this one
// has stopped (its Litestream and app are gone), so it takes the lease at
// once rather than a TTL after the revocation.
func (s *supervisor) confirmRevoked() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timing.RenewDeadline)
	defer cancel()
	if err := s.holder.ConfirmRevoked(ctx); err != nil {
		s.logf("lease: revocation not confirmed (%v): it lapses %s after the revocation", err, s.cfg.Timing.TTL)
		return
	}
	s.logf("lease: confirmed the revocation of generation %d: stopped, released for the next copy at once", s.acquired.Generation)
}

func (s *supervisor) appExited() {
	code := s.app.exitCode()
	s.app, s.frozenAt = nil, time.Time{}
	if s.stopping == nil {
		s.stopping = &Exit{Code: code, Reason: fmt.Sprintf("the app exited (%v)", exitText(code))}
		s.logf("app: exited (%v): stopping", exitText(code))
	} else {
		s.logf("app: stopped (%v)", exitText(code))
	}
	s.lsWanted = false
	s.stopLitestream()
}

// stopLitestream lets Litestream send what it has not yet (SIGTERM), within
// the grace period and only while the lease is valid; once it has exited,
// lastSync follows.
func (s *supervisor) stopLitestream() {
	if s.ls == nil {
		s.lastSync()
		return
	}
	if s.lsKilled {
		return
	}
	s.ls.signal(syscall.SIGTERM)
	s.lsKilled = true
	s.lsKillAt = s.cfg.Clock.Now().Add(s.cfg.Grace)
	if s.validUntil.Before(s.lsKillAt) {
		s.lsKillAt = s.validUntil
	}
}

// lastSync runs `litestream replicate -once` while the lease is still
// valid, so that a clean stop leaves nothing unsent.
func (s *supervisor) lastSync() {
	if s.finalSync || !s.ready {
		return // never send a database that was not made the newest (a stop mid-restore)
	}
	s.finalSync = true
	now := s.cfg.Clock.Now()
	if _, err := os.Stat(s.cfg.DB); err != nil {
		return // nothing to send
	}
	if !now.Before(s.validUntil) {
		s.logf("litestream: no last sync: the lease could not be renewed; writes since the last sync stay in this copy only")
		return
	}
	ls, err := s.spawn.start("litestream sync", s.cfg.Litestream.SyncOnce())
	if err != nil {
		s.logf("litestream: no last sync: %v", err)
		return
	}
	s.ls, s.lsKilled, s.lsKillAt = ls, true, now.Add(s.cfg.Grace)
	if s.validUntil.Before(s.lsKillAt) {
		s.lsKillAt = s.validUntil
	}
	s.logf("litestream: last sync before the release (pid %d)", ls.cmd.Process.Pid)
}

func (s *supervisor) litestreamExited() {
	ls := s.ls
	s.ls = nil
	if s.stopping != nil && s.app == nil {
		s.lastSync()
		return
	}
	if s.lsKilled {
		s.lsKillAt = time.Time{}
		return
	}
	if s.lsWanted && s.stopping == nil {
		s.lsRetryAt = s.cfg.Clock.Now().Add(time.Second)
		s.logf("litestream: exited by itself (%v); starting it again in 1s", exitText(ls.exitCode()))
	}
}

// beginStop starts a clean stop: the app first, then Litestream's last
// sync, then the lease is released.
func (s *supervisor) beginStop(e *Exit, cancelPrep func()) {
	if s.stopping != nil {
		return
	}
	s.stopping = e
	s.logf("stopping: %s", e.Reason)
	s.lsWanted = false
	cancelPrep()
	switch {
	case s.app != nil && !s.frozenAt.IsZero():
		s.killApp("it is frozen (its lease could not be renewed): killed rather than resumed to stop")
		return
	case s.app != nil:
		s.app.signal(syscall.SIGTERM)
		s.appKillAt = s.cfg.Clock.Now().Add(s.cfg.Grace)
		return
	}
	s.stopLitestream()
}

// fence stops everything at once: another copy holds the lease.
func (s *supervisor) fence(fe *lease.FencedError, cancelPrep func(), prepDone <-chan error) *Exit {
	if s.ls != nil {
		s.ls.kill()
		s.ls = nil
	}
	s.logf("lease: lost: it is %s; litestream killed, killing the app", fe.Now.Describe())
	cancelPrep()
	if prepDone != nil {
		<-prepDone
	}
	if s.app != nil {
		// No grace: another copy may be writing already, and a write this
		// one acknowledged now would be lost to its client.
		below := s.killApp("the lease is lost")
		<-s.app.done
		waitGone(s.cfg.Clock, below, s.cfg.Grace)
		s.app = nil
	}
	s.revoked = fe.Now.State == lease.StateRevoked
	return &Exit{Code: ExitFenced, Reason: "fenced: the lease is " + fe.Now.Describe()}
}

func (s *supervisor) release() {
	for attempt := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timing.RenewDeadline)
		err := s.holder.Release(ctx)
		cancel()
		if err == nil {
			s.logf("lease: released generation %d: the next copy takes it at once", s.acquired.Generation)
			return
		}
		if errors.Is(err, lease.ErrFenced) || attempt == 2 {
			s.logf("lease: not released (%v): it lapses %s after the last renewal", err, s.cfg.Timing.TTL)
			return
		}
	}
}

func exitText(code int) string {
	if code > 128 && code < 160 {
		return fmt.Sprintf("killed by %v", syscall.Signal(code-128))
	}
	return fmt.Sprintf("exit %d", code)
}
