package replica

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
)

func TestParseLocation(t *testing.T) {
	cases := []struct {
		in   string
		want Location // raw not compared
		bad  string   // part of the error, when refused
	}{
		{in: "s3://bkt/tenants/alice", want: Location{Bucket: "bkt", Path: "tenants/alice"}},
		{in: "s3://bkt/tenants/alice/?endpoint=http://127.0.0.1:8333&region=eu-1",
			want: Location{Bucket: "bkt", Path: "tenants/alice", Endpoint: "http://127.0.0.1:8333", Region: "eu-1"}},
		{in: "s3://bkt?endpoint=127.0.0.1:9000", want: Location{Bucket: "bkt", Endpoint: "http://127.0.0.1:9000"}},
		{in: "s3://bkt/p?endpoint=https://s3.example.test", want: Location{Bucket: "bkt", Path: "p", Endpoint: "https://s3.example.test"}},
		{in: "file:///var/replica", bad: "must be an s3:// URL"},
		{in: "s3:///path", bad: "names no bucket"},
		{in: "s3://AKIA:secret@bkt/p", bad: "must not carry credentials"},
		{in: "s3://bkt/a//b", bad: "empty or '..'"},
		{in: "s3://bkt/a/../b", bad: "empty or '..'"},
		{in: "s3://bkt/p?endpoint=ftp://x", bad: "http(s)://HOST"},
		{in: "s3://bkt/p?endpoint=http://x/sub", bad: "http(s)://HOST"},
		{in: "s3://bkt/p?sync-interval=1s", bad: "does not support"},
		// Of several unsupported options, the first in order, every time
		// (a map's order would pick one at random).
		{in: "s3://bkt/p?zz=1&mm=2&aa=3&endpoint=x", bad: `option "aa"`},
		{in: "s3://bkt/p?zz=1&mm=2&aa=3&endpoint=x", bad: `option "aa"`},
		{in: "s3://bkt/p?zz=1&mm=2&aa=3&endpoint=x", bad: `option "aa"`},
		{in: "s3://bkt/p?zz=1&mm=2&aa=3&endpoint=x", bad: `option "aa"`},
		{in: "s3://bkt/p\x7f", bad: "is not a URL"},
	}
	for _, c := range cases {
		got, err := ParseLocation(c.in)
		if c.bad != "" {
			if err == nil || !strings.Contains(err.Error(), c.bad) || !errors.Is(err, slum.ErrInvalid) {
				t.Errorf("%q: err %v, want ErrInvalid with %q", c.in, err, c.bad)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("%q: the error shows the secret: %v", c.in, err)
			}
			continue
		}
		got.raw = ""
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestLocationKeysAndTenants(t *testing.T) {
	l, _ := ParseLocation("s3://b/tenants/alice?endpoint=http://h:1")
	if l.Key("slum-lease") != "tenants/alice/slum-lease" || l.Canonical() != "s3://b/tenants/alice" || !l.Plain() {
		t.Fatalf("%s %s %v", l.Key("slum-lease"), l.Canonical(), l.Plain())
	}
	root, _ := ParseLocation("s3://b")
	if root.Key("slum-lease") != "slum-lease" {
		t.Fatal(root.Key("slum-lease"))
	}
	for id, tenant := range map[string]string{"alice--prod": "alice", "alice--backup": "alice", "bob": "bob", "--x": "--x", "a--b--c": "a"} {
		if got := TenantOf(id); got != tenant {
			t.Errorf("TenantOf(%q) = %q, want %q", id, got, tenant)
		}
	}
	if got := ExpandTenant("s3://b/tenants/{tenant}", "alice--backup"); got != "s3://b/tenants/alice" {
		t.Error(got)
	}
}

func TestCredentialsNeverShowTheSecret(t *testing.T) {
	env := map[string]string{"LITESTREAM_ACCESS_KEY_ID": "AK1", "LITESTREAM_SECRET_ACCESS_KEY": "s3cr3t-value"}
	c, err := CredentialsFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil || c.AccessKeyID != "AK1" || c.SecretAccessKey != "s3cr3t-value" {
		t.Fatalf("%v %v", c.AccessKeyID, err)
	}
	for _, s := range []string{c.String(), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		if strings.Contains(s, "s3cr3t") {
			t.Fatalf("the secret shows: %s", s)
		}
	}
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = "AK2", "other"
	if c, _ := CredentialsFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); c.AccessKeyID != "AK2" {
		t.Fatal("AWS_ACCESS_KEY_ID must win, as in Litestream")
	}
	if _, err := CredentialsFromEnv(func(string) (string, bool) { return "", false }); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("no credentials: %v", err)
	}
}

func FuzzParseLocation(f *testing.F) {
	f.Add("s3://bkt/tenants/alice?endpoint=http://127.0.0.1:8333&region=us-east-1")
	f.Add("s3://k:s@b/p")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLocation(s)
		if err != nil {
			if !errors.Is(err, slum.ErrInvalid) {
				t.Fatalf("%q: error %v is not ErrInvalid", s, err)
			}
			return
		}
		if l.Bucket == "" || strings.HasPrefix(l.Path, "/") || strings.HasSuffix(l.Path, "/") {
			t.Fatalf("%q: accepted as %+v", s, l)
		}
		if l.Endpoint != "" && !strings.HasPrefix(l.Endpoint, "http://") && !strings.HasPrefix(l.Endpoint, "https://") {
			t.Fatalf("%q: endpoint %q", s, l.Endpoint)
		}
	})
}
