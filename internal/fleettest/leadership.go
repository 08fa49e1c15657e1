package fleettest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/store"
)

// Leadership: status names the lease's holder, its epoch and how long
// since it renewed, and the standbys (controllers that tried to take the
// lease lately); every change of holder is an event.
func Leadership(t *testing.T, open StoreOpener) {
	ctx := context.Background()
	now := time.UnixMilli(1_000_000)
	s := open(t, func() time.Time { return now })
	lease := slum.ControllerLease

	if o := overview(t, s); o.Controller != nil {
		t.Fatalf("no controller ran, yet leadership %+v", o.Controller)
	}
	if _, err := s.AcquireLease(ctx, lease, "a", "", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if _, err := s.AcquireLease(ctx, lease, "b", "", 10*time.Second); err == nil {
		t.Fatal("b took a held lease")
	}
	now = now.Add(500 * time.Millisecond)
	want := slum.Leadership{At: now, Leader: "a", Epoch: 1, ExpiresAt: time.UnixMilli(1_010_000), Live: true, RenewedAt: time.UnixMilli(1_000_000),
		Standbys: []slum.Controller{{Holder: "b", StartedAt: time.UnixMilli(1_001_000), SeenAt: time.UnixMilli(1_001_000)}}}
	checkLeadership(t, s, want)
	lastEvent(t, s, slum.ControllerRef("a"), slum.ReasonLeading, "a leads (epoch 1)")

	// a falls silent: its lease lapses, then b (still trying) takes it.
	now = time.UnixMilli(1_011_000)
	got := leadership(t, s)
	if got.Live || got.Leader != "a" || got.For() != time.Second {
		t.Fatalf("a's lease lapsed: %+v", got)
	}
	if _, err := s.AcquireLease(ctx, lease, "b", "", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	want = slum.Leadership{At: now, Leader: "b", Epoch: 2, ExpiresAt: time.UnixMilli(1_021_000), Live: true, RenewedAt: now,
		Standbys: []slum.Controller{{Holder: "a", StartedAt: time.UnixMilli(1_000_000), SeenAt: time.UnixMilli(1_000_000)}}}
	checkLeadership(t, s, want)
	lastEvent(t, s, slum.ControllerRef("b"), slum.ReasonTookOver, "b took over from a, whose lease expired 1s ago (epoch 2)")

	// A controller silent for long is no standby.
	now = time.UnixMilli(1_020_000)
	if _, err := s.AcquireLease(ctx, lease, "b", "", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	now = now.Add(11 * time.Second)
	if got := leadership(t, s); len(got.Standbys) != 0 || got.Ago(got.RenewedAt) != 11*time.Second {
		t.Fatalf("a silent for 31 s: %+v", got)
	}
	// A holder known to be gone is replaced at once, and the event says so.
	if _, err := s.AcquireLease(ctx, lease, "c", "b", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	lastEvent(t, s, slum.ControllerRef("c"), slum.ReasonTookOver, "c took over from b, whose process is gone (epoch 3)")
	// Giving the lease up leaves no leader, and the one that stopped is
	// no standby.
	cur, err := s.GetLease(ctx, lease)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseLease(ctx, cur.Fence()); err != nil {
		t.Fatal(err)
	}
	lastEvent(t, s, slum.ControllerRef("c"), slum.ReasonSteppedDown, "c gave up the controller lease (epoch 3)")
	if got := leadership(t, s); got.Leader != "" || len(got.Standbys) != 0 {
		t.Fatalf("after release: %+v", got)
	}
}

func overview(t *testing.T, s *store.Store) *slum.Overview {
	t.Helper()
	o, err := s.Overview(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func leadership(t *testing.T, s *store.Store) slum.Leadership {
	t.Helper()
	l, err := s.Leadership(context.Background(), slum.ControllerLease)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// checkLeadership compares the leadership, and the overview's, with want.
func checkLeadership(t *testing.T, s *store.Store, want slum.Leadership) {
	t.Helper()
	for _, got := range []*slum.Leadership{ptr(leadership(t, s)), overview(t, s).Controller} {
		if got == nil || !sameLeadership(*got, want) {
			t.Fatalf("leadership\n got %+v\nwant %+v", got, want)
		}
	}
}

func sameLeadership(a, b slum.Leadership) bool {
	if !a.At.Equal(b.At) || a.Leader != b.Leader || a.Epoch != b.Epoch || !a.ExpiresAt.Equal(b.ExpiresAt) ||
		a.Live != b.Live || !a.RenewedAt.Equal(b.RenewedAt) || len(a.Standbys) != len(b.Standbys) {
		return false
	}
	for i, x := range a.Standbys {
		y := b.Standbys[i]
		if x.Holder != y.Holder || !x.StartedAt.Equal(y.StartedAt) || !x.SeenAt.Equal(y.SeenAt) {
			return false
		}
	}
	return true
}

// lastEvent fails unless the newest event is about obj, for reason,
// saying msg.
func lastEvent(t *testing.T, s *store.Store, obj slum.ObjectRef, reason slum.EventReason, msg string) {
	t.Helper()
	evs, err := s.RecentEvents(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Object != obj || evs[0].Reason != reason || !strings.Contains(evs[0].Message, msg) {
		t.Fatalf("last event %+v, want %s %s %q", evs, obj, reason, msg)
	}
}
