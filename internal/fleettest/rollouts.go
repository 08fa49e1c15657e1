package fleettest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/store"
)

// Rollouts pins the store side of rolling restarts: one unfinished at a
// time, one runner at a time (another takes over only once the
// heartbeat is stale), steps kept across reads, the copies being
// restarted in the snapshot, and abandoning.
func Rollouts(t *testing.T, open StoreOpener) {
	ctx := context.Background()
	now := time.UnixMilli(1_000_000)
	s := open(t, func() time.Time { return now })
	steps := []slum.RolloutStep{
		{Instance: "alice:backup", Server: "s2", State: slum.StepPending},
		{Instance: "alice:prod", Server: "s1", State: slum.StepPending, Serving: true},
	}
	spec := slum.RestartSpec{Tenant: "alice", Parallel: 1}

	if _, err := s.CreateRollout(ctx, slum.RestartSpec{}, steps, "a"); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("a spec naming nothing: %v", err)
	}
	if _, err := s.CreateRollout(ctx, spec, nil, "a"); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("no steps: %v", err)
	}
	rev0 := revision(t, s)
	r, err := s.CreateRollout(ctx, spec, steps, "a")
	if err != nil || r.State != slum.RolloutRunning || r.Runner != "a" || !slices.Equal(r.Steps, steps) || r.Spec != spec {
		t.Fatalf("created %+v, %v", r, err)
	}
	if _, err := s.CreateRollout(ctx, spec, steps, "b"); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("a second unfinished rollout: %v", err)
	}
	if u, err := s.UnfinishedRollout(ctx); err != nil || u.ID != r.ID {
		t.Fatalf("unfinished: %+v, %v", u, err)
	}
	if _, err := s.ClaimRollout(ctx, r.ID, "b", slum.RolloutStale); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("claim while a's heartbeat is fresh: %v", err)
	}

	r.Steps[0].State = slum.StepRestarting
	if err := s.SaveRollout(ctx, r, slum.Event{Object: slum.InstanceRef("alice:backup"), Reason: slum.ReasonRestarted, Message: "x"}); err != nil {
		t.Fatal(err)
	}
	if revision(t, s) <= rev0 {
		t.Fatal("saving a rollout did not bump the desired revision: the controller would not see the copy restarting")
	}
	snap, err := s.Snapshot(ctx)
	if err != nil || !slices.Equal(snap.Restarting, []slum.InstanceKey{"alice:backup"}) {
		t.Fatalf("snapshot restarting %v, %v", snap.Restarting, err)
	}

	// a stops (interrupted); after the stale time b takes over, and a may
	// no longer write.
	now = now.Add(slum.RolloutStale + time.Second)
	b, err := s.ClaimRollout(ctx, r.ID, "b", slum.RolloutStale)
	if err != nil || b.Runner != "b" || b.Steps[0].State != slum.StepRestarting {
		t.Fatalf("takeover %+v, %v", b, err)
	}
	if err := s.SaveRollout(ctx, r); !errors.Is(err, store.ErrRolloutTaken) {
		t.Fatalf("a's save after b took over: %v", err)
	}
	if err := s.HeartbeatRollout(ctx, r); !errors.Is(err, store.ErrRolloutTaken) {
		t.Fatalf("a's heartbeat after b took over: %v", err)
	}
	b.Steps[0].State, b.Steps[1].State, b.State = slum.StepDone, slum.StepDone, slum.RolloutDone
	if err := s.SaveRollout(ctx, b); err != nil {
		t.Fatal(err)
	}
	if snap, _ := s.Snapshot(ctx); len(snap.Restarting) != 0 {
		t.Fatalf("restarting after done: %v", snap.Restarting)
	}
	if err := s.SaveRollout(ctx, b); !errors.Is(err, store.ErrRolloutTaken) {
		t.Fatalf("a save of a finished rollout: %v", err)
	}
	if _, err := s.AbandonRollout(ctx, b.ID); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("abandon a finished one: %v", err)
	}
	if _, err := s.AbandonRollout(ctx, 999); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("abandon a missing one: %v", err)
	}
	if _, err := s.GetRollout(ctx, 999); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("get a missing one: %v", err)
	}

	releasedAndAbandonedRollouts(t, s, steps)
}

// releasedAndAbandonedRollouts: once the last rollout is done a new one may
// start; released, another runner takes it at once; abandoned, it is
// finished and its runner may no longer write.
func releasedAndAbandonedRollouts(t *testing.T, s *store.Store, steps []slum.RolloutStep) {
	ctx := context.Background()
	c, err := s.CreateRollout(ctx, slum.RestartSpec{All: true}, steps, "c")
	if err != nil {
		t.Fatal(err)
	}
	// Released (interrupted, let go), another runner takes it at once.
	if err := s.ReleaseRollout(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRollout(ctx, c); !errors.Is(err, store.ErrRolloutTaken) {
		t.Fatalf("a save after the release: %v", err)
	}
	if d, err := s.ClaimRollout(ctx, c.ID, "d", slum.RolloutStale); err != nil || d.Runner != "d" {
		t.Fatalf("claim after the release: %+v, %v", d, err)
	}
	if ab, err := s.AbandonRollout(ctx, c.ID); err != nil || ab.State != slum.RolloutAbandoned {
		t.Fatalf("abandon %+v, %v", ab, err)
	}
	c.Runner = "d"
	if err := s.SaveRollout(ctx, c); !errors.Is(err, store.ErrRolloutTaken) {
		t.Fatalf("the runner's save after abandon: %v", err)
	}
	list, err := s.ListRollouts(ctx, 10)
	if err != nil || len(list) != 2 || list[0].ID != c.ID || list[1].State != slum.RolloutDone {
		t.Fatalf("list %+v, %v", list, err)
	}
	if _, err := s.ListRollouts(ctx, 0); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("list 0: %v", err)
	}
}

func revision(t *testing.T, s *store.Store) int64 {
	t.Helper()
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap.Revision
}
