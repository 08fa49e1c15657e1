package names

import (
	"regexp"
	"strings"
	"testing"
)

// The rules restated as regular expressions: an independent oracle for the
// table tests and the fuzzers.
var (
	labelRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	domainRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	digitsRE = regexp.MustCompile(`(^|\.)[0-9]+$`)
)

func oracleLabel(s string) bool { return labelRE.MatchString(s) }
func oracleID(s string) bool    { return oracleLabel(s) && !strings.Contains(s, "--") }
func oracleDomain(s string) bool {
	return len(s) <= MaxDomain && domainRE.MatchString(s) && !digitsRE.MatchString(s)
}

func TestLabelAndID(t *testing.T) {
	for _, tc := range []struct {
		in        string
		label, id bool
	}{
		{"alice", true, true}, {"a", true, true}, {"0", true, true}, {"a1-b2", true, true},
		{strings.Repeat("a", 63), true, true}, {"a--b", true, false}, {"x---y", true, false},
		{"", false, false}, {strings.Repeat("a", 64), false, false}, {"Alice", false, false}, {"a_b", false, false},
		{"a.b", false, false}, {"../x", false, false}, {"-a", false, false}, {"a-", false, false}, {"a b", false, false},
		{"ä", false, false}, {"a/b", false, false}, {"a\nb", false, false}, {"a:b", false, false},
	} {
		if got := LabelProblem(tc.in) == ""; got != tc.label {
			t.Errorf("LabelProblem(%q) = %q, want ok=%v", tc.in, LabelProblem(tc.in), tc.label)
		}
		if got := IDProblem(tc.in) == ""; got != tc.id {
			t.Errorf("IDProblem(%q) = %q, want ok=%v", tc.in, IDProblem(tc.in), tc.id)
		}
	}
}

func TestDomain(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"example.com", true}, {"a.b.c", true}, {"localhost", true}, {"x--y.example.com", true}, {"1.example.com", true},
		{"3com.example", true}, {"example.c0m", true},
		{"", false}, {"a..b", false}, {".a", false}, {"a.", false}, {"Example.com", false}, {"a_b.com", false},
		{"-a.com", false}, {strings.Repeat("a", 64) + ".com", false}, {strings.Repeat("abcdefg.", 32) + "com", false},
		{"a b.com", false}, {"http://a.com", false}, {"10.0.0.1", false}, {"192.168.1.1", false}, {"a.123", false},
		{"8080", false}, {"a\n.com", false},
	} {
		p := DomainProblem(tc.in)
		if (p == "") != tc.ok {
			t.Errorf("DomainProblem(%q) = %q, want ok=%v", tc.in, p, tc.ok)
		}
		if strings.Contains(p, "\n") {
			t.Errorf("DomainProblem(%q) = %q splits a message", tc.in, p)
		}
	}
}

func TestTenementNameRoundTrip(t *testing.T) {
	for _, tc := range []struct{ process, tenant, instance string }{
		{"api", "alice", "prod"}, {"web", "a-b", "c"}, {"api", "a", "b-c"}, {"p", strings.Repeat("t", 30), strings.Repeat("i", 31)},
	} {
		name := TenementName(tc.process, tc.tenant, tc.instance)
		p, ten, in, ok := ParseTenementName(name)
		if !ok || p != tc.process || ten != tc.tenant || in != tc.instance {
			t.Errorf("ParseTenementName(%q) = %q %q %q %v", name, p, ten, in, ok)
		}
	}
	// Ids cannot hold "--", so different tenants' instances never collide:
	// "a-b"+"c" and "a"+"b-c" are distinct names.
	if TenementID("a-b", "c") == TenementID("a", "b-c") {
		t.Fatal("collision")
	}
	for _, bad := range []string{"api", "api:alice", "api:alice--", "api:--prod", "API:a--b", "api:a--b--c", "api:../x--y",
		":a--b", "api:a---b", "api:" + strings.Repeat("t", 31) + "--" + strings.Repeat("i", 31)} {
		if _, _, _, ok := ParseTenementName(bad); ok {
			t.Errorf("ParseTenementName(%q) accepted", bad)
		}
	}
	if p := TenementIDProblem(strings.Repeat("t", 31), strings.Repeat("i", 31)); !strings.Contains(p, "longer than 63") {
		t.Errorf("an over-long tenement id: %q", p)
	}
}

func FuzzLabel(f *testing.F) {
	for _, s := range []string{"alice", "a--b", "-a", "a-", "", strings.Repeat("a", 63), strings.Repeat("a", 64), "A", "a_b", "ä"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := LabelProblem(s) == "", oracleLabel(s); got != want {
			t.Fatalf("LabelProblem(%q) = %q, oracle says ok=%v", s, LabelProblem(s), want)
		}
		if got, want := IDProblem(s) == "", oracleID(s); got != want {
			t.Fatalf("IDProblem(%q) = %q, oracle says ok=%v", s, IDProblem(s), want)
		}
	})
}

func FuzzDomain(f *testing.F) {
	for _, s := range []string{"example.com", "a..b", "10.0.0.1", "a.1b", "localhost", "Example.com", strings.Repeat("a.", 127) + "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := DomainProblem(s)
		if got, want := p == "", oracleDomain(s); got != want {
			t.Fatalf("DomainProblem(%q) = %q, oracle says ok=%v", s, p, want)
		}
		if strings.ContainsAny(p, "\n\r") {
			t.Fatalf("DomainProblem(%q) = %q: a raw line break", s, p)
		}
	})
}

func FuzzTenementName(f *testing.F) {
	f.Add("api", "alice", "prod")
	f.Add("api", "a-b", "c")
	f.Add("api", "a", "-b")
	f.Add("a:b", "c", "d")
	f.Add("api", "a--b", "c")
	f.Fuzz(func(t *testing.T, process, tenant, instance string) {
		// Names slum makes parse back to their parts.
		name := TenementName(process, tenant, instance)
		valid := oracleLabel(process) && oracleID(tenant) && oracleID(instance) && len(tenant)+2+len(instance) <= MaxLabel
		p, ten, in, ok := ParseTenementName(name)
		if ok != valid {
			t.Fatalf("ParseTenementName(%q) ok=%v, but the parts are valid=%v", name, ok, valid)
		}
		if ok && (p != process || ten != tenant || in != instance) {
			t.Fatalf("ParseTenementName(%q) = %q %q %q", name, p, ten, in)
		}
		// The split every action uses gives the parts of a valid name.
		if sp, id := SplitTenementName(name); valid && (sp != process || id != TenementID(tenant, instance)) {
			t.Fatalf("SplitTenementName(%q) = %q %q", name, sp, id)
		}
		// Whatever parses is exactly what slum would have made of its parts.
		raw := process + tenant + instance
		if p, ten, in, ok := ParseTenementName(raw); ok && TenementName(p, ten, in) != raw {
			t.Fatalf("%q parsed to %q %q %q, which names %q", raw, p, ten, in, TenementName(p, ten, in))
		}
	})
}
