package reconcile

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
)

// indexOf indexes keys as a posIndex, returning also what a map would
// hold: the last position of each key.
func indexOf(keys []string) (posIndex, map[string]int32) {
	x := newPosIndex(len(keys), func(i int32) string { return keys[i] })
	want := map[string]int32{}
	for i, k := range keys {
		x.put(int32(i))
		want[k] = int32(i)
	}
	return x, want
}

func TestPosIndexFindsWhatAMapWould(t *testing.T) {
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("t%d:prod", i)
	}
	for _, tc := range []struct {
		name   string
		keys   []string
		absent []string
	}{
		{"none", nil, []string{"", "a"}},
		{"one", []string{"a"}, []string{"", "b", "aa"}},
		{"empty key", []string{"", "a"}, []string{"b"}},
		{"a key twice: the last wins", []string{"a", "b", "a"}, []string{"c"}},
		{"full to half: every probe wraps", []string{"a", "b", "c", "d"}, []string{"e", "f", "g", "h", "i"}},
		{"many", many, []string{"t1000:prod", "t1:pro", "t1:prod "}},
	} {
		x, want := indexOf(tc.keys)
		for k, pos := range want {
			if got, ok := x.find(k); !ok || got != pos {
				t.Errorf("%s: find(%q) = %d, %v; want %d", tc.name, k, got, ok, pos)
			}
		}
		for _, k := range tc.absent {
			if got, ok := x.find(k); ok {
				t.Errorf("%s: find(%q) = %d, want absent", tc.name, k, got)
			}
		}
		if len(x.slots) < 2*len(tc.keys) || slices.Index(x.slots, 0) < 0 {
			t.Errorf("%s: %d slots for %d keys, none empty", tc.name, len(x.slots), len(tc.keys))
		}
	}
	var zero posIndex
	if _, ok := zero.find("a"); ok {
		t.Error("the zero index found a key")
	}
}

// FuzzPosIndex holds the index to a map: keys are the input's lines, and
// each line is looked up, with keys close to it that may be absent (the
// line with a byte more, without its first byte, its first half).
func FuzzPosIndex(f *testing.F) {
	f.Add("a\nb\na\n\nc")
	f.Add("t1:prod\nt2:prod\nt10:prod\nt1:prod")
	f.Fuzz(func(t *testing.T, text string) {
		keys := strings.Split(text, "\n")
		x, want := indexOf(keys)
		for _, k := range keys {
			for _, probe := range []string{k, k + "\x00", k[min(len(k), 1):], k[:len(k)/2]} {
				pos, inMap := want[probe]
				got, ok := x.find(probe)
				if ok != inMap || ok && got != pos {
					t.Fatalf("find(%q) = %d, %v; a map holds %d, %v", probe, got, ok, pos, inMap)
				}
			}
		}
	})
}

// Every lookup of a fleet finds the snapshot's row, and nothing else.
func TestFleetFindsEveryRowByKey(t *testing.T) {
	snap := &slum.Snapshot{Servers: []slum.Server{{ID: "s1"}, {ID: "s2"}}}
	for i := 0; i < 300; i++ {
		id := fmt.Sprintf("t%d", i)
		snap.Tenants = append(snap.Tenants, slum.Tenant{ID: id})
		for _, inst := range []string{"prod", "spare"} {
			snap.Instances = append(snap.Instances, slum.Instance{TenantID: id, ID: inst, Process: "api", ServerID: fmt.Sprintf("s%d", i%2+1)})
		}
	}
	f := NewFleet(snap)
	for i := range snap.Instances {
		in := &snap.Instances[i]
		if d, ok := f.Instance(in.Key()); !ok || d.Instance != in || d.Index != i {
			t.Fatalf("Instance(%s) = %v, %v", in.Key(), d, ok)
		}
		if d, ok := f.Named(in.TenementName()); !ok || d.Instance != in {
			t.Fatalf("Named(%s) = %v, %v", in.TenementName(), d, ok)
		}
	}
	for i := range snap.Tenants {
		if got := f.Tenant(snap.Tenants[i].ID); got != &snap.Tenants[i] {
			t.Fatalf("Tenant(%s) = %v", snap.Tenants[i].ID, got)
		}
		if got := f.InstancesOf(snap.Tenants[i].ID); len(got) != 2 || got[0].TenantID != snap.Tenants[i].ID {
			t.Fatalf("InstancesOf(%s) = %v", snap.Tenants[i].ID, got)
		}
		if got := f.InstancesAt(i); !slices.Equal(got, f.InstancesOf(snap.Tenants[i].ID)) {
			t.Fatalf("InstancesAt(%d) = %v", i, got)
		}
	}
	if _, ok := f.Instance("t300:prod"); ok {
		t.Error("found an instance the snapshot does not hold")
	}
	if _, ok := f.Named("api:t1--prod"); !ok {
		t.Error("did not find api:t1--prod")
	}
	if _, ok := f.Named("web:t1--prod"); ok {
		t.Error("found a name with another process")
	}
	if f.Tenant("t300") != nil || f.InstancesOf("t300") != nil {
		t.Error("found a tenant the snapshot does not hold")
	}
	// Tenants in another order than the instances, one with none.
	mixed := &slum.Snapshot{Servers: snap.Servers, Instances: snap.Instances,
		Tenants: []slum.Tenant{{ID: "t2"}, {ID: "idle"}, {ID: "t0"}, {ID: "t1"}}}
	g := NewFleet(mixed)
	for i, want := range []string{"t2", "", "t0", "t1"} {
		got := g.InstancesAt(i)
		if want == "" && got != nil || want != "" && (len(got) != 2 || got[0].TenantID != want) {
			t.Errorf("InstancesAt(%d) of %s = %v", i, mixed.Tenants[i].ID, got)
		}
	}
}
