package desired

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
)

func TestRespawnAppliesEveryGivenFieldOrNothing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	mustServer(t, s, "s1", "", 1000)
	mustTenant(t, s, "a", "")
	spawn := func(spec slum.InstanceSpec) (slum.Instance, error) {
		spec.TenantID, spec.ID, spec.Process = "a", "p", "api"
		return s.SpawnInstance(ctx, spec)
	}
	in, err := spawn(slum.InstanceSpec{Mode: slum.ModeOnDemand})
	if err != nil || in.MemoryMB != slum.DefaultMemoryMB || in.Mode != slum.ModeOnDemand {
		t.Fatalf("first spawn: %+v %v", in, err)
	}
	// Nothing given: nothing changes, not even the mode back to its default.
	if again, err := spawn(slum.InstanceSpec{}); err != nil || again != in {
		t.Fatalf("a bare re-spawn: %+v %v", again, err)
	}
	// Memory and mode given: both applied.
	if in, err = spawn(slum.InstanceSpec{MemoryMB: 512, Mode: slum.ModeAlways}); err != nil || in.MemoryMB != 512 || in.Mode != slum.ModeAlways {
		t.Fatalf("re-spawn with memory and mode: %+v %v", in, err)
	}
	// More memory than the server has: refused whole, the mode included.
	before := snapshot(t, s)
	_, err = spawn(slum.InstanceSpec{MemoryMB: 2000, Mode: slum.ModeOnDemand})
	if !errors.Is(err, slum.ErrNoCapacity) || !strings.Contains(err.Error(), "server s1 has 1000 MB for it, not the 2000 MB asked") {
		t.Fatalf("re-spawn beyond capacity: %v", err)
	}
	if snapshot(t, s) != before {
		t.Fatal("a refused re-spawn changed the database")
	}
	// A stopped instance is started with the new memory.
	if _, err := s.StopInstance(ctx, "a:p"); err != nil {
		t.Fatal(err)
	}
	if in, err = spawn(slum.InstanceSpec{MemoryMB: 1000}); err != nil || in.MemoryMB != 1000 || in.DesiredState != slum.StateRunning {
		t.Fatalf("re-spawn of a stopped instance: %+v %v", in, err)
	}
	// Negative memory is invalid; zero means "not given".
	if _, err := spawn(slum.InstanceSpec{MemoryMB: -1}); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("negative memory: %v", err)
	}
}
