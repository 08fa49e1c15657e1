package routes

import "testing"

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
