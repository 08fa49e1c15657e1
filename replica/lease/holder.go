package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/replica"
)

// ErrFenced: another copy holds the lease, or it was revoked or released
// on this holder's behalf. The holder must stop writing and stop its app.
var ErrFenced = errors.New("fenced")

// ErrHandover: an observer asked this holder to hand the lease over. The
// holder stops cleanly and releases it; its renewals keep the state.
var ErrHandover = errors.New("a handover of the lease was asked")

// FencedError says who has the lease now.
type FencedError struct{ Now Record }

func (e *FencedError) Error() string        { return "fenced: the lease is " + e.Now.Describe() }
func (e *FencedError) Is(target error) bool { return target == ErrFenced }

// Acquired is how a holder got its lease.
type Acquired struct {
	Generation int64
	// PrevDBGeneration is the generation under which the replica's
	// database was last written before this holder (0: never).
	PrevDBGeneration int64
	From             string        // what the lease was: "absent", or the previous record described
	Waited           time.Duration // from the first read to holding it
}

// Holder holds one lease for one copy. Not safe for concurrent use: one
// goroutine acquires, renews and releases.
type Holder struct {
	store  replica.Store
	key    string
	id     string
	server string
	gone   func(Record) bool
	timing Timing
	clock  clock.Clock
	logf   func(format string, args ...any)
	watch  *Watcher

	rec        Record
	etag       string
	held       bool
	validUntil time.Time
}

// NewHolder prepares a holder called id (unique per process) for the lease
// beside loc. logf receives every lease transition.
func NewHolder(store replica.Store, loc replica.Location, id string, timing Timing, clk clock.Clock, logf func(string, ...any)) (*Holder, error) {
	if err := timing.Validate(); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, errors.New("lease holder needs an id")
	}
	return &Holder{store: store, key: loc.Key(ObjectName), id: id, timing: timing, clock: clk, logf: logf,
		watch: NewWatcher(store, loc, clk)}, nil
}

// OnServer names the slum server this holder runs on, written into every
// record it writes (Record.Server). Call it before Acquire.
func (h *Holder) OnServer(server string) { h.server = server }

// TakeFromGone lets this holder take a held or revoked lease at once when
// gone says its holder provably no longer runs (the guard: a predecessor
// of this very copy, on this host and server, whose process has exited,
// as when tenement restarts an instance with SIGKILL). Without it, or
// when gone is false, the lease is taken only once it has lapsed.
func (h *Holder) TakeFromGone(gone func(Record) bool) { h.gone = gone }

// ID is the holder's id.
func (h *Holder) ID() string { return h.id }

// Record is the record as this holder last wrote it.
func (h *Holder) Record() Record { return h.rec }

// ValidUntil is when this holder must have stopped writing the replica:
// RenewDeadline after it sent its last renewal that succeeded.
func (h *Holder) ValidUntil() time.Time { return h.validUntil }

// Acquire blocks until this holder holds the lease (or ctx ends): it
// creates an absent lease, takes a released one at once, and takes a held
// or revoked one after watching it unchanged for its TTL.
func (h *Holder) Acquire(ctx context.Context) (Acquired, error) {
	start := h.clock.Now()
	var lastSaid string
	for {
		o, err := h.watch.Observe(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return Acquired{}, ctx.Err()
			}
			h.say(&lastSaid, "lease: cannot read it (retrying): %v", err)
			if err := h.sleep(ctx, h.timing.RenewEvery()); err != nil {
				return Acquired{}, err
			}
			continue
		}
		step := NextStep(o, h.timing.TTL)
		if step == StepWait && h.gone != nil && h.gone(o.Record) {
			h.say(&lastSaid, "lease: %s, which provably no longer runs: taking it at once", o.Record.Describe())
			step = StepTake
		}
		if step == StepWait {
			h.say(&lastSaid, "lease: %s; waiting for it to stay unchanged for %s", o.Record.Describe(), o.Wait(h.timing.TTL))
			// poll at the renewal interval, and once more right at the lapse
			nap := min(h.timing.RenewEvery(), max(o.Wait(h.timing.TTL)-o.Unchanged(), 5*time.Millisecond))
			if err := h.sleep(ctx, nap); err != nil {
				return Acquired{}, err
			}
			continue
		}
		acq, err := h.take(ctx, o, step)
		if errors.Is(err, replica.ErrChanged) {
			h.say(&lastSaid, "lease: another copy wrote it first; looking again")
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return Acquired{}, ctx.Err()
			}
			h.say(&lastSaid, "lease: cannot write it (retrying): %v", err)
			if err := h.sleep(ctx, h.timing.RenewEvery()); err != nil {
				return Acquired{}, err
			}
			continue
		}
		acq.Waited = h.clock.Now().Sub(start)
		h.logf("lease: acquired generation %d as %s (it was %s; waited %s)", acq.Generation, h.id, acq.From, acq.Waited.Round(time.Millisecond))
		return acq, nil
	}
}

