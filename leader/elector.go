// Package leader owns leadership: the controller lease a `slum run` holds
// on its fleet database, its renewal with a renew deadline shorter than the
// lease (so a leader that cannot renew stops acting before another can take
// the lease), standing by while another holds it or while the database
// cannot be used, and taking over — at once from a holder of this host that
// is gone (exited, or a zombie), otherwise when its lease lapses.
//
// An Elector runs one term after another: each term gets a context that
// ends when the term does, and a fresh controller runs under it. What
// outlives the controller (the router, the API, metrics) lives beside the
// elector, not inside a term.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/store"
)

// Store is what leadership needs of the fleet database.
type Store interface {
	AcquireLease(ctx context.Context, name, holder, deadHolder string, ttl time.Duration) (slum.Lease, error)
	GetLease(ctx context.Context, name string) (slum.Lease, error)
	ReleaseLease(ctx context.Context, f slum.Fence) error
	// Check and Reopen are store.Checker's.
	Check(ctx context.Context) error
	Reopen(ctx context.Context) error
}

// faultRetry is how often a standby whose database cannot be used checks
// it again.
const faultRetry = 200 * time.Millisecond

// ErrLeaseLost: another controller took the lease, or it was not renewed
// by the renew deadline; the term's controller must stop acting.
var ErrLeaseLost = errors.New("lost the controller lease")

// ErrDatabase: the database cannot be used (deleted, replaced, read-only,
// full, failing); the term's controller must stop acting.
var ErrDatabase = errors.New("the fleet database cannot be used")

// Timing is how the lease is held.
type Timing struct {
	// TTL is how long a lease outlives its last renewal: how long a
	// controller that died without releasing it blocks one on another
	// host.
	TTL time.Duration
	// RenewDeadline: a leader whose renewals have all failed for this long
	// stops acting. Shorter than TTL, so it stops before another can
	// take the lease, with TTL-RenewDeadline left for clock drift and
	// calls already sent.
	RenewDeadline time.Duration
	// RetryPeriod is how often a leader renews and a standby tries to
	// take the lease. A renewal is the write that finds out that the
	// database has gone read-only or full.
	RetryPeriod time.Duration
}

// DefaultTiming is Kubernetes' leader election's proportions on the given
// lease: renew deadline 2/3 of it, a retry every second (at most ttl/5).
func DefaultTiming(ttl time.Duration) Timing {
	return Timing{TTL: ttl, RenewDeadline: ttl * 2 / 3, RetryPeriod: min(time.Second, ttl/5)}
}

// Validate checks that the timing can keep two leaders apart.
func (t Timing) Validate() error {
	switch {
	case t.TTL <= 0 || t.RenewDeadline <= 0 || t.RetryPeriod <= 0:
		return fmt.Errorf("%w: the lease's ttl, renew deadline and retry period must be positive", slum.ErrInvalid)
	case t.RenewDeadline >= t.TTL:
		return fmt.Errorf("%w: the renew deadline (%s) must be shorter than the lease (%s)", slum.ErrInvalid, t.RenewDeadline, t.TTL)
	case t.RetryPeriod >= t.RenewDeadline:
		return fmt.Errorf("%w: the retry period (%s) must be shorter than the renew deadline (%s)", slum.ErrInvalid, t.RetryPeriod, t.RenewDeadline)
	}
	return nil
}

// Status is where the elector stands.
type Status struct {
	Leading bool
	Lease   slum.Lease // held, when leading; else the lease as last read (zero if none could be)
	// Reason says why it stands by: who holds the lease, or what is wrong
	// with the database.
	Reason string
	// DatabaseOK is false while the database cannot be used.
	DatabaseOK bool
	Since      time.Time // of this state
}

// Config makes an Elector.
type Config struct {
	Timing Timing
	Holder string      // this process; Holder() when empty
	Clock  clock.Clock // clock.Real when nil
	Log    *slog.Logger
	// Gone tells a holder that is gone, whose lease is taken at once;
	// HolderGone when nil.
	Gone func(holder string) bool
}

// Elector leads when it can and stands by otherwise.
type Elector struct {
	st      Store
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	status  atomic.Pointer[Status]
	term    atomic.Pointer[leadTerm] // the term led now; nil while standing by
}

// leadTerm is the lease led now and when its last good renewal began: the
// lease is safe to act under until RenewDeadline after that.
type leadTerm struct {
	epoch   int64
	renewed time.Time
}

// ErrNotActing: this elector does not lead under that epoch now, or its
// renew deadline has passed (a process paused past its lease, say) and
// its term is about to end.
var ErrNotActing = errors.New("not leading: may not act on the fleet")

// MayAct tells whether a term under epoch may act on the fleet at this
// moment: it leads under that epoch and a renewal succeeded within the
// renew deadline. A controller asks just before each action it sends, so a
// process resumed after a pause past its lease sends nothing, even before
// its term's context ends.
func (e *Elector) MayAct(epoch int64) error {
	t := e.term.Load()
	switch {
	case t == nil || t.epoch != epoch:
		return fmt.Errorf("%w: the term of epoch %d is over", ErrNotActing, epoch)
	case e.cfg.Clock.Now().Sub(t.renewed) >= e.cfg.Timing.RenewDeadline:
		return fmt.Errorf("%w: not renewed for %s (renew deadline)", ErrNotActing, e.cfg.Timing.RenewDeadline)
	}
	return nil
}

