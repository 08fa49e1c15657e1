package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/names"
)

// Store is what a rollout reads and writes of the fleet: a *store.Store.
type Store interface {
	ListServers(ctx context.Context) ([]slum.Server, error)
	ListInstances(ctx context.Context) ([]slum.Instance, error)
	GetInstance(ctx context.Context, key slum.InstanceKey) (slum.Instance, error)
	ListInstancesOfTenant(ctx context.Context, tenant string) ([]slum.Instance, error)
	ListTenantStatus(ctx context.Context) ([]slum.TenantStatus, error)
	TenantStatus(ctx context.Context, id string) (slum.TenantStatus, error)
	InstanceStatus(ctx context.Context, key slum.InstanceKey) (slum.InstanceStatus, error)

	CreateRollout(ctx context.Context, spec slum.RestartSpec, steps []slum.RolloutStep, runner string) (slum.Rollout, error)
	GetRollout(ctx context.Context, id int64) (slum.Rollout, error)
	ListRollouts(ctx context.Context, n int64) ([]slum.Rollout, error)
	UnfinishedRollout(ctx context.Context) (slum.Rollout, error)
	ClaimRollout(ctx context.Context, id int64, runner string, stale time.Duration) (slum.Rollout, error)
	SaveRollout(ctx context.Context, r slum.Rollout, evs ...slum.Event) error
	HeartbeatRollout(ctx context.Context, r slum.Rollout) error
	ReleaseRollout(ctx context.Context, r slum.Rollout) error
	AbandonRollout(ctx context.Context, id int64) (slum.Rollout, error)
}

// Tenement is what a rollout asks of a tenement server.
type Tenement interface {
	Restart(ctx context.Context, process, id string) error
	Health(ctx context.Context, process, id string) (string, error)
}

// Dial gives the Tenement of a server.
type Dial func(s slum.Server) (Tenement, error)

// Config tunes the runner.
type Config struct {
	// Poll is how often a copy's health and its tenant's serving copy
	// are read while waiting.
	Poll time.Duration
	// ServingTimeout is how long the controller has to move serving off
	// a copy before its restart.
	ServingTimeout time.Duration
	// Drain is how long a copy serving moved off is left to finish the
	// requests it has and for routers to follow, before its restart.
	Drain time.Duration
	// Heartbeat is how often the runner says it is alive.
	Heartbeat time.Duration
	Clock     clock.Clock
	Log       *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Poll <= 0 {
		c.Poll = 100 * time.Millisecond
	}
	if c.ServingTimeout <= 0 {
		c.ServingTimeout = 15 * time.Second
	}
	if c.Drain == 0 {
		c.Drain = time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = slum.RolloutStale / 5
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// run is one rollout being run: its record, shared by its workers.
type run struct {
	st   Store
	dial Dial
	cfg  Config

	mu sync.Mutex
	r  slum.Rollout
}

// errHalted: a copy did not come back; the rest is left untouched.
var errHalted = errors.New("halted")

// Run restarts r's pending copies (r is claimed by r.Runner) until every
// one is done, one fails (the rollout halts: failed, the rest untouched)
// or ctx ends (the rollout stays unfinished, to be resumed). Copies
// interrupted mid-restart are restarted again.
func Run(ctx context.Context, st Store, dial Dial, cfg Config, r slum.Rollout) (slum.Rollout, error) {
	cfg = cfg.withDefaults()
	for i := range r.Steps {
		if r.Steps[i].State == slum.StepRestarting {
			r.Steps[i].State = slum.StepPending
		}
	}
	ru := &run{st: st, dial: dial, cfg: cfg, r: r}
	hctx, stopBeat := context.WithCancel(ctx)
	defer stopBeat()
	go ru.heartbeat(hctx)
	err := ru.loop(ctx)
	stopBeat()
	ru.mu.Lock()
	defer ru.mu.Unlock()
	return ru.r, err
}

func (ru *run) loop(ctx context.Context) error {
	parallel := max(ru.r.Spec.Parallel, 1)
	done := make(chan error, parallel)
	inFlight := 0
	var halt error
	for {
		ru.mu.Lock()
		var start []int
		if halt == nil && ctx.Err() == nil {
			start = next(ru.r.Steps, parallel)
		}
		ru.mu.Unlock()
		for _, i := range start {
			if err := ru.begin(ctx, i); err != nil {
				halt = cmpErr(halt, err)
				break
			}
			inFlight++
			go func() { done <- ru.step(ctx, i) }()
		}
		if inFlight == 0 {
			break
		}
		if err := <-done; err != nil {
			halt = cmpErr(halt, err)
		}
		inFlight--
	}
	return ru.finish(ctx, halt)
}

// cmpErr keeps the first error.
func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// finish records how the rollout ended.
func (ru *run) finish(ctx context.Context, halt error) error {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if ctx.Err() != nil && halt == nil || errors.Is(halt, context.Canceled) || errors.Is(halt, context.DeadlineExceeded) {
		// Unfinished, let go: a copy interrupted mid-restart is restarted
		// again on resume, and meanwhile may serve.
		for i := range ru.r.Steps {
			if ru.r.Steps[i].State == slum.StepRestarting {
				ru.r.Steps[i].State = slum.StepPending
			}
		}
		if err := ru.st.ReleaseRollout(context.WithoutCancel(ctx), ru.r); err != nil {
			ru.cfg.Log.Warn("rollout interrupted: it is resumable once its heartbeat is stale", "rollout", ru.r.ID, "err", err)
		}
		return fmt.Errorf("rollout %d interrupted: resume it with 'slum restart --resume': %w", ru.r.ID, context.Cause(ctx))
	}
	if halt != nil && !errors.Is(halt, errHalted) {
		return halt // the store failed, or another runner took over: nothing to record
	}
	c := ru.r.Counts()
	ev := slum.Event{Object: slum.RolloutRef(ru.r.ID), Reason: slum.ReasonRolloutDone}
	if halt != nil {
		ru.r.State = slum.RolloutFailed
		ru.r.Message = fmt.Sprintf("%v; %d copies left untouched", halt, c[slum.StepPending])
		ev.Reason, ev.Message = slum.ReasonRestartFailed, ru.r.Message
	} else {
		ru.r.State = slum.RolloutDone
		ru.r.Message = fmt.Sprintf("%d copies restarted, %d skipped", c[slum.StepDone], c[slum.StepSkipped])
		ev.Message = "rolling restart done: " + ru.r.Message
	}
	if err := ru.st.SaveRollout(context.WithoutCancel(ctx), ru.r, ev); err != nil {
		return err
	}
	if halt != nil {
		return fmt.Errorf("rollout %d %w", ru.r.ID, halt)
	}
	return nil
}

// heartbeat says the runner is alive until ctx ends.
func (ru *run) heartbeat(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ru.cfg.Clock.After(ru.cfg.Heartbeat):
		}
		ru.mu.Lock()
		err := ru.st.HeartbeatRollout(ctx, ru.r)
		ru.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			ru.cfg.Log.Warn("rollout heartbeat failed", "rollout", ru.r.ID, "err", err)
		}
	}
}

