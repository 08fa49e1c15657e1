package desired

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
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
		if err != nil && !errors.Is(err, slum.ErrInvalid) {
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
		in, why string // why "" when the URL is fine
	}{
		{"http://10.0.0.1:8080", ""}, {"https://ten.example.com", ""}, {"http://[::1]:8080", ""}, {"http://a/", ""},
		{"http://a:1", ""}, {"http://a:65535", ""}, {"http://localhost:8080", ""},
		{"", "must start with http"}, {"10.0.0.1:8080", "is not a URL"}, {"a.example.com:8080", "must start with http"}, {"ftp://a", "must start with http"},
		{"http://", "has no host"}, {"http://a/path", "no path"}, {"http://a?x=1", "no path, query"}, {"http://a?", "no path, query"},
		{"http://user:pw@a", "must not hold credentials"}, {"http://a:notaport", "is not a URL"}, {"http://a:99999", "has port 99999"},
		{"http://a:0", "has port 0"}, {"http://a:", "has an empty port"}, {"http://[::1]:", "has an empty port"},
		{"http://a_b:80", "neither an IP address nor a host name"}, {"http://Example.com", "neither an IP address nor a host name"},
		{"http:a", "has no host"},
	} {
		err := ValidateURL("url", tc.in)
		if (err == nil) != (tc.why == "") || (err != nil && !strings.Contains(err.Error(), tc.why)) {
			t.Errorf("ValidateURL(%q) = %v, want %q", tc.in, err, tc.why)
		}
	}
}

func TestRejectedURLsHideCredentials(t *testing.T) {
	for _, in := range []string{
		"http://admin:hunter2@a", "http://admin:hunter2@a/path", "https://hunter2@a:0", "hunter2@a", "ftp://x:hunter2@a",
		"http://x:hunter2@a@b", "http://a/hunter2@b", "a/b://x:hunter2@c", "http://x:hunter2@a\nb", "http:x:hunter2@a",
	} {
		err := ValidateURL("url", in)
		if err == nil {
			t.Fatalf("%q accepted", in)
		}
		if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "(hidden)@") {
			t.Errorf("ValidateURL(%q) = %v", in, err)
		}
	}
	if got := RedactURL("http://admin:pw@a:8080"); got != "http://(hidden)@a:8080" {
		t.Errorf("RedactURL = %q", got)
	}
	if got := RedactURL("http://a:8080"); got != "http://a:8080" {
		t.Errorf("RedactURL of a URL without credentials = %q", got)
	}
}

func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{"http://a:8080", "http://u:p@a", "https://[::1]:1/", "http://a:0", "http://a:", "x://y@z", "http://a?b#c"} {
		f.Add(s, "")
	}
	f.Add("http://u:", "@a")
	f.Fuzz(func(t *testing.T, prefix, suffix string) {
		for _, s := range []string{prefix + suffix, prefix + "SECRETPW@" + suffix} {
			err := ValidateURL("url", s)
			if err == nil {
				// What is accepted is a URL slum can use as it is.
				u, perr := url.Parse(s)
				if perr != nil || u.User != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
					t.Fatalf("ValidateURL accepted %q", s)
				}
				if p := u.Port(); p != "" {
					if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
						t.Fatalf("ValidateURL accepted %q with port %q", s, p)
					}
				}
				if validateServerDomain(DefaultDomain(s)) != nil {
					t.Fatalf("ValidateURL accepted %q, whose host is no server domain", s)
				}
				continue
			}
			if !errors.Is(err, slum.ErrInvalid) || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("ValidateURL(%q) = %v", s, err)
			}
			if strings.Contains(s, "SECRETPW@") && !strings.Contains(prefix+suffix, "SECRETPW") && strings.Contains(err.Error(), "SECRETPW") {
				t.Fatalf("ValidateURL(%q) shows the credentials: %v", s, err)
			}
		}
	})
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