// New returns an elector on st.
func New(st Store, cfg Config) (*Elector, error) {
	if err := cfg.Timing.Validate(); err != nil {
		return nil, err
	}
	if cfg.Holder == "" {
		cfg.Holder = Holder()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Gone == nil {
		cfg.Gone = HolderGone
	}
	e := &Elector{st: st, cfg: cfg, log: cfg.Log, metrics: NewMetrics()}
	e.status.Store(&Status{Reason: "not started", DatabaseOK: true, Since: cfg.Clock.Now()})
	return e, nil
}

// Status is where the elector stands now.
func (e *Elector) Status() Status { return *e.status.Load() }

// Metrics are the elector's metrics.
func (e *Elector) Metrics() *Metrics { return e.metrics }

// Holder is the name this elector holds the lease under.
func (e *Elector) Holder() string { return e.cfg.Holder }

// Hooks are what the elector runs.
type Hooks struct {
	// Lead runs a term: it acts under lease.Fence() until ctx ends
	// (context.Cause says why: ErrLeaseLost, ErrDatabase, or the
	// elector's own end), then returns once it has stopped acting. It
	// may return earlier (fenced, or failed); the term then ends.
	Lead func(ctx context.Context, lease slum.Lease) error
	// Standby, when set, runs while the elector stands by, until ctx
	// ends at a takeover (a router follows the database meanwhile).
	Standby func(ctx context.Context)
}

// Run leads and stands by in turn until ctx ends, then releases the lease
// if it holds it. It returns ctx's error.
func (e *Elector) Run(ctx context.Context, h Hooks) error {
	var sb *standby
	defer func() { sb.stop() }()
	lastLog := time.Time{}
	for ctx.Err() == nil {
		started := e.cfg.Clock.Now()
		lease, err := e.tryAcquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if e.standBy(err) || e.cfg.Clock.Now().Sub(lastLog) >= time.Minute {
				e.log.Warn("standing by: not acting on the fleet", "reason", err.Error())
				lastLog = e.cfg.Clock.Now()
			}
			if sb == nil && h.Standby != nil {
				sb = startStandby(ctx, h.Standby)
			}
			wait := e.cfg.Timing.RetryPeriod
			if isFault(err) {
				// Checking the database is a few system calls: a
				// standby on a bad one looks often, to lead again as
				// soon as it is good.
				wait = min(wait, faultRetry)
			}
			select {
			case <-ctx.Done():
			case <-e.cfg.Clock.After(wait):
			}
			continue
		}
		sb.stop()
		sb = nil
		lastLog = time.Time{}
		e.lead(ctx, lease, started, h.Lead)
	}
	return ctx.Err()
}

// standBy records standing by for err; it reports whether the reason
// changed.
func (e *Elector) standBy(err error) bool {
	old := e.status.Load()
	st := &Status{Reason: err.Error(), DatabaseOK: !isFault(err), Since: e.cfg.Clock.Now()}
	var held *heldError
	if errors.As(err, &held) {
		st.Lease = held.lease
	}
	if !old.Leading && old.Reason == st.Reason {
		return false
	}
	e.status.Store(st)
	e.metrics.set(st)
	return true
}

// heldError: a live controller holds the lease.
type heldError struct{ lease slum.Lease }

func (h *heldError) Error() string {
	return fmt.Sprintf("%s leads (epoch %d), its lease runs until %s", h.lease.Holder, h.lease.Epoch, h.lease.ExpiresAt.UTC().Format(time.RFC3339Nano))
}

func isFault(err error) bool {
	return errors.Is(err, store.ErrFault) || errors.Is(err, store.ErrMoved) || errors.Is(err, ErrDatabase)
}

// tryAcquire makes one attempt at the lease: on a usable database (a
// replaced file reopened first), from a holder that is gone at once.
func (e *Elector) tryAcquire(ctx context.Context) (slum.Lease, error) {
	if err := e.st.Check(ctx); err != nil {
		if !errors.Is(err, store.ErrMoved) {
			return slum.Lease{}, fmt.Errorf("%w: %w", ErrDatabase, err)
		}
		if rerr := e.st.Reopen(ctx); rerr != nil {
			return slum.Lease{}, fmt.Errorf("%w: %w (and it cannot be opened again: %v)", ErrDatabase, err, rerr)
		}
		e.log.Warn("opened the fleet database again: its file had changed", "was", err.Error())
	}
	ttl := e.cfg.Timing.TTL
	lease, err := e.st.AcquireLease(ctx, slum.ControllerLease, e.cfg.Holder, "", ttl)
	if err == nil || !errors.Is(err, slum.ErrConflict) {
		return lease, e.dbErr(err)
	}
	cur, gerr := e.st.GetLease(ctx, slum.ControllerLease)
	if gerr != nil {
		return slum.Lease{}, e.dbErr(gerr)
	}
	if !e.cfg.Gone(cur.Holder) {
		return slum.Lease{}, &heldError{cur}
	}
	e.log.Warn("taking over the lease of a controller that is gone", "holder", cur.Holder, "epoch", cur.Epoch)
	lease, err = e.st.AcquireLease(ctx, slum.ControllerLease, e.cfg.Holder, cur.Holder, ttl)
	if errors.Is(err, slum.ErrConflict) {
		return slum.Lease{}, &heldError{lease}
	}
	return lease, e.dbErr(err)
}

// dbErr classes a failed lease call: a fault of the database, or another
// failure (busy, say), which is retried.
func (e *Elector) dbErr(err error) error {
	if err == nil || isFault(err) {
		return err
	}
	return fmt.Errorf("the lease could not be read or written: %w", err)
}

// standby is the Standby hook running.
type standby struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startStandby(ctx context.Context, fn func(context.Context)) *standby {
	sctx, cancel := context.WithCancel(ctx)
	s := &standby{cancel: cancel, done: make(chan struct{})}
	go func() { defer close(s.done); fn(sctx) }()
	return s
}

func (s *standby) stop() {
	if s != nil {
		s.cancel()
		<-s.done
	}
}
