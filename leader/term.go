package leader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/clock"
)

// renewal is the outcome of one renewal, begun at start.
type renewal struct {
	start time.Time
	err   error
}

// lead runs one term on lease, taken by an attempt begun at acquired: the
// Lead hook under a context that ends when the lease is lost, when no
// renewal has succeeded for the renew deadline, when the database cannot
// be used, or when ctx ends (the lease is then released).
func (e *Elector) lead(ctx context.Context, lease slum.Lease, acquired time.Time, run func(context.Context, slum.Lease) error) {
	clk, t := e.cfg.Clock, e.cfg.Timing
	st := &Status{Leading: true, Lease: lease, DatabaseOK: true, Since: clk.Now()}
	e.status.Store(st)
	e.metrics.set(st)
	e.metrics.terms.Inc()
	e.log.Info("leading: acting on the fleet", "epoch", lease.Epoch, "holder", lease.Holder)

	tctx, end := context.WithCancelCause(ctx)
	done := make(chan error, 1)
	go func() { done <- run(tctx, lease) }()
	rctx, stopRenewing := context.WithCancel(ctx)
	renewed := make(chan renewal)
	renewing := make(chan struct{})
	go func() { defer close(renewing); e.renew(rctx, lease, renewed) }()

	last := acquired
	deadline := make(chan struct{}, 1)
	arm := func() clock.Timer {
		return clk.AfterFunc(t.RenewDeadline-clk.Now().Sub(last), func() {
			select {
			case deadline <- struct{}{}:
			default:
			}
		})
	}
	timer := arm()
	defer func() { timer.Stop() }()
	var cause, ran error
	stopped := false
	for cause == nil {
		select {
		case <-ctx.Done():
			cause = context.Cause(ctx)
		case ran = <-done:
			stopped = true
			cause = fmt.Errorf("the controller stopped: %w", ran)
			if ran == nil {
				cause = errors.New("the controller stopped")
			}
		case r := <-renewed:
			switch {
			case r.err == nil:
				last = r.start
				timer.Stop()
				select {
				case <-deadline: // fired meanwhile: the renewal came in time
				default:
				}
				timer = arm()
			case errors.Is(r.err, ErrLeaseLost) || isFault(r.err):
				cause = r.err
			default:
				e.metrics.renewFailures.Inc()
				e.log.Warn("lease renewal failed; retrying", "err", r.err, "stop_acting_in", (t.RenewDeadline - clk.Now().Sub(last)).Round(time.Millisecond))
			}
		case <-deadline:
			cause = fmt.Errorf("%w: not renewed for %s (renew deadline; the lease lasts %s)", ErrLeaseLost, t.RenewDeadline, t.TTL)
		}
	}
	if ctx.Err() == nil {
		e.log.Error("stopped leading: not acting on the fleet until the lease is held again", "epoch", lease.Epoch, "reason", cause.Error())
	}
	end(cause)
	stopRenewing()
	<-renewing
	if !stopped {
		ran = <-done
	}
	if ran != nil && ctx.Err() == nil && !errors.Is(ran, context.Canceled) {
		e.log.Warn("the term's controller stopped", "epoch", lease.Epoch, "err", ran)
	}
	e.status.Store(&Status{Lease: lease, Reason: cause.Error(), DatabaseOK: !isFault(cause), Since: clk.Now()})
	e.metrics.set(e.status.Load())
	if ctx.Err() != nil {
		e.release(ctx, lease)
		return
	}
	if stopped {
		// A controller that failed on its own is not restarted in a
		// loop: the next term begins a retry period later.
		select {
		case <-ctx.Done():
		case <-clk.After(t.RetryPeriod):
		}
	}
}

// renew renews lease every retry period until ctx ends, sending each
// outcome. A renewal that finds the lease in other hands is ErrLeaseLost;
// one that finds the database unusable wraps a store fault.
func (e *Elector) renew(ctx context.Context, lease slum.Lease, out chan<- renewal) {
	clk := e.cfg.Clock
	for {
		select {
		case <-ctx.Done():
			return
		case <-clk.After(e.cfg.Timing.RetryPeriod):
		}
		r := renewal{start: clk.Now()}
		if err := e.st.Check(ctx); err != nil {
			r.err = fmt.Errorf("%w: %w", ErrDatabase, err)
		} else if l, err := e.st.AcquireLease(ctx, slum.ControllerLease, e.cfg.Holder, "", e.cfg.Timing.TTL); err != nil {
			r.err = e.dbErr(err)
			if errors.Is(err, slum.ErrConflict) {
				r.err = fmt.Errorf("%w: %v", ErrLeaseLost, err)
			}
		} else if l.Epoch != lease.Epoch {
			r.err = fmt.Errorf("%w: the lease changed hands (epoch %d, now %d)", ErrLeaseLost, lease.Epoch, l.Epoch)
		}
		select {
		case out <- r:
		case <-ctx.Done():
			return
		}
	}
}

// release gives the lease up, so that a successor need not wait it out.
func (e *Elector) release(ctx context.Context, lease slum.Lease) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := e.st.ReleaseLease(rctx, lease.Fence()); err != nil {
		e.log.Warn("could not release the controller lease", "err", err)
	}
}
