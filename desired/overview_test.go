package desired

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

// The overview's counts, which SQLite makes, are what reading every
// instance and its status gives.
func TestOverviewCounts(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	for _, id := range []string{"s1", "s2", "s3"} {
		mustServer(t, s, id, "", 10000)
	}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		mustTenant(t, s, id, "")
		if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: id, ID: "prod", Process: "api", ServerID: "s1"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "a", ID: "backup", Process: "api", ServerID: "s2"}); err != nil {
		t.Fatal(err)
	}
	lease, err := s.AcquireLease(ctx, "controller", "test", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.WriteReport(ctx, lease.Fence(), slum.Report{Instances: []slum.InstanceStatus{
		{TenantID: "a", InstanceID: "prod", Phase: slum.PhaseRunning, UpdatedAt: now},
		{TenantID: "b", InstanceID: "prod", Phase: slum.PhaseRunning, UpdatedAt: now},
		{TenantID: "c", InstanceID: "prod", Phase: slum.PhaseFailed, UpdatedAt: now},
		{TenantID: "d", InstanceID: "prod", Phase: "", UpdatedAt: now},
		{TenantID: "gone", InstanceID: "prod", Phase: slum.PhaseRunning, UpdatedAt: now},
	}}); err != nil {
		t.Fatal(err)
	}
	in, _ := s.GetInstance(ctx, "e:prod")
	if _, err := s.Reschedule(ctx, lease.Fence(), []slum.Reschedule{{TenantID: "e", InstanceID: "prod", From: "s1", To: "s3", Generation: in.Generation, Reason: "test"}}); err != nil {
		t.Fatal(err)
	}
	o, err := s.Overview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[slum.Phase]int{slum.PhaseRunning: 2, slum.PhaseFailed: 1, slum.PhasePending: 3}
	if o.Tenants != 5 || o.Instances != 6 || o.FailedOver != 1 || !reflect.DeepEqual(o.Phases, want) {
		t.Fatalf("overview: %d tenants, %d instances, %d failed over, phases %v", o.Tenants, o.Instances, o.FailedOver, o.Phases)
	}
}
