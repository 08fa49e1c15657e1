package litestream

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/replica"
)

func TestCheckConfig(t *testing.T) {
	loc, _ := replica.ParseLocation("s3://b/tenants/alice?endpoint=http://127.0.0.1:1")
	db := "/srv/data/app/alice--prod/app.db"
	shipped, err := os.ReadFile("../examples/replicated/litestream.yml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, yml, bad string
	}{
		{"the recipe's config", string(shipped), ""},
		{"literal values", "dbs:\n  - path: " + db + "\n    replicas:\n      - url: " + loc.String() + "\n", ""},
		{"another database", "dbs:\n  - path: /srv/other.db\n    replica:\n      url: ${SLUM_GUARD_REPLICA}\n", "not the guarded database"},
		{"another replica", "dbs:\n  - path: ${SLUM_GUARD_DB}\n    replica:\n      url: s3://b/tenants/bob\n", "exactly one replica"},
		{"two replicas", "dbs:\n  - path: ${SLUM_GUARD_DB}\n    replicas:\n      - url: ${SLUM_GUARD_REPLICA}\n      - url: file:///backup\n", "exactly one replica"},
		{"two databases", "dbs:\n  - path: ${SLUM_GUARD_DB}\n  - path: /x.db\n", "exactly one database"},
		{"no databases", "addr: :9090\n", "exactly one database"},
		{"not YAML", "dbs: [\n", "not valid YAML"},
	}
	for _, c := range cases {
		p := filepath.Join(t.TempDir(), "litestream.yml")
		os.WriteFile(p, []byte(c.yml), 0o644)
		err := CheckConfig(p, db, loc, []string{"HOME=/root"})
		if c.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.bad) || !errors.Is(err, slum.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid with %q", c.name, err, c.bad)
		}
	}
	if err := CheckConfig("/nonexistent/litestream.yml", db, loc, nil); !errors.Is(err, slum.ErrInvalid) {
		t.Errorf("missing file: %v", err)
	}
}

func TestChildEnv(t *testing.T) {
	plain, _ := replica.ParseLocation("s3://b/p?endpoint=http://127.0.0.1:1")
	tls, _ := replica.ParseLocation("s3://b/p?endpoint=https://s3.example.test")
	in := []string{"AWS_CA_BUNDLE=/etc/ca.pem", "SLUM_GUARD_DB=/old", "PATH=/bin"}
	got := ChildEnv(in, "/data/app.db", plain)
	if slices.Contains(got, "AWS_CA_BUNDLE=/etc/ca.pem") || slices.Contains(got, "SLUM_GUARD_DB=/old") ||
		!slices.Contains(got, "SLUM_GUARD_DB=/data/app.db") || !slices.Contains(got, "SLUM_GUARD_REPLICA="+plain.String()) || !slices.Contains(got, "PATH=/bin") {
		t.Fatalf("plain endpoint: %v", got)
	}
	if got := ChildEnv(in, "/data/app.db", tls); !slices.Contains(got, "AWS_CA_BUNDLE=/etc/ca.pem") {
		t.Fatalf("a TLS endpoint keeps the CA bundle: %v", got)
	}
}

func TestCommands(t *testing.T) {
	loc, _ := replica.ParseLocation("s3://b/p")
	r := Runner{Bin: "/bin/litestream", DB: "/d/app.db", Replica: loc}
	if got := strings.Join(r.Restore().Args[1:], " "); got != "restore -if-replica-exists -o /d/app.db s3://b/p" {
		t.Error(got)
	}
	if got := strings.Join(r.Replicate().Args[1:], " "); got != "replicate /d/app.db s3://b/p" {
		t.Error(got)
	}
	r.Config = "/etc/ls.yml"
	if got := strings.Join(r.Restore().Args[1:], " "); got != "restore -config /etc/ls.yml -if-replica-exists /d/app.db" {
		t.Error(got)
	}
	if got := strings.Join(r.SyncOnce().Args[1:], " "); got != "replicate -config /etc/ls.yml -once" {
		t.Error(got)
	}
}
