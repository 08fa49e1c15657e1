package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/replica"
)

// Observation is a lease as one observer saw it.
type Observation struct {
	Present bool
	Record  Record // zero when absent
	ETag    string
	// Since is when this observer first saw this ETag (absence counts as
	// one value), on its own clock; At is when it made this observation.
	Since, At time.Time
}

// Unchanged is how long the observer has seen the lease unchanged.
func (o Observation) Unchanged() time.Duration { return o.At.Sub(o.Since) }

// Wait is how long a taker with TTL ttl must see this lease unchanged
// before it may take it: the longer of its own TTL and the holder's.
func (o Observation) Wait(ttl time.Duration) time.Duration {
	return max(ttl, o.Record.TTL())
}

// Lapsed reports whether a held or revoked lease has stayed unchanged long
// enough for a taker with TTL ttl: its holder has stopped writing.
func (o Observation) Lapsed(ttl time.Duration) bool {
	return o.Present && o.Unchanged() >= o.Wait(ttl)
}

// Describe says what the observation means, with the unchanged time.
func (o Observation) Describe(ttl time.Duration) string {
	if !o.Present {
		return "no lease (the replica has no writer yet)"
	}
	s := o.Record.Describe()
	if o.Record.State != StateReleased {
		s += fmt.Sprintf("; unchanged for %s of %s", o.Unchanged().Round(time.Millisecond), o.Wait(ttl))
	}
	return s
}

// Step is what a would-be holder does next with an observed lease.
type Step int

const (
	StepWait   Step = iota // held or revoked and not lapsed: watch it
	StepCreate             // absent: create it
	StepTake               // released, or lapsed: replace it
)

// NextStep is the acquire rule.
func NextStep(o Observation, ttl time.Duration) Step {
	switch {
	case !o.Present:
		return StepCreate
	case o.Record.State == StateReleased:
		return StepTake
	case o.Lapsed(ttl):
		return StepTake
	}
	return StepWait
}

// Watcher follows one lease object, remembering since when it has seen
// its ETag unchanged. Not safe for concurrent use.
type Watcher struct {
	store replica.Store
	key   string
	clock clock.Clock
	last  Observation
	seen  bool
}

// NewWatcher watches the lease beside the replica at loc.
func NewWatcher(store replica.Store, loc replica.Location, clk clock.Clock) *Watcher {
	return &Watcher{store: store, key: loc.Key(ObjectName), clock: clk}
}

// Last is the latest observation (zero before the first).
func (w *Watcher) Last() Observation { return w.last }

// Observe reads the lease. Since is kept while the ETag is the one seen
// before, and set to the time the read returned otherwise: that is no
// earlier than the write that produced it, so a wait counted from it is
// never shorter than the holder's own.
func (w *Watcher) Observe(ctx context.Context) (Observation, error) {
	obj, err := w.store.Get(ctx, w.key)
	now := w.clock.Now()
	var o Observation
	switch {
	case errors.Is(err, replica.ErrNotExist):
		o = Observation{At: now}
	case err != nil:
		return Observation{}, err
	default:
		rec, err := decodeRecord(obj.Body)
		if err != nil {
			return Observation{}, fmt.Errorf("lease %s: %w", w.key, err)
		}
		o = Observation{Present: true, Record: rec, ETag: obj.ETag, At: now}
	}
	o.Since = now
	if w.seen && w.last.Present == o.Present && w.last.ETag == o.ETag {
		o.Since = w.last.Since
	}
	w.last, w.seen = o, true
	return o, nil
}

// ErrNotLapsed: a release on the holder's behalf was asked before the
// lease had stayed unchanged for its TTL.
var ErrNotLapsed = errors.New("the lease has not lapsed")

// Revoke marks the last observed lease (held, or asked for a handover)
// revoked, conditional on it being unchanged: its holder stops its app when it next renews. A holder that
// cannot be reached stops writing by itself; the lease may be released on
// its behalf once it has lapsed, counted from before the revoke (a revoked
// lease cannot be renewed). replica.ErrChanged: observe again.
func (w *Watcher) Revoke(ctx context.Context, by, reason string) (Observation, error) {
	o := w.last
	if !o.Present || !o.Record.State.renewable() {
		return o, fmt.Errorf("revoke: %w: the lease is %s", replica.ErrChanged, o.Describe(0))
	}
	rec := o.Record
	rec.State, rec.Renewal, rec.By, rec.Reason = StateRevoked, rec.Renewal+1, by, reason
	return w.write(ctx, rec, o.Since)
}

// RequestHandover asks the holder of the last observed lease to stop
// cleanly and release it: its app stops, its replication sends what it has
// not yet sent, and the next holder takes the lease at once, with every
// write. It is conditional on the lease being unchanged
// (replica.ErrChanged: observe again; a live holder renews every TTL/4). A
// holder that does not answer lapses as for Revoke.
func (w *Watcher) RequestHandover(ctx context.Context, by, reason string) (Observation, error) {
	o := w.last
	if !o.Present || o.Record.State != StateHeld {
		return o, fmt.Errorf("handover: %w: the lease is %s", replica.ErrChanged, o.Describe(0))
	}
	rec := o.Record
	rec.State, rec.Renewal, rec.By, rec.Reason = StateHandover, rec.Renewal+1, by, reason
	return w.write(ctx, rec, o.Since)
}

// ReleaseFenced releases a lapsed lease on its holder's behalf, so that
// the next holder takes it at once. It refuses (ErrNotLapsed) unless this
// watcher has itself seen the lease unchanged for the longer of ttl and
// the holder's TTL. A lease already released is left as it is.
func (w *Watcher) ReleaseFenced(ctx context.Context, by, reason string, ttl time.Duration) (Observation, error) {
	o := w.last
	if !o.Present || o.Record.State == StateReleased {
		return o, nil
	}
	if now := w.clock.Now(); now.Sub(o.Since) < o.Wait(ttl) {
		return o, fmt.Errorf("%w: %s; %s to go", ErrNotLapsed, o.Describe(ttl), (o.Wait(ttl) - now.Sub(o.Since)).Round(time.Millisecond))
	}
	rec := o.Record
	rec.State, rec.Renewal, rec.By, rec.Reason = StateReleased, rec.Renewal+1, by, reason
	return w.write(ctx, rec, w.clock.Now())
}

func (w *Watcher) write(ctx context.Context, rec Record, since time.Time) (Observation, error) {
	etag, err := w.store.Replace(ctx, w.key, rec.encode(), w.last.ETag)
	if err != nil {
		return w.last, err
	}
	now := w.clock.Now()
	w.last = Observation{Present: true, Record: rec, ETag: etag, Since: since, At: now}
	return w.last, nil
}