// begin marks step i restarting (the controller then picks another copy
// to serve), or skipped when its copy is gone.
func (ru *run) begin(ctx context.Context, i int) error {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	s := &ru.r.Steps[i]
	in, err := ru.st.GetInstance(ctx, s.Instance)
	switch {
	case errors.Is(err, slum.ErrNotFound):
		s.State, s.Message = slum.StepSkipped, "removed"
	case err != nil:
		return err
	case in.DesiredState != slum.StateRunning:
		s.State, s.Message = slum.StepSkipped, "stopped"
	case in.ServerID != s.Server:
		s.State, s.Message = slum.StepSkipped, "moved to "+in.ServerID
	default:
		s.State, s.StartedAt, s.Message = slum.StepRestarting, ru.cfg.Clock.Now(), ""
	}
	return ru.st.SaveRollout(ctx, ru.r)
}

// step restarts the copy of step i and records how it went.
func (ru *run) step(ctx context.Context, i int) error {
	ru.mu.Lock()
	s := ru.r.Steps[i]
	ru.mu.Unlock()
	if s.State != slum.StepRestarting {
		return nil // skipped
	}
	err := ru.restart(ctx, s)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	p := &ru.r.Steps[i]
	p.FinishedAt = ru.cfg.Clock.Now()
	took := p.FinishedAt.Sub(p.StartedAt).Round(time.Millisecond)
	ev := slum.Event{Object: slum.InstanceRef(s.Instance)}
	if err != nil {
		p.State, p.Message = slum.StepFailed, err.Error()
		ev.Reason, ev.Message = slum.ReasonRestartFailed, fmt.Sprintf("rollout %d: %s", ru.r.ID, err)
	} else {
		p.State = slum.StepDone
		ev.Reason, ev.Message = slum.ReasonRestarted, fmt.Sprintf("rollout %d: restarted on %s, healthy after %s", ru.r.ID, s.Server, took)
	}
	if serr := ru.st.SaveRollout(context.WithoutCancel(ctx), ru.r, ev); serr != nil {
		return serr
	}
	if err != nil {
		return fmt.Errorf("%w on %s: %s", errHalted, s.Instance, err)
	}
	return nil
}

// restart restarts one copy: serving moved off it first, when another
// copy can serve; then tenement's restart; then until it is healthy.
func (ru *run) restart(ctx context.Context, s slum.RolloutStep) error {
	in, err := ru.st.GetInstance(ctx, s.Instance)
	if err != nil {
		return err
	}
	if err := ru.servingOff(ctx, in); err != nil {
		return err
	}
	srv, err := ru.server(ctx, s.Server)
	if err != nil {
		return err
	}
	t, err := ru.dial(srv)
	if err != nil {
		return err
	}
	process, id := in.Process, names.TenementID(in.TenantID, in.ID)
	timeout := ru.r.Spec.Timeout
	if timeout == 0 {
		timeout = slum.DefaultRestartTimeout
	}
	deadline := ru.cfg.Clock.Now().Add(timeout)
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := t.Restart(rctx, process, id); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("the restart did not succeed within %s: %w", timeout, err)
	}
	last := "no answer"
	for {
		h, err := t.Health(ctx, process, id)
		if err == nil && slum.InstanceHealth(h) == slum.InstanceHealthy {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = h
		}
		if !ru.cfg.Clock.Now().Before(deadline) {
			return fmt.Errorf("not healthy %s after its restart (tenement says: %s)", timeout, last)
		}
		if err := ru.sleep(ctx); err != nil {
			return err
		}
	}
}

func (ru *run) sleep(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-ru.cfg.Clock.After(ru.cfg.Poll):
		return nil
	}
}

func (ru *run) server(ctx context.Context, id string) (slum.Server, error) {
	ss, err := ru.st.ListServers(ctx)
	if err != nil {
		return slum.Server{}, err
	}
	for _, s := range ss {
		if s.ID == id {
			return s, nil
		}
	}
	return slum.Server{}, fmt.Errorf("server %s: %w", id, slum.ErrNotFound)
}
