package desired

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

func TestLease(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	now := time.UnixMilli(1_000_000)
	s.now = func() time.Time { return now }

	if _, err := s.AcquireLease(ctx, "controller", "a", "", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, "controller", "a", "", 10*time.Second); err != nil {
		t.Fatalf("renewal: %v", err)
	}
	_, err := s.AcquireLease(ctx, "controller", "b", "", 10*time.Second)
	if !errors.Is(err, slum.ErrConflict) || !strings.Contains(err.Error(), "a holds the controller lease for 10s more") {
		t.Fatalf("second holder: %v", err)
	}
	// A holder known to be dead is replaced at once.
	if _, err := s.AcquireLease(ctx, "controller", "b", "a", 10*time.Second); err != nil {
		t.Fatalf("takeover from a dead holder: %v", err)
	}
	// An expired lease is free.
	now = now.Add(11 * time.Second)
	if _, err := s.AcquireLease(ctx, "controller", "c", "", 10*time.Second); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if l, err := s.GetLease(ctx, "controller"); err != nil || l.Holder != "c" {
		t.Fatalf("lease %+v %v", l, err)
	}
	// Releasing someone else's lease does nothing; one's own frees it.
	cur, err := s.GetLease(ctx, "controller")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseLease(ctx, slum.Fence{Lease: "controller", Holder: "b", Epoch: cur.Epoch}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLease(ctx, "controller"); err != nil {
		t.Fatal("released by a non-holder")
	}
	if err := s.ReleaseLease(ctx, cur.Fence()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLease(ctx, "controller"); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("after release: %v", err)
	}
}

// Every change of holder starts a new epoch, and a write under an old
// epoch is refused in the same transaction as the write.
func TestLeaseEpochFencesWrites(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	now := time.UnixMilli(1_000_000)
	s.now = func() time.Time { return now }
	a, err := s.AcquireLease(ctx, "controller", "a", "", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.AcquireLease(ctx, "controller", "a", "", 10*time.Second)
	if err != nil || again.Epoch != a.Epoch {
		t.Fatalf("a renewal changed the epoch: %d -> %d (%v)", a.Epoch, again.Epoch, err)
	}
	report := slum.Report{Events: []slum.Event{{At: now, Object: "fleet", Reason: slum.ReasonSpawned, Message: "x"}}}
	if err := s.WriteReport(ctx, a.Fence(), report); err != nil {
		t.Fatalf("a current holder's write: %v", err)
	}
	now = now.Add(11 * time.Second)
	b, err := s.AcquireLease(ctx, "controller", "b", "", 10*time.Second)
	if err != nil || b.Epoch != a.Epoch+1 {
		t.Fatalf("takeover: epoch %d (%v), want %d", b.Epoch, err, a.Epoch+1)
	}
	before := everything(t, s)
	for name, write := range map[string]func() error{
		"report": func() error { return s.WriteReport(ctx, a.Fence(), report) },
		"record": func() error {
			return s.RecordPlacements(ctx, a.Fence(), []slum.Placement{{ServerID: "x", Name: "api:t--i"}})
		},
		"reschedule": func() error {
			_, err := s.Reschedule(ctx, a.Fence(), []slum.Reschedule{{TenantID: "t", InstanceID: "i"}})
			return err
		},
		"holds":    func() error { _, err := s.SyncHolds(ctx, a.Fence(), nil); return err },
		"no lease": func() error { return s.WriteReport(ctx, slum.Fence{}, report) },
	} {
		if err := write(); !errors.Is(err, slum.ErrFenced) {
			t.Errorf("%s under a stale epoch: %v", name, err)
		}
	}
	if after := everything(t, s); after != before {
		t.Fatal("a fenced write changed the database")
	}
	if err := s.WriteReport(ctx, b.Fence(), report); err != nil {
		t.Fatalf("the new holder's write: %v", err)
	}
}

// everything is every row a controller writes, besides the desired state.
func everything(t *testing.T, s *Store) string {
	t.Helper()
	ctx := context.Background()
	evs, err1 := s.RecentEvents(ctx, 1000)
	ps, err2 := s.ListPlacements(ctx)
	ist, err3 := s.ListInstanceStatus(ctx)
	holds, err4 := s.RecentHolds(ctx, 100)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatal(err)
	}
	return snapshot(t, s) + fmt.Sprint(evs, ps, ist, holds)
}
