package routes

import (
	"slices"
	"testing"

	"github.com/slum-fleet/slum"
)

func TestLookupNormalizesHost(t *testing.T) {
	tab := New(3, []Route{
		{Tenant: "alice", Domain: "alice.example.com", Backends: []Backend{{Instance: "alice:prod", Server: "s1"}}},
		{Tenant: "bob", Domain: "Bob.Example.com"},
		{Tenant: "dup", Domain: "alice.example.com"},
	})
	if tab.Revision() != 3 || tab.Len() != 2 {
		t.Fatalf("revision %d len %d", tab.Revision(), tab.Len())
	}
	for _, c := range []struct {
		host, tenant string
		ok           bool
	}{
		{"alice.example.com", "alice", true},
		{"ALICE.example.com:8080", "alice", true},
		{"alice.example.com.", "alice", true},
		{"bob.example.com", "bob", true},
		{"carol.example.com", "", false},
		{"", "", false},
		{"[::1]:80", "", false},
	} {
		r, ok := tab.Lookup(c.host)
		if ok != c.ok || (ok && r.Tenant != c.tenant) {
			t.Errorf("Lookup(%q) = %v, %v; want %s, %v", c.host, r, ok, c.tenant, c.ok)
		}
	}
	var empty *Table
	if _, ok := empty.Lookup("alice.example.com"); ok || empty.Len() != 0 || empty.Revision() != 0 {
		t.Fatal("a nil table must be empty")
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"a.example.com", "A.B:80", "x.", "[::1]:8080", ":", "", "::", "[x]:1:2", "::1", "[]:]:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(s)
		if Normalize(n) != n && len(n) > 0 && n[len(n)-1] != '.' {
			t.Fatalf("Normalize is not idempotent: %q -> %q -> %q", s, n, Normalize(n))
		}
	})
}

// decision is a Decision from plain slices.
type decision struct {
	rev     int64
	health  []slum.Health
	choices []Choice
}

func (d decision) Revision() int64          { return d.rev }
func (d decision) Servers() int             { return len(d.health) }
func (d decision) Health(i int) slum.Health { return d.health[i] }
func (d decision) Tenants() int             { return len(d.choices) }
func (d decision) Choice(i int) Choice      { return d.choices[i] }

func TestChangedSeesWhatRoutesDependOn(t *testing.T) {
	prod := []slum.CopyRef{{Instance: "prod", Server: "s1"}}
	backup := []slum.CopyRef{{Instance: "backup", Server: "s2"}}
	base := decision{rev: 3, health: []slum.Health{slum.HealthOnline, slum.HealthOnline},
		choices: []Choice{{Tenant: "alice", Serving: prod, Spares: backup}}}
	with := func(f func(d *decision)) decision {
		d := base
		d.health = slices.Clone(base.health)
		d.choices = slices.Clone(base.choices)
		f(&d)
		return d
	}
	for _, c := range []struct {
		name string
		last Decision
		next decision
		want bool
	}{
		{"no table yet", nil, base, true},
		{"the same decision", base, base, false},
		{"equal copies in other slices", base, with(func(d *decision) { d.choices[0].Serving = slices.Clone(prod) }), false},
		{"another revision", base, with(func(d *decision) { d.rev = 4 }), true},
		{"a server's health", base, with(func(d *decision) { d.health[1] = slum.HealthDead }), true},
		{"another serving copy", base, with(func(d *decision) { d.choices[0].Serving, d.choices[0].Spares = backup, prod }), true},
		{"a spare lost", base, with(func(d *decision) { d.choices[0].Spares = nil }), true},
		{"why nothing serves", base, with(func(d *decision) { d.choices[0].Reason = "its server s1 is dead" }), true},
		{"a tenant more", base, with(func(d *decision) { d.choices = append(d.choices, Choice{Tenant: "bob"}) }), true},
	} {
		if got := Changed(c.last, c.next); got != c.want {
			t.Errorf("%s: Changed = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDecidedRoutesTheServingCopies(t *testing.T) {
	servers := []slum.Server{{ID: "s1", URL: "http://s1", Domain: "s1.test"}, {ID: "s2", URL: "http://s2", Domain: "s2.test"}}
	tenants := []slum.Tenant{{ID: "alice", Domain: "alice.example.com"}}
	instances := []slum.Instance{{TenantID: "alice", ID: "prod", Process: "api", ServerID: "s1"}, {TenantID: "alice", ID: "backup", Process: "api", ServerID: "s2"}}
	d := decision{rev: 5, health: []slum.Health{slum.HealthDead, slum.HealthOnline}, choices: []Choice{{Tenant: "alice",
		Serving: []slum.CopyRef{{Instance: "prod", Server: "s1"}}, Spares: []slum.CopyRef{{Instance: "backup", Server: "s2"}}}}}
	tab := Decided(servers, tenants, instances, d)
	r, ok := tab.Lookup("alice.example.com")
	if tab.Revision() != 5 || !ok || len(r.Backends) != 0 || len(r.Spares) != 1 || r.Spares[0].Server != "s2" {
		t.Fatalf("route %+v (a copy on a dead server is never a backend)", r)
	}
}
