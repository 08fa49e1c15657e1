package desired

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slum-fleet/slum"
)

// TestPlaceMatchesScan drives a Placer through random servers, takes,
// releases, state changes and wariness, and checks after each step that
// Place, which looks in its ranked lists, picks what a scan of every
// server picks, and fails alike.
func TestPlaceMatchesScan(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 0))
		p := NewPlacer()
		regions := []string{"", "r0", "r1", "r2"}
		states := []slum.ServerState{slum.ServerActive, slum.ServerActive, slum.ServerActive, slum.ServerCordoned}
		var placed []slum.Instance
		for step := 0; step < 1500; step++ {
			switch op := r.IntN(10); {
			case op == 0:
				unfit := ""
				if r.IntN(5) == 0 {
					unfit = "dead"
				}
				capacity := int64(r.IntN(8)+1) * 256
				if r.IntN(40) == 0 {
					capacity = 0 // shares do not order: Place scans
				}
				p.AddServer(slum.Server{ID: fmt.Sprintf("s%d", r.IntN(30)), Region: regions[r.IntN(len(regions))],
					State: states[r.IntN(len(states))], CapacityMB: capacity}, unfit)
			case op == 1:
				p.SetWary(fmt.Sprintf("s%d", r.IntN(30)))
			case op == 2 && len(placed) > 0:
				j := r.IntN(len(placed))
				p.Release(placed[j])
				placed = append(placed[:j], placed[j+1:]...)
			default:
				tenant, process := fmt.Sprintf("t%d", r.IntN(20)), []string{"api", "worker"}[r.IntN(2)]
				region, mem := regions[r.IntN(len(regions))], int64(r.IntN(4)+1)*64
				avoid := ""
				if r.IntN(4) == 0 {
					avoid = fmt.Sprintf("s%d", r.IntN(30))
				}
				want, wantErr := p.scan(tenant, region, process, mem, avoid)
				got, err := want, wantErr
				// Even seeds change many servers between Places, which
				// makes Place sort its lists anew rather than move each.
				if seed%2 == 1 || step%40 == 0 {
					got, err = p.Place(tenant, region, process, mem, avoid)
				}
				if got != want || (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
					t.Fatalf("seed %d step %d: Place(%s, %q, %s, %d, %q) = %q, %v; a scan picks %q, %v",
						seed, step, tenant, region, process, mem, avoid, got, err, want, wantErr)
				}
				if err != nil {
					if !errors.Is(err, slum.ErrNoCapacity) {
						t.Fatalf("seed %d step %d: %v does not wrap ErrNoCapacity", seed, step, err)
					}
					continue
				}
				in := slum.Instance{TenantID: tenant, ID: fmt.Sprintf("i%d", step), Process: process, ServerID: got, MemoryMB: mem}
				p.Take(in)
				placed = append(placed, in)
			}
		}
	}
}

// TestPlacePrefers pins the order Place picks servers in: the tenant's
// region, then not wary, then least used share, then id; anti-affinity,
// room and avoid rule servers out.
func TestPlacePrefers(t *testing.T) {
	p := NewPlacer()
	for _, s := range []slum.Server{
		{ID: "a", Region: "eu", State: slum.ServerActive, CapacityMB: 1000},
		{ID: "b", Region: "eu", State: slum.ServerActive, CapacityMB: 2000},
		{ID: "c", Region: "us", State: slum.ServerActive, CapacityMB: 3000},
	} {
		p.AddServer(s, "")
	}
	steps := []struct {
		tenant, region string
		mem            int64
		avoid, want    string
	}{
		{"t1", "eu", 100, "", "a"},  // a ties b at 0 %: id
		{"t2", "eu", 100, "", "b"},  // a 10 %, b 0 %
		{"t3", "eu", 100, "", "b"},  // a 10 %, b 5 %
		{"t1", "eu", 100, "", "b"},  // t1 runs on a
		{"t4", "us", 100, "", "c"},  // region first
		{"t5", "eu", 100, "b", "a"}, // b avoided
		{"t6", "eu", 1900, "", "c"}, // no room in eu
		{"t7", "", 100, "", "b"},    // no region: least used share
	}
	for i, s := range steps {
		got, err := p.Place(s.tenant, s.region, "api", s.mem, s.avoid)
		if err != nil || got != s.want {
			t.Fatalf("step %d: Place(%s, %s, %d, %q) = %q, %v; want %q", i, s.tenant, s.region, s.mem, s.avoid, got, err, s.want)
		}
		p.Take(slum.Instance{TenantID: s.tenant, ID: fmt.Sprint(i), Process: "api", ServerID: got, MemoryMB: s.mem})
	}
	p.SetWary("b")
	if got, _ := p.Place("t8", "eu", "api", 100, ""); got != "a" {
		t.Fatalf("with b wary, Place picks %q; want a", got)
	}
}
