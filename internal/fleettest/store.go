package fleettest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/store"
)

func Lease(t *testing.T, open StoreOpener) {
	ctx := context.Background()
	now := time.UnixMilli(1_000_000)
	s := open(t, func() time.Time { return now })

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
func LeaseEpochFencesWrites(t *testing.T, open StoreOpener) {
	ctx := context.Background()
	now := time.UnixMilli(1_000_000)
	s := open(t, func() time.Time { return now })
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

func ChangedSinceReadsOnlyWhatChanged(t *testing.T, open StoreOpener) {
	ctx := context.Background()
	s := open(t, nil)
	mustServer(t, s, "s1", "", 1000)
	mustServer(t, s, "s2", "", 1000)
	mustTenant(t, s, "alice", "")
	mustTenant(t, s, "bob", "")
	if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "api", ServerID: "s1", MemoryMB: 100}); err != nil {
		t.Fatal(err)
	}
	seq, err := s.ChangeSeq(ctx)
	if err != nil || seq == 0 {
		t.Fatalf("change seq %d %v", seq, err)
	}
	if c, err := s.ChangedSince(ctx, seq, 100); err != nil || c.Len() != 0 || c.Seq != seq {
		t.Fatalf("nothing changed, yet: %+v %v", c, err)
	}

	// A move changes the instance and the capacity use of both servers;
	// a removed tenant shows as gone; bob, untouched, is not read.
	if _, err := s.MoveInstance(ctx, "alice:prod", "s2"); err != nil {
		t.Fatal(err)
	}
	region := "eu"
	if _, err := s.UpdateTenant(ctx, "alice", slum.TenantUpdate{Region: &region}); err != nil {
		t.Fatal(err)
	}
	mustTenant(t, s, "carol", "")
	if err := s.RemoveTenant(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	c, err := s.ChangedSince(ctx, seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(c.Instances); got != "alice:prod" || c.Instances["alice:prod"].ServerID != "s2" {
		t.Fatalf("instances changed: %s", got)
	}
	if got := keysOf(c.Tenants); got != "alice carol(gone)" || c.Tenants["alice"].Region != "eu" {
		t.Fatalf("tenants changed: %s", got)
	}
	if got := keysOf(c.Stats); got != "s1 s2" || c.Stats["s1"].UsedMB != 0 || c.Stats["s2"].UsedMB != 100 || c.Stats["s2"].Instances != 1 {
		t.Fatalf("stats: %s %+v %+v", got, c.Stats["s1"], c.Stats["s2"])
	}
	if len(c.Servers)+len(c.ServerStatus)+len(c.TenantStatus)+len(c.InstanceStatus) != 0 || c.Settings != nil {
		t.Fatalf("more than changed: %+v", c)
	}
	if c.Seq <= seq {
		t.Fatalf("the position did not move: %d", c.Seq)
	}

	statusIsLoggedWhileKept(t, s, c.Seq)
}

// statusIsLoggedWhileKept: the controller's status is in the change log
// while a reader keeps it logged; the settings always are.
func statusIsLoggedWhileKept(t *testing.T, s *store.Store, seq int64) {
	ctx := context.Background()
	lease, err := s.AcquireLease(ctx, "controller", "test", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	report := slum.Report{
		Servers:   []slum.ServerStatus{{ServerID: "s2", Health: slum.HealthOnline, UpdatedAt: now}},
		Tenants:   []slum.TenantStatus{{TenantID: "alice", Serving: []slum.CopyRef{{Instance: "prod", Server: "s2"}}, UpdatedAt: now}},
		Instances: []slum.InstanceStatus{{TenantID: "alice", InstanceID: "prod", ServerID: "s2", Phase: slum.PhaseRunning, UpdatedAt: now}},
	}
	if err := s.WriteReport(ctx, lease.Fence(), report); err != nil {
		t.Fatal(err)
	}
	if c, err := s.ChangedSince(ctx, seq, 100); err != nil || c.Len() != 0 {
		t.Fatalf("status logged with no reader: %+v %v", c, err)
	}
	until, lapsed, err := s.KeepChangeLog(ctx, time.Minute, 0)
	if err != nil || !lapsed || time.UnixMilli(until).Before(now.Add(50*time.Second)) {
		t.Fatalf("keep the log: until %v, lapsed %v, %v", time.UnixMilli(until), lapsed, err)
	}
	if again, lapsed, err := s.KeepChangeLog(ctx, time.Minute, until); err != nil || lapsed || again < until {
		t.Fatalf("kept again in time: until %v, lapsed %v, %v", again, lapsed, err)
	}
	if _, lapsed, err := s.KeepChangeLog(ctx, time.Minute, 1); err != nil || !lapsed {
		t.Fatalf("kept again too late: lapsed %v, %v", lapsed, err)
	}
	report.Servers[0].Health = slum.HealthSuspect
	report.Instances[0].Phase, report.Tenants[0].Serving = slum.PhasePending, nil
	if err := s.WriteReport(ctx, lease.Fence(), report); err != nil {
		t.Fatal(err)
	}
	report.Servers[0].Health = slum.HealthOnline
	report.Instances[0].Phase, report.Tenants[0].Serving = slum.PhaseRunning, []slum.CopyRef{{Instance: "prod", Server: "s2"}}
	if err := s.WriteReport(ctx, lease.Fence(), report); err != nil {
		t.Fatal(err)
	}
	set, err := s.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	set.DeadAfter++
	if _, err := s.SetSettings(ctx, set); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveServer(ctx, "s1", false); err != nil {
		t.Fatal(err)
	}
	c, err := s.ChangedSince(ctx, seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	if keysOf(c.ServerStatus) != "s2" || keysOf(c.TenantStatus) != "alice" || keysOf(c.InstanceStatus) != "alice:prod" ||
		c.InstanceStatus["alice:prod"].Phase != slum.PhaseRunning || len(c.TenantStatus["alice"].Serving) != 1 {
		t.Fatalf("status changed: %s / %s / %s", keysOf(c.ServerStatus), keysOf(c.TenantStatus), keysOf(c.InstanceStatus))
	}
	if c.Settings == nil || c.Settings.DeadAfter != set.DeadAfter {
		t.Fatalf("settings: %+v", c.Settings)
	}
	if keysOf(c.Servers) != "s1(gone)" || keysOf(c.Stats) != "s1(gone)" {
		t.Fatalf("a removed server: %s / %s", keysOf(c.Servers), keysOf(c.Stats))
	}
}

func ChangedSinceRefusesWhatItCannotTell(t *testing.T, open StoreOpener) {
	ctx := context.Background()
	s := open(t, nil)
	seq, _ := s.ChangeSeq(ctx)
	mustServer(t, s, "s1", "", 1000)
	mustServer(t, s, "s2", "", 1000)
	// More changes than the reader takes.
	if _, err := s.ChangedSince(ctx, seq, 1); !errors.Is(err, slum.ErrChangesGone) {
		t.Fatalf("two changes, at most one taken: %v", err)
	}
	// A position before the log's start (trimmed).
	if _, err := s.ChangedSince(ctx, seq-1, 100); !errors.Is(err, slum.ErrChangesGone) {
		t.Fatalf("a position the log no longer reaches: %v", err)
	}
	if c, err := s.ChangedSince(ctx, seq, 2); err != nil || keysOf(c.Servers) != "s1 s2" {
		t.Fatalf("%+v %v", c, err)
	}
}

func TokenNeverInJSON(t *testing.T, open StoreOpener) {
	s := open(t, nil)
	mustServer(t, s, "s1", "", 100)
	srv, err := s.GetServer(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	if srv.Token != "tok-s1" {
		t.Fatalf("token not stored: %q", srv.Token)
	}
	b, _ := json.Marshal(srv)
	if strings.Contains(string(b), "tok-s1") {
		t.Fatalf("JSON shows the token: %s", b)
	}
}
