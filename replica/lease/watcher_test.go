package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/replica"
)

func TestWatcherKeepsSinceWhileTheETagStays(t *testing.T) {
	st, clk := newMemStore(), fakeclock.New(t0)
	w := NewWatcher(st, loc, clk)
	o, err := w.Observe(context.Background())
	if err != nil || o.Present || !o.Since.Equal(t0) {
		t.Fatalf("absent: %+v %v", o, err)
	}
	a := newTestHolder(t, st, clk, "a")
	if _, err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	o, _ = w.Observe(context.Background())
	if !o.Since.Equal(t0.Add(time.Second)) || o.Unchanged() != 0 {
		t.Fatalf("a new ETag must restart Since: %+v", o)
	}
	clk.Advance(1500 * time.Millisecond)
	o, _ = w.Observe(context.Background())
	if o.Unchanged() != 1500*time.Millisecond || o.Lapsed(2*time.Second) {
		t.Fatalf("unchanged %s lapsed %v", o.Unchanged(), o.Lapsed(2*time.Second))
	}
	if err := a.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	o, _ = w.Observe(context.Background())
	if o.Unchanged() != 0 {
		t.Fatalf("a renewal must change the ETag and restart Since: unchanged %s", o.Unchanged())
	}
}

func TestRevokeThenFencedRelease(t *testing.T) {
	st, clk := newMemStore(), fakeclock.New(t0)
	a := newTestHolder(t, st, clk, "a")
	if _, err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(st, loc, clk)
	if _, err := w.Observe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ReleaseFenced(context.Background(), "slum", "server s1 is dead", 2*time.Second); !errors.Is(err, ErrNotLapsed) {
		t.Fatalf("release before the lapse: %v, want ErrNotLapsed", err)
	}
	clk.Advance(time.Second)
	o, err := w.Revoke(context.Background(), "slum", "server s1 is dead")
	if err != nil || o.Record.State != StateRevoked {
		t.Fatalf("revoke: %+v %v", o, err)
	}
	// the revoked holder learns it on its next renewal
	var fe *FencedError
	if err := a.Renew(context.Background()); !errors.As(err, &fe) || fe.Now.State != StateRevoked {
		t.Fatalf("renew after revoke: %v, want fenced (revoked)", err)
	}
	// the wait counts from before the revoke: a revoked lease cannot be renewed
	clk.Advance(999 * time.Millisecond)
	if _, err := w.Observe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ReleaseFenced(context.Background(), "slum", "x", 2*time.Second); !errors.Is(err, ErrNotLapsed) {
		t.Fatalf("release 1.999 s after first sight: %v, want ErrNotLapsed", err)
	}
	clk.Advance(time.Millisecond)
	o, err = w.ReleaseFenced(context.Background(), "slum", "server s1 is dead", 2*time.Second)
	if err != nil || o.Record.State != StateReleased || o.Record.By != "slum" || o.Record.Holder != "a" {
		t.Fatalf("fenced release: %+v %v", o, err)
	}
	b := newTestHolder(t, st, clk, "b")
	acq, err := b.Acquire(context.Background())
	if err != nil || acq.Generation != 2 || acq.PrevDBGeneration != 1 || acq.Waited != 0 {
		t.Fatalf("take after fenced release: %+v %v", acq, err)
	}
}

// A revoked holder that has stopped confirms it: the next copy takes the
// lease at once, not a TTL after the revocation. Only its own revocation
// is confirmed.
func TestRevokedHolderConfirmsItStopped(t *testing.T) {
	st, clk := newMemStore(), fakeclock.New(t0)
	a := newTestHolder(t, st, clk, "a")
	if _, err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.ConfirmRevoked(context.Background()); !errors.Is(err, replica.ErrChanged) {
		t.Fatalf("confirming a lease not revoked: %v, want ErrChanged", err)
	}
	w := NewWatcher(st, loc, clk)
	if _, err := w.Observe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Revoke(context.Background(), "slum", "server s1 is dead"); err != nil {
		t.Fatal(err)
	}
	if err := a.Renew(context.Background()); !errors.Is(err, ErrFenced) {
		t.Fatalf("renew after revoke: %v, want fenced", err)
	}
	if err := a.ConfirmRevoked(context.Background()); err != nil {
		t.Fatal(err)
	}
	o, err := w.Observe(context.Background())
	if err != nil || o.Record.State != StateReleased || o.Record.Holder != "a" || o.Record.Generation != 1 || o.Record.By != "" {
		t.Fatalf("after the confirmation the lease is %+v (%v), want released by its holder, generation 1", o.Record, err)
	}
	b := newTestHolder(t, st, clk, "b")
	acq, err := b.Acquire(context.Background()) // the clock never moves: at once
	if err != nil || acq.Generation != 2 || acq.Waited != 0 {
		t.Fatalf("take after the confirmation: %+v %v", acq, err)
	}
	// a's revocation, already taken over: a confirmation changes nothing.
	if err := a.ConfirmRevoked(context.Background()); !errors.Is(err, replica.ErrChanged) {
		t.Fatalf("confirming a lease another holds: %v, want ErrChanged", err)
	}
	if o, _ := w.Observe(context.Background()); o.Record.Holder != "b" || o.Record.State != StateHeld {
		t.Fatalf("b's lease after a's late confirmation: %+v", o.Record)
	}
}

func TestRevokeOfAChangedLeaseFails(t *testing.T) {
	st, clk := newMemStore(), fakeclock.New(t0)
	a := newTestHolder(t, st, clk, "a")
	if _, err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(st, loc, clk)
	if _, err := w.Observe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Revoke(context.Background(), "slum", "x"); !errors.Is(err, replica.ErrChanged) {
		t.Fatalf("revoke on a stale observation: %v, want ErrChanged", err)
	}
	if err := a.Renew(context.Background()); err != nil {
		t.Fatalf("the holder must be untouched by a failed revoke: %v", err)
	}
}

func TestHandoverKeepsTheHolderRenewingUntilItReleases(t *testing.T) {
	st, clk := newMemStore(), fakeclock.New(t0)
	a := newTestHolder(t, st, clk, "a")
	if _, err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(st, loc, clk)
	if _, err := w.Observe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o, err := w.RequestHandover(context.Background(), "slum", "moving alice to s2"); err != nil || o.Record.State != StateHandover {
		t.Fatalf("request: %+v %v", o, err)
	}
	if err := a.Renew(context.Background()); !errors.Is(err, ErrHandover) || errors.Is(err, ErrFenced) {
		t.Fatalf("renew after the request: %v, want ErrHandover", err)
	}
	clk.Advance(500 * time.Millisecond)
	if err := a.Renew(context.Background()); err != nil || a.Record().State != StateHandover {
		t.Fatalf("the holder must go on renewing while it stops cleanly: %v, state %s", err, a.Record().State)
	}
	if before := (Observation{Present: true, Record: a.Record(), Since: t0, At: t0}); NextStep(before, 2*time.Second) != StepWait {
		t.Fatal("a taker must wait for a lease in handover")
	}
	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := newTestHolder(t, st, clk, "b")
	if acq, err := b.Acquire(context.Background()); err != nil || acq.Waited != 0 || acq.PrevDBGeneration != 1 {
		t.Fatalf("take after the handover: %+v %v", acq, err)
	}
}
