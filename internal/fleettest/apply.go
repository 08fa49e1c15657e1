package fleettest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/desired"
)

func ApplyNewServerNeedsAToken(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	noSource := "version: 1\nservers:\n  - id: s1\n    url: http://10.0.0.1:8080\n    capacity_mb: 100\n"
	before := snapshot(t, s)
	_, err := s.Apply(ctx, Source(t, parseFleet(t, noSource)), slum.ApplyOptions{})
	if !errors.Is(err, slum.ErrInvalid) || !strings.Contains(err.Error(), `fleet.yaml:3: servers[0] "s1": is a new server without a token: give token_env or token_file`) {
		t.Fatalf("a new server without a token: %v", err)
	}
	if snapshot(t, s) != before {
		t.Fatal("a rejected apply changed the database")
	}
	// Asked for explicitly, it is added without one.
	if _, err := s.Apply(ctx, Source(t, parseFleet(t, noSource+"    no_token: true\n")), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if srv, _ := s.GetServer(ctx, "s1"); srv.HasToken() {
		t.Fatal("no_token stored a token")
	}
	// An existing server keeps its token when the file names no source,
	// and no_token on an existing server removes it.
	if _, err := s.Apply(ctx, Source(t, parseFleet(t, noSource+"    token_env: TOK_S1\n")), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	plan, err := s.Apply(ctx, Source(t, parseFleet(t, noSource)), slum.ApplyOptions{})
	if err != nil || !plan.Empty() {
		t.Fatalf("no token source on an existing server: %v %v", err, plan)
	}
	if srv, _ := s.Store.GetServer(ctx, "s1"); srv.Token != "token-one" {
		t.Fatalf("token %q after an apply that names no source", srv.Token)
	}
	plan, err = s.Apply(ctx, Source(t, parseFleet(t, noSource+"    no_token: true\n")), slum.ApplyOptions{})
	if err != nil || len(plan.Changes) != 1 || plan.Changes[0].String() != "~ server s1 (token: (hidden) -> (none))" {
		t.Fatalf("no_token on a server with a token: %v %v", err, plan)
	}
}

func ApplyErrorsFromTheDatabaseNameTheEntry(t *testing.T, open Opener) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		setup func(slum.Fleet)
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
			setup: func(s slum.Fleet) {
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
			setup: func(s slum.Fleet) { mustTenant(t, s, "zed", "") },
			text:  "version: 1\ntenants:\n  - id: a\n    domain: a.com\n  - id: b\n    domain: zed.example.com\n",
			want:  "fleet.yaml:5: conflict: tenants b and zed would both have domain zed.example.com",
			class: slum.ErrConflict,
		},
		"cordoned server": {
			setup: func(s slum.Fleet) {
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
			s := open(t)
			if tc.setup != nil {
				tc.setup(s)
			}
			before := snapshot(t, s)
			for _, dry := range []bool{true, false} {
				_, err := s.Apply(ctx, Source(t, parseFleet(t, tc.text)), slum.ApplyOptions{DryRun: dry})
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

func PruneObeysTheRulesOfServerRemove(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Apply(ctx, Source(t, parseFleet(t, fleetYAML)), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	bob, _ := s.GetInstance(ctx, "bob:prod")
	// The controller runs bob:prod on s2: its ledger entry says so.
	lease, err := s.Store.AcquireLease(ctx, "controller", "test", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.RecordPlacements(ctx, lease.Fence(), []slum.Placement{{ServerID: bob.ServerID, Name: bob.TenementName(), TenantID: "bob", InstanceID: "prod"}}); err != nil {
		t.Fatal(err)
	}
	// A file without s2 and bob: pruning would delete s2 with the entry of
	// the copy still to stop there.
	text := strings.Replace(fleetYAML[:strings.Index(fleetYAML, "  - id: bob")], "  - id: s2\n    url: http://10.0.0.2:8080\n    region: eu\n    capacity_mb: 1000\n    token_file: s2.token\n", "", 1)
	text = strings.Replace(text, "memory_mb: 300\n      - id: backup", "memory_mb: 300\n        server: s1\n      - id: backup", 1)
	text = strings.Replace(text, "      - id: backup\n        process: api\n        memory_mb: 300\n", "", 1)
	before, beforeLedger := snapshot(t, s), ledger(t, s.Store)
	for _, opt := range []slum.ApplyOptions{{Prune: true, DryRun: true}, {Prune: true}, {Prune: true, AllowMassPrune: true}} {
		_, err := s.Apply(ctx, Source(t, parseFleet(t, text)), opt)
		if !errors.Is(err, slum.ErrConflict) || !strings.Contains(err.Error(), "prune server s2: conflict: the controller has yet to stop 1 instances it placed there") {
			t.Fatalf("%+v: %v", opt, err)
		}
	}
	if snapshot(t, s) != before || !reflect.DeepEqual(ledger(t, s.Store), beforeLedger) {
		t.Fatal("a refused prune changed the database or the ledger")
	}
	// Once the controller has stopped the copy, s2 may go.
	if err := s.Store.WriteReport(ctx, lease.Fence(), slum.Report{Forget: beforeLedger}); err != nil {
		t.Fatal(err)
	}
	plan, err := s.Apply(ctx, Source(t, parseFleet(t, text)), slum.ApplyOptions{Prune: true, AllowMassPrune: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetServer(ctx, "s2"); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("s2 after the prune: %v (%v)", err, plan.Changes)
	}
}

func MassPruneNeedsConfirmation(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Apply(ctx, Source(t, parseFleet(t, fleetYAML)), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s)
	empty := parseFleet(t, "version: 1\n")
	for _, dry := range []bool{true, false} {
		plan, err := s.Apply(ctx, Source(t, empty), slum.ApplyOptions{Prune: true, DryRun: dry})
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
	if _, err := s.Apply(ctx, Source(t, half), slum.ApplyOptions{Prune: true, DryRun: true}); err != nil {
		t.Fatalf("a prune of half the tenants: %v", err)
	}
	if _, err := s.Apply(ctx, Source(t, empty), slum.ApplyOptions{Prune: true, AllowMassPrune: true}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.ListServers(ctx); len(n) != 0 {
		t.Fatalf("servers left: %v", n)
	}
}

// TestDiffAndApplyAgree runs each file as a dry run and for real on two
// copies of one database: they must fail alike, or plan alike and the
// apply must then leave the database matching the file.
func DiffAndApplyAgree(t *testing.T, open Opener) {
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
			prepare := func() Subject {
				s := open(t)
				if _, err := s.Apply(ctx, Source(t, parseFleet(t, fleetYAML)), slum.ApplyOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, _, err := s.AddTenant(ctx, slum.Tenant{ID: "zed", Domain: "zed.example.com"}); err != nil {
					t.Fatal(err)
				}
				return s
			}
			diffStore, applyStore := prepare(), prepare()
			dry := tc.opt
			dry.DryRun = true
			diff, derr := diffStore.Apply(ctx, Source(t, parseFleet(t, tc.text)), dry)
			applied, aerr := applyStore.Apply(ctx, Source(t, parseFleet(t, tc.text)), tc.opt)
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
			again, err := applyStore.Apply(ctx, Source(t, parseFleet(t, tc.text)), dry)
			if err != nil || !again.Empty() {
				t.Fatalf("after the apply, the file still changes %v (%v)", again, err)
			}
		})
	}
}

func ApplyCreatesThenChangesNothing(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	f := parseFleet(t, fleetYAML)

	dry, err := s.Apply(ctx, Source(t, f), slum.ApplyOptions{Prune: false, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if c, u, d := dry.Counts(); c != 7 || u != 0 || d != 0 {
		t.Fatalf("diff counts %d %d %d: %v", c, u, d, dry.Changes)
	}
	if n, _ := s.ListServers(ctx); len(n) != 0 {
		t.Fatal("diff wrote to the database")
	}
	plan, err := s.Apply(ctx, Source(t, f), slum.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Summary() != "7 to create, 0 to update, 0 to delete" {
		t.Fatalf("summary %q", plan.Summary())
	}
	s1, _ := s.Store.GetServer(ctx, "s1") // the API never shows a token
	s2, _ := s.Store.GetServer(ctx, "s2")
	if s1.Token != "token-one" || s2.Token != "token-two" {
		t.Fatalf("tokens %q %q", s1.Token, s2.Token)
	}
	prod, _ := s.GetInstance(ctx, "alice:prod")
	backup, _ := s.GetInstance(ctx, "alice:backup")
	if prod.ServerID == backup.ServerID {
		t.Fatal("alice's prod and backup share a server")
	}
	bob, _ := s.GetInstance(ctx, "bob:prod")
	if bob.ServerID != "s2" || bob.Mode != slum.ModeOnDemand || bob.MemoryMB != slum.DefaultMemoryMB {
		t.Fatalf("bob:prod %+v", bob)
	}
	before := snapshot(t, s)
	again, err := s.Apply(ctx, Source(t, parseFleet(t, fleetYAML)), slum.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Empty() {
		t.Fatalf("second apply changes %v", again.Changes)
	}
	if snapshot(t, s) != before {
		t.Fatal("second apply wrote to the database")
	}
}

func ApplyUpdatesMovesAndPrunes(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Apply(ctx, Source(t, parseFleet(t, fleetYAML)), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	mustTenant(t, s, "carol", "") // not in the file
	prod, _ := s.GetInstance(ctx, "alice:prod")
	other := map[string]string{"s1": "s2", "s2": "s1"}
	backup, _ := s.GetInstance(ctx, "alice:backup")

	// Move alice:prod by naming a server: backup must move too (anti-affinity), drop bob.
	text := strings.Replace(fleetYAML, "      - id: prod\n        process: api\n        memory_mb: 300",
		"      - id: prod\n        process: api\n        memory_mb: 300\n        server: "+backup.ServerID, 1)
	text = strings.Replace(text, "      - id: backup\n        process: api\n        memory_mb: 300",
		"      - id: backup\n        process: api\n        memory_mb: 300\n        server: "+prod.ServerID, 1)
	text = text[:strings.Index(text, "  - id: bob")]
	f := parseFleet(t, text)

	plan, err := s.Apply(ctx, Source(t, f), slum.ApplyOptions{Prune: false, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if c, u, d := plan.Counts(); c != 0 || u != 2 || d != 0 || plan.Unlisted != 3 {
		t.Fatalf("diff without prune: %d %d %d unlisted %d: %v", c, u, d, plan.Unlisted, plan.Changes)
	}
	if !strings.Contains(plan.Changes[0].String(), "server: "+prod.ServerID+" -> "+backup.ServerID) ||
		!strings.Contains(plan.Changes[0].String(), "storage_persist") {
		t.Fatalf("move change reads %q", plan.Changes[0].String())
	}
	_ = other
	// The swap crosses anti-affinity mid-way; apply must still land it whole.
	if _, err := s.Apply(ctx, Source(t, f), slum.ApplyOptions{}); err != nil {
		t.Fatalf("apply swap: %v", err)
	}
	moved, _ := s.GetInstance(ctx, "alice:prod")
	if moved.ServerID != backup.ServerID || moved.Generation != prod.Generation+1 {
		t.Fatalf("alice:prod after apply: %+v", moved)
	}
	if _, err := s.GetTenant(ctx, "bob"); err != nil {
		t.Fatal("bob removed without --prune")
	}

	// bob and carol are two of the three tenants: most of them.
	before := snapshot(t, s)
	var mass *slum.MassPruneError
	if _, err := s.Apply(ctx, Source(t, f), slum.ApplyOptions{Prune: true}); !errors.As(err, &mass) || !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("a prune of most tenants: %v", err)
	}
	if snapshot(t, s) != before {
		t.Fatal("a refused prune changed the database")
	}
	pruned, err := s.Apply(ctx, Source(t, f), slum.ApplyOptions{Prune: true, AllowMassPrune: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, d := pruned.Counts(); d != 3 {
		t.Fatalf("prune deleted %d, want bob, bob:prod and carol: %v", d, pruned.Changes)
	}
	for _, id := range []string{"bob", "carol"} {
		if _, err := s.GetTenant(ctx, id); !errors.Is(err, slum.ErrNotFound) {
			t.Fatalf("%s after prune: %v", id, err)
		}
	}
}

func ApplyRejectsAndChangesNothing(t *testing.T, open Opener) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		text string
		want error
		msg  string
	}{
		"unknown server": {strings.Replace(fleetYAML, "server: s2", "server: s9", 1), slum.ErrInvalid, "fleet.yaml:27"},
		"over capacity": {strings.Replace(fleetYAML, "memory_mb: 300\n      - id: backup", "memory_mb: 900\n      - id: backup", 1) +
			"  - id: carol\n    domain: carol.example.com\n    instances:\n      - {id: prod, process: api, memory_mb: 900}\n      - {id: backup, process: api, memory_mb: 900}\n",
			slum.ErrNoCapacity, "no server can take"},
		"affinity": {strings.Replace(fleetYAML, "memory_mb: 300\n      - id: backup\n        process: api\n        memory_mb: 300",
			"memory_mb: 300\n        server: s1\n      - id: backup\n        process: api\n        memory_mb: 300\n        server: s1", 1), slum.ErrInvalid, "never share a server"},
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			mustTenant(t, s, "zed", "")
			before := snapshot(t, s)
			_, err := s.Apply(ctx, Source(t, parseFleet(t, tc.text)), slum.ApplyOptions{Prune: true})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("apply: %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
			if snapshot(t, s) != before {
				t.Fatal("a rejected apply changed the database")
			}
		})
	}
}

func ApplyDomainConflictWithUnlistedTenant(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	if _, _, err := s.AddTenant(ctx, slum.Tenant{ID: "zed", Domain: "alice.example.com"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Apply(ctx, Source(t, parseFleet(t, fleetYAML)), slum.ApplyOptions{})
	if !errors.Is(err, slum.ErrConflict) || !strings.Contains(err.Error(), "alice.example.com") {
		t.Fatalf("apply: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "fleet.yaml:14: ") {
		t.Fatalf("the conflict is not placed at alice's entry: %v", err)
	}
	// With --prune zed goes, so the domain is free.
	if _, err := s.Apply(ctx, Source(t, parseFleet(t, fleetYAML)), slum.ApplyOptions{Prune: true, AllowMassPrune: true}); err != nil {
		t.Fatalf("apply --prune: %v", err)
	}
}

// A failed-over instance stays where it runs when the file that declared
// it is applied again; the diff says why.
func ApplyDoesNotUndoAFailover(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	text := `version: 1
servers:
  - {id: s1, url: "http://10.0.0.1:8080", capacity_mb: 1000, no_token: true}
  - {id: s2, url: "http://10.0.0.2:8080", capacity_mb: 1000, no_token: true}
tenants:
  - {id: a, domain: a.example.com, instances: [{id: prod, process: api, server: s1}]}
`
	if _, err := s.Apply(ctx, Source(t, parseFleet(t, text)), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	lease, err := s.Store.AcquireLease(ctx, "controller", "test", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := s.GetInstance(ctx, "a:prod")
	before, err := s.Store.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Store.Reschedule(ctx, lease.Fence(), []slum.Reschedule{
		{TenantID: "a", InstanceID: "prod", From: "s1", To: "s2", Generation: in.Generation, Reason: "server s1 is dead"},
		{TenantID: "a", InstanceID: "prod", From: "s1", To: "s2", Generation: in.Generation + 7, Reason: "planned on a stale generation"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Moves) != 1 || len(res.Instances) != 1 || res.Instances[0].ServerID != "s2" || res.Revision != before.Revision+1 {
		t.Fatalf("reschedule: %+v, want the one move made, a:prod on s2, revision %d", res, before.Revision+1)
	}
	// The snapshot with the moved instances applied is what a fresh read
	// gives: the controller relies on it instead of reading again.
	patched, ok := before.WithInstances(res.Instances, res.Revision)
	after, err := s.Store.Snapshot(ctx)
	if err != nil || !ok || !reflect.DeepEqual(patched, after) {
		t.Fatalf("patched snapshot (ok %v)\n%+v\ndiffers from a fresh read (%v)\n%+v", ok, patched.Instances, err, after.Instances)
	}
	if before.Instances[0].ServerID != "s1" || before.Revision == res.Revision {
		t.Fatal("WithInstances changed the snapshot it was called on")
	}
	if _, ok := before.WithInstances([]slum.Instance{{TenantID: "zz", ID: "nope"}}, res.Revision); ok {
		t.Fatal("WithInstances accepted an instance the snapshot does not hold")
	}
	plan, err := s.Apply(ctx, Source(t, parseFleet(t, text)), slum.ApplyOptions{})
	if err != nil || !plan.Empty() || len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], "declared on s1 and failed over to s2: it stays there") {
		t.Fatalf("re-apply after a failover: %+v %v", plan, err)
	}
	if in, _ := s.GetInstance(ctx, "a:prod"); in.ServerID != "s2" || in.HomeServerID != "s1" {
		t.Fatalf("a:prod after the re-apply: %+v", in)
	}
	// Declaring it where it now runs makes that its home.
	plan, err = s.Apply(ctx, Source(t, parseFleet(t, strings.Replace(text, "server: s1", "server: s2", 1))), slum.ApplyOptions{})
	if err != nil || len(plan.Changes) != 1 || plan.Changes[0].Fields[0].Field != "home" {
		t.Fatalf("adopting the new server: %+v %v", plan, err)
	}
	if in, _ := s.GetInstance(ctx, "a:prod"); in.ServerID != "s2" || in.HomeServerID != "s2" {
		t.Fatalf("a:prod after adopting s2: %+v", in)
	}
}

func ApplySettings(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	f := parseFleet(t, "version: 1\nsettings:\n  probe_interval: 2s\n  dead_after: 5\n  failback: return\n")
	plan, err := s.Apply(ctx, Source(t, f), slum.ApplyOptions{})
	if err != nil || len(plan.Changes) != 1 || plan.Changes[0].Kind != "settings" || len(plan.Changes[0].Fields) != 3 {
		t.Fatalf("plan %+v %v", plan, err)
	}
	got, _ := s.Settings(ctx)
	want := slum.DefaultSettings()
	want.ProbeInterval, want.DeadAfter, want.Failback = 2*time.Second, 5, slum.FailbackReturn
	if got != want {
		t.Fatalf("settings %+v", got)
	}
	if plan, err := s.Apply(ctx, Source(t, f), slum.ApplyOptions{}); err != nil || !plan.Empty() {
		t.Fatalf("again: %+v %v", plan, err)
	}
	for text, msg := range map[string]string{
		"version: 1\nsettings: {dead_after: 0}\n":         "must be a positive integer",
		"version: 1\nsettings: {probe_interval: soon}\n":  "must be a duration",
		"version: 1\nsettings: {probe_interval: 1h}\n":    "must be between 100ms and 10m0s",
		"version: 1\nsettings: {failback: sometimes}\n":   "must be stay or return",
		"version: 1\nsettings: {probe_intervall: 1s}\n":   "did you mean probe_interval",
		"version: 1\nsettings: {partition_fraction: 2}\n": "more than 0 and at most 1",
	} {
		if _, err := desired.Parse("fleet.yaml", []byte(text)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", text, err, msg)
		}
	}
}
