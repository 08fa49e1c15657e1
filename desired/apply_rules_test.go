package desired

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

func TestApplyNewServerNeedsAToken(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	noSource := "version: 1\nservers:\n  - id: s1\n    url: http://10.0.0.1:8080\n    capacity_mb: 100\n"
	before := snapshot(t, s)
	_, err := s.applyFile(ctx, parseFleet(t, noSource), slum.ApplyOptions{})
	if !errors.Is(err, slum.ErrInvalid) || !strings.Contains(err.Error(), `fleet.yaml:3: servers[0] "s1": is a new server without a token: give token_env or token_file`) {
		t.Fatalf("a new server without a token: %v", err)
	}
	if snapshot(t, s) != before {
		t.Fatal("a rejected apply changed the database")
	}
	// Asked for explicitly, it is added without one.
	if _, err := s.applyFile(ctx, parseFleet(t, noSource+"    no_token: true\n"), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if srv, _ := s.GetServer(ctx, "s1"); srv.HasToken() {
		t.Fatal("no_token stored a token")
	}
	// An existing server keeps its token when the file names no source,
	// and no_token on an existing server removes it.
	if _, err := s.applyFile(ctx, parseFleet(t, noSource+"    token_env: TOK_S1\n"), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	plan, err := s.applyFile(ctx, parseFleet(t, noSource), slum.ApplyOptions{})
	if err != nil || !plan.Empty() {
		t.Fatalf("no token source on an existing server: %v %v", err, plan)
	}
	if srv, _ := s.GetServer(ctx, "s1"); srv.Token != "token-one" {
		t.Fatalf("token %q after an apply that names no source", srv.Token)
	}
	plan, err = s.applyFile(ctx, parseFleet(t, noSource+"    no_token: true\n"), slum.ApplyOptions{})
	if err != nil || len(plan.Changes) != 1 || plan.Changes[0].String() != "~ server s1 (token: (hidden) -> (none))" {
		t.Fatalf("no_token on a server with a token: %v %v", err, plan)
	}
}

func TestApplyErrorsFromTheDatabaseNameTheEntry(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		setup func(*Store)
		text  string
		want  string
		class error
	}{
		"no room to place": {
			text:  "version: 1\nservers:\n  - {id: s1, url: 'http://a', capacity_mb: 100, token_env: TOK_S1}\ntenants:\n  - id: a\n    domain: a.com\n    instances:\n      - {id: p, process: api, memory_mb: 500}\n",
			want:  "fleet.yaml:8: place a:p: no capacity",
			class: slum.ErrNoCapacity,
		},
		"capacity below use": {
			setup: func(s *Store) {
				mustServer(t, s, "s1", "", 1000)
				mustTenant(t, s, "a", "")
				if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "a", ID: "p", Process: "api", MemoryMB: 500}); err != nil {
					t.Fatal(err)
				}
			},
			text:  "version: 1\nservers:\n  - id: s1\n    url: http://s1.test:8080\n    capacity_mb: 100\n",
			want:  "fleet.yaml:3: no capacity: more instances than capacity_mb allows on s1 (500 MB of 100 MB)",
			class: slum.ErrNoCapacity,
		},
		"domain of an unlisted tenant": {
			setup: func(s *Store) { mustTenant(t, s, "zed", "") },
			text:  "version: 1\ntenants:\n  - id: a\n    domain: a.com\n  - id: b\n    domain: zed.example.com\n",
			want:  "fleet.yaml:5: conflict: tenants b and zed would both have domain zed.example.com",
			class: slum.ErrConflict,
		},
		"cordoned server": {
			setup: func(s *Store) {
				mustServer(t, s, "s1", "", 1000)
				if _, err := s.SetServerState(ctx, "s1", slum.ServerCordoned); err != nil {
					t.Fatal(err)
				}
				mustTenant(t, s, "a", "")
			},
			text:  "version: 1\ntenants:\n  - id: a\n    domain: a.example.com\n    instances:\n      - {id: p, process: api, server: s1}\n",
			want:  `fleet.yaml:6: instance a:p server "s1": is cordoned`,
			class: slum.ErrInvalid,
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := openStore(t)
			if tc.setup != nil {
				tc.setup(s)
			}
			before := snapshot(t, s)
			for _, dry := range []bool{true, false} {
				_, err := s.applyFile(ctx, parseFleet(t, tc.text), slum.ApplyOptions{DryRun: dry})
				if !errors.Is(err, tc.class) || !strings.HasPrefix(err.Error(), tc.want) {
					t.Fatalf("dry run %v: %v, want %v starting %q", dry, err, tc.class, tc.want)
				}
			}
			if snapshot(t, s) != before {
				t.Fatal("a rejected apply changed the database")
			}
		})
	}
}

