package desired

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"alice", true}, {"a", true}, {"a1-b2", true}, {strings.Repeat("a", 63), true},
		{"", false}, {strings.Repeat("a", 64), false}, {"Alice", false}, {"a_b", false}, {"a.b", false},
		{"../x", false}, {"-a", false}, {"a-", false}, {"a--b", false}, {"a b", false}, {"ä", false}, {"a/b", false},
	} {
		err := ValidateID("id", tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateID(%q) error %v is not ErrInvalid", tc.in, err)
		}
	}
}

func TestValidateDomain(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"example.com", true}, {"a.b.c", true}, {"localhost", true}, {"x--y.example.com", true},
		{"", false}, {"a..b", false}, {".a", false}, {"a.", false}, {"Example.com", false}, {"a_b.com", false},
		{"-a.com", false}, {strings.Repeat("a", 64) + ".com", false}, {strings.Repeat("abcdefg.", 32) + "com", false},
		{"a b.com", false}, {"http://a.com", false},
	} {
		err := ValidateDomain("domain", tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateDomain(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestValidateURL(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"http://10.0.0.1:8080", true}, {"https://ten.example.com", true}, {"http://[::1]:8080", true}, {"http://a/", true},
		{"", false}, {"10.0.0.1:8080", false}, {"ftp://a", false}, {"http://", false}, {"http://a/path", false},
		{"http://a?x=1", false}, {"http://user:pw@a", false}, {"http://a:notaport", false}, {"http://a:99999", false},
	} {
		err := ValidateURL("url", tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateURL(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestValidateTokenHidesValue(t *testing.T) {
	for _, tok := range []string{"secret value", "secret\nline", strings.Repeat("x", 5000), "secret\there", "sécret"} {
		err := ValidateToken(tok)
		if err == nil {
			t.Fatalf("token %q accepted", tok)
		}
		if strings.Contains(err.Error(), tok) {
			t.Errorf("error shows the token: %v", err)
		}
	}
	if err := ValidateToken("gKUC_ZlVUed4LU5uxLzU-YWr1o-DZ7B1cRz2Eo5jF2Q"); err != nil {
		t.Fatal(err)
	}
}

func TestTenementNameRoundTrip(t *testing.T) {
	for _, tc := range []struct{ process, tenant, instance string }{
		{"api", "alice", "prod"}, {"web", "a-b", "c"}, {"api", "a", "b-c"},
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
	for _, bad := range []string{"api", "api:alice", "api:alice--", "api:--prod", "API:a--b", "api:a--b--c", "api:../x--y", ":a--b", "api:a---b"} {
		if _, _, _, ok := ParseTenementName(bad); ok {
			t.Errorf("ParseTenementName(%q) accepted", bad)
		}
	}
}

func FuzzParseTenementName(f *testing.F) {
	for _, s := range []string{"api:alice--prod", "api:a--b", "x", ":", "api:a----b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, ten, in, ok := ParseTenementName(name)
		if !ok {
			return
		}
		if TenementName(p, ten, in) != name {
			t.Fatalf("%q parsed to %q %q %q, which names %q", name, p, ten, in, TenementName(p, ten, in))
		}
	})
}