// take creates or replaces the observed lease with this holder's.
func (h *Holder) take(ctx context.Context, o Observation, step Step) (Acquired, error) {
	gen := o.Record.Generation + 1
	rec := Record{Holder: h.id, Server: h.server, Generation: gen, State: StateHeld, DBGeneration: gen,
		TTLMillis: h.timing.TTL.Milliseconds(), Renewal: o.Record.Renewal + 1}
	sent := h.clock.Now()
	var etag string
	var err error
	if step == StepCreate {
		etag, err = h.store.Create(ctx, h.key, rec.encode())
	} else {
		etag, err = h.store.Replace(ctx, h.key, rec.encode(), o.ETag)
	}
	if err != nil {
		return Acquired{}, err
	}
	h.rec, h.etag, h.held, h.validUntil = rec, etag, true, sent.Add(h.timing.RenewDeadline)
	from := "absent"
	if o.Present {
		from = o.Record.Describe()
		if o.Record.State != StateReleased {
			from += fmt.Sprintf(", unchanged for %s", o.Unchanged().Round(time.Millisecond))
		}
	}
	return Acquired{Generation: gen, PrevDBGeneration: o.Record.DBGeneration, From: from}, nil
}

// Renew renews the lease once. On success ValidUntil moves to RenewDeadline
// after the request was sent. A *FencedError (ErrFenced) means the lease is
// lost for good; other errors are transient (the store is unreachable or
// slow) and the caller stops writing once ValidUntil passes.
func (h *Holder) Renew(ctx context.Context) error {
	if !h.held {
		return errors.New("lease: renew before acquire")
	}
	rec := h.rec
	rec.Renewal++
	sent := h.clock.Now()
	etag, err := h.store.Replace(ctx, h.key, rec.encode(), h.etag)
	if err == nil {
		h.rec, h.etag = rec, etag
		h.validUntil = sent.Add(h.timing.RenewDeadline)
		return nil
	}
	if !errors.Is(err, replica.ErrChanged) {
		return err
	}
	return h.afterConflict(ctx, rec)
}

// afterConflict reads the lease after a conditional write failed. If it
// is still this holder's (an earlier write landed though its answer was
// lost), the holder adopts it and the caller renews again: a write whose
// sending time is unknown does not extend ValidUntil.
func (h *Holder) afterConflict(ctx context.Context, sent Record) error {
	o, err := h.watch.Observe(ctx)
	if err != nil {
		return fmt.Errorf("lease: a renewal was refused and the lease cannot be read: %w", err)
	}
	if !o.Present {
		h.held = false
		return &FencedError{Now: Record{Holder: "nobody", State: StateReleased, Reason: "the lease object was deleted"}}
	}
	r := o.Record
	mine := r.Holder == h.id && r.Generation == h.rec.Generation
	switch {
	case mine && r.State == StateHandover && h.rec.State != StateHandover:
		h.rec, h.etag = r, o.ETag
		return fmt.Errorf("%w by %s: %s", ErrHandover, r.By, r.Reason)
	case mine && r.State == h.rec.State && r.Renewal <= sent.Renewal:
		h.rec, h.etag = r, o.ETag
		return fmt.Errorf("lease: a renewal was refused by a write of its own that landed unanswered; renewing again")
	}
	h.held = false
	return &FencedError{Now: r}
}

// Release writes the lease released, keeping its generation and database
// generation, so that the next holder takes it at once and knows whether
// its local database is the newest. Call it only once the replica is no
// longer written.
func (h *Holder) Release(ctx context.Context) error {
	if !h.held {
		return errors.New("lease: release of a lease not held")
	}
	rec := h.rec
	rec.Renewal++
	rec.State = StateReleased
	etag, err := h.store.Replace(ctx, h.key, rec.encode(), h.etag)
	if errors.Is(err, replica.ErrChanged) {
		if o, rerr := h.watch.Observe(ctx); rerr == nil && o.Present && o.Record == rec {
			// the release landed, though its answer was lost
			h.rec, h.etag, h.held = rec, o.ETag, false
			return nil
		}
		if err = h.afterConflict(ctx, rec); errors.Is(err, ErrFenced) {
			return err
		}
		rec.Renewal = h.rec.Renewal + 1
		etag, err = h.store.Replace(ctx, h.key, rec.encode(), h.etag)
	}
	if err != nil {
		return err
	}
	h.rec, h.etag, h.held = rec, etag, false
	return nil
}

// ConfirmRevoked writes this holder's revoked lease released, once the
// holder has stopped writing the replica for good (its Litestream and app
// are gone): the next copy then takes it at once instead of a TTL after
// the revocation, as it would a lease released by a clean stop. Only a
// revocation of this holder's own lease, of its generation, is confirmed;
// anything else (another copy took it, slum released it) is left as it is
// (replica.ErrChanged).
func (h *Holder) ConfirmRevoked(ctx context.Context) error {
	o, err := h.watch.Observe(ctx)
	if err != nil {
		return err
	}
	if !o.Present || o.Record.State != StateRevoked || o.Record.Holder != h.id || o.Record.Generation != h.rec.Generation {
		return fmt.Errorf("lease: confirm revocation: %w: the lease is %s", replica.ErrChanged, o.Describe(h.timing.TTL))
	}
	rec := o.Record
	rec.State, rec.Renewal, rec.By, rec.Reason = StateReleased, rec.Renewal+1, "", ""
	if _, err := h.store.Replace(ctx, h.key, rec.encode(), o.ETag); err != nil {
		return fmt.Errorf("lease: confirm revocation: %w", err)
	}
	h.rec, h.held = rec, false
	return nil
}

func (h *Holder) say(last *string, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if msg != *last {
		h.logf("%s", msg)
		*last = msg
	}
}

func (h *Holder) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-h.clock.After(d):
		return nil
	}
}