// ledger is the ownership ledger, to show a rejected prune left it alone.
func ledger(t *testing.T, s *Store) []slum.Placement {
	t.Helper()
	ps, err := s.ListPlacements(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestPruneObeysTheRulesOfServerRemove(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.applyFile(ctx, parseFleet(t, fleetYAML), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	bob, _ := s.GetInstance(ctx, "bob:prod")
	// The controller runs bob:prod on s2: its ledger entry says so.
	lease, err := s.AcquireLease(ctx, "controller", "test", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordPlacements(ctx, lease.Fence(), []slum.Placement{{ServerID: bob.ServerID, Name: bob.TenementName(), TenantID: "bob", InstanceID: "prod"}}); err != nil {
		t.Fatal(err)
	}
	// A file without s2 and bob: pruning would delete s2 with the entry of
	// the copy still to stop there.
	text := strings.Replace(fleetYAML[:strings.Index(fleetYAML, "  - id: bob")], "  - id: s2\n    url: http://10.0.0.2:8080\n    region: eu\n    capacity_mb: 1000\n    token_file: s2.token\n", "", 1)
	text = strings.Replace(text, "memory_mb: 300\n      - id: backup", "memory_mb: 300\n        server: s1\n      - id: backup", 1)
	text = strings.Replace(text, "      - id: backup\n        process: api\n        memory_mb: 300\n", "", 1)
	before, beforeLedger := snapshot(t, s), ledger(t, s)
	for _, opt := range []slum.ApplyOptions{{Prune: true, DryRun: true}, {Prune: true}, {Prune: true, AllowMassPrune: true}} {
		_, err := s.applyFile(ctx, parseFleet(t, text), opt)
		if !errors.Is(err, slum.ErrConflict) || !strings.Contains(err.Error(), "prune server s2: conflict: the controller has yet to stop 1 instances it placed there") {
			t.Fatalf("%+v: %v", opt, err)
		}
	}
	if snapshot(t, s) != before || !reflect.DeepEqual(ledger(t, s), beforeLedger) {
		t.Fatal("a refused prune changed the database or the ledger")
	}
	// Once the controller has stopped the copy, s2 may go.
	if err := s.WriteReport(ctx, lease.Fence(), slum.Report{Forget: beforeLedger}); err != nil {
		t.Fatal(err)
	}
	plan, err := s.applyFile(ctx, parseFleet(t, text), slum.ApplyOptions{Prune: true, AllowMassPrune: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetServer(ctx, "s2"); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("s2 after the prune: %v (%v)", err, plan.Changes)
	}
}

func TestMassPruneNeedsConfirmation(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.applyFile(ctx, parseFleet(t, fleetYAML), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s)
	empty := parseFleet(t, "version: 1\n")
	for _, dry := range []bool{true, false} {
		plan, err := s.applyFile(ctx, empty, slum.ApplyOptions{Prune: true, DryRun: dry})
		var mass *slum.MassPruneError
		if !errors.As(err, &mass) || !errors.Is(err, slum.ErrConflict) {
			t.Fatalf("dry run %v: %v", dry, err)
		}
		want := "pruning with fleet.yaml would delete most of the fleet: 2 of 2 servers, 2 of 2 tenants, 3 of 3 instances"
		if err.Error() != want {
			t.Fatalf("message %q, want %q", err, want)
		}
		if plan == nil || plan.Summary() != "0 to create, 0 to update, 7 to delete" {
			t.Fatalf("the refused plan: %v", plan)
		}
	}
	if snapshot(t, s) != before {
		t.Fatal("a refused prune changed the database")
	}
	// Half is not most: dropping one of two tenants needs no confirmation.
	half := parseFleet(t, fleetYAML[:strings.Index(fleetYAML, "  - id: bob")])
	if _, err := s.applyFile(ctx, half, slum.ApplyOptions{Prune: true, DryRun: true}); err != nil {
		t.Fatalf("a prune of half the tenants: %v", err)
	}
	if _, err := s.applyFile(ctx, empty, slum.ApplyOptions{Prune: true, AllowMassPrune: true}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.ListServers(ctx); len(n) != 0 {
		t.Fatalf("servers left: %v", n)
	}
}

// TestDiffAndApplyAgree runs each file as a dry run and for real on two
// copies of one database: they must fail alike, or plan alike and the
// apply must then leave the database matching the file.
func TestDiffAndApplyAgree(t *testing.T) {
	ctx := context.Background()
	small := fleetYAML[:strings.Index(fleetYAML, "  - id: bob")]
	for name, tc := range map[string]struct {
		text string
		opt  slum.ApplyOptions
	}{
		"create":             {fleetYAML, slum.ApplyOptions{}},
		"prune half":         {small, slum.ApplyOptions{Prune: true}},
		"prune all":          {"version: 1\n", slum.ApplyOptions{Prune: true}},
		"prune all, allowed": {"version: 1\n", slum.ApplyOptions{Prune: true, AllowMassPrune: true}},
		"no room":            {strings.Replace(fleetYAML, "memory_mb: 300", "memory_mb: 3000", 1), slum.ApplyOptions{}},
		"move and resize": {strings.Replace(strings.Replace(fleetYAML, "server: s2", "server: s1", 1), "capacity_mb: 1000\n    token_env", "capacity_mb: 2000\n    token_env", 1),
			slum.ApplyOptions{Prune: true}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			base := filepath.Join(dir, "base.db")
			st, err := Open(ctx, base)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.applyFile(ctx, parseFleet(t, fleetYAML), slum.ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := st.AddTenant(ctx, slum.Tenant{ID: "zed", Domain: "zed.example.com"}); err != nil {
				t.Fatal(err)
			}
			st.Close()
			data, err := os.ReadFile(base)
			if err != nil {
				t.Fatal(err)
			}
			open := func(name string) *Store {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
				s, err := Open(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			diffStore, applyStore := open("diff.db"), open("apply.db")
			dry := tc.opt
			dry.DryRun = true
			diff, derr := diffStore.applyFile(ctx, parseFleet(t, tc.text), dry)
			applied, aerr := applyStore.applyFile(ctx, parseFleet(t, tc.text), tc.opt)
			if (derr == nil) != (aerr == nil) || (derr != nil && derr.Error() != aerr.Error()) {
				t.Fatalf("diff says %v, apply says %v", derr, aerr)
			}
			if (diff == nil) != (applied == nil) || (diff != nil && !reflect.DeepEqual(diff.Changes, applied.Changes)) {
				t.Fatalf("diff plans %v, apply did %v", diff, applied)
			}
			if aerr != nil {
				return
			}
			// What apply did is what it said: the file again is no change.
			again, err := applyStore.applyFile(ctx, parseFleet(t, tc.text), dry)
			if err != nil || !again.Empty() {
				t.Fatalf("after the apply, the file still changes %v (%v)", again, err)
			}
		})
	}
}

func TestLoadNeedsTheVersion(t *testing.T) {
	_, err := Load("fleet.yaml", strings.NewReader("# no version\nservers: []\ntenants: []\n"), "", nil)
	if !errors.Is(err, slum.ErrInvalid) || err.Error() != "fleet.yaml:1: version: is missing: a fleet file starts with version: 1" {
		t.Fatalf("a file without its version: %v", err)
	}
	path := filepath.Join(t.TempDir(), "f.yaml")
	if err := os.WriteFile(path, []byte("tenants: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path); !errors.Is(err, slum.ErrInvalid) || !strings.Contains(err.Error(), "version: is missing") {
		t.Fatalf("LoadFile of a file without its version: %v", err)
	}
}

func TestLoadFromAReader(t *testing.T) {
	f, err := Load("stdin", strings.NewReader(fleetYAML), t.TempDir(), func(k string) (string, bool) { return "tok-" + k, true })
	if err == nil || !strings.Contains(err.Error(), `stdin:12: servers[1].token_file "s2.token": cannot be read`) {
		t.Fatalf("a relative token file that is not there: %v %v", f, err)
	}
}

func TestEncodeWritesWhatParses(t *testing.T) {
	// Policies that are not the defaults, and a settings block.
	text := strings.Replace(fleetYAML, "    region: eu\n    instances:", "    region: eu\n    failover: none\n    serving: all\n    instances:", 1) +
		"settings:\n  dead_after: 5\n  failback: return\n"
	f, err := Parse("fleet.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if f.Tenants[0].Failover != slum.FailoverNone || f.Tenants[0].Serving != slum.ServingAll || f.Settings == nil {
		t.Fatalf("the test's fleet: %+v %+v", f.Tenants[0].Tenant, f.Settings)
	}
	f.Servers[0].SetURL("http://10.9.9.9:9/")
	f.Servers[1].TokenFile, f.Servers[1].TokenEnv = "", ""
	f.Servers[1].NoToken = true
	var out bytes.Buffer
	if err := f.Encode(&out); err != nil {
		t.Fatal(err)
	}
	again, err := Parse("fleet.yaml", out.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, out.Bytes())
	}
	if !reflect.DeepEqual(withoutLines(f), withoutLines(again)) {
		t.Fatalf("round trip changed the fleet:\n%s", out.Bytes())
	}
	if again.Settings == nil || again.Settings.Over(slum.DefaultSettings()) != f.Settings.Over(slum.DefaultSettings()) {
		t.Fatalf("round trip changed the settings:\n%s", out.Bytes())
	}
	if again.Servers[0].URL != "http://10.9.9.9:9" || again.Servers[0].Domain != "10.9.9.9" {
		t.Fatalf("SetURL: %+v", again.Servers[0])
	}
	// A token without a source cannot be written.
	f.Servers[0].TokenEnv, f.Servers[0].Token = "", "secret"
	if err := f.Encode(&out); !errors.Is(err, slum.ErrInvalid) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("a token without a source: %v", err)
	}
}

func TestOpenRefusesWhatIsNotAFleet(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if _, err := OpenExisting(ctx, missing); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("OpenExisting of a missing file: %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("OpenExisting created the file")
	}
	text := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(text, []byte(fleetYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, open := range []func(context.Context, string) (*Store, error){Open, OpenExisting} {
		if _, err := open(ctx, text); !errors.Is(err, slum.ErrInvalid) || !strings.Contains(err.Error(), "not a slum database") {
			t.Fatalf("a YAML file as the database: %v", err)
		}
	}
	if data, _ := os.ReadFile(text); string(data) != fleetYAML {
		t.Fatal("the refused file changed")
	}
	s, err := Open(ctx, missing)
	if err != nil || !s.Created() {
		t.Fatalf("Open of a missing file: %v, created %v", err, s != nil && s.Created())
	}
	s.Close()
	s, err = OpenExisting(ctx, missing)
	if err != nil || s.Created() {
		t.Fatalf("OpenExisting of a fleet: %v", err)
	}
	s.Close()
}
