package rebalance

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

func srv(id, region string, takes bool) Server {
	return Server{ID: id, Region: region, CapacityMB: 2048, Takes: takes, Online: true}
}

func cp(key, server, region string, serving bool) Copy {
	return Copy{Key: slum.InstanceKey(key), Process: "api", Server: server, MemoryMB: 256, Region: region, Serving: serving}
}

func show(ms []Move) string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s:%s>%s", m.Instance, m.From, m.To))
	}
	return strings.Join(out, " ")
}

func TestPlan(t *testing.T) {
	three := []Server{srv("s1", "eu", true), srv("s2", "eu", true), srv("s3", "eu", true)}
	lopsided := []Copy{cp("a:prod", "s1", "eu", true), cp("a:backup", "s2", "eu", false), cp("b:prod", "s1", "eu", true),
		cp("c:prod", "s1", "eu", true), cp("d:prod", "s2", "eu", true), cp("e:prod", "s1", "eu", true)}
	for _, tc := range []struct {
		name    string
		servers []Server
		copies  []Copy
		max     int
		want    string
	}{
		{"even already: nothing", three, []Copy{cp("a:prod", "s1", "eu", true), cp("b:prod", "s2", "eu", true), cp("c:prod", "s3", "eu", true)}, 10, ""},
		{"lopsided: off the fullest onto the empty server", three, lopsided, 10, "a:prod:s1>s3 b:prod:s1>s3"},
		{"at most max moves", three, lopsided, 1, "a:prod:s1>s3"},
		{"a spare before a serving copy that does as well", []Server{srv("s1", "eu", true), srv("s2", "eu", true)},
			[]Copy{cp("a:prod", "s1", "eu", true), cp("b:spare", "s1", "eu", false)}, 10, "b:spare:s1>s2"},
		{"never onto a server that takes nothing", []Server{srv("s1", "eu", true), srv("s2", "eu", true), srv("s3", "eu", false)}, lopsided, 10,
			"b:prod:s1>s2"},
		{"never beside another copy of the tenant's process", []Server{srv("s1", "eu", true), srv("s2", "eu", true)},
			[]Copy{cp("a:prod", "s1", "eu", true), cp("a:backup", "s1", "eu", false), cp("a:third", "s1", "eu", false), cp("b:prod", "s2", "eu", true)}, 10,
			"a:backup:s1>s2"},
		{"the tenant's region first: not out of it", []Server{srv("s1", "eu", true), srv("s2", "us", true)},
			[]Copy{cp("a:prod", "s1", "eu", true), cp("b:prod", "s1", "eu", true), cp("c:prod", "s1", "", true)}, 10,
			"c:prod:s1>s2"},
		{"a copy out of its region may come home", []Server{srv("s1", "eu", true), srv("s2", "us", true), srv("s3", "eu", true)},
			[]Copy{cp("a:prod", "s2", "eu", true), cp("b:prod", "s2", "us", true), cp("c:prod", "s1", "eu", true)}, 10,
			"a:prod:s2>s3"},
		{"nothing moves off a server not online", []Server{{ID: "s1", Region: "eu", CapacityMB: 2048}, srv("s2", "eu", true)},
			[]Copy{cp("a:prod", "s1", "eu", true), cp("b:prod", "s1", "eu", true)}, 10, ""},
		{"never beyond capacity", []Server{srv("s1", "eu", true), {ID: "s2", Region: "eu", CapacityMB: 200, Takes: true, Online: true}},
			[]Copy{cp("a:prod", "s1", "eu", true), cp("b:prod", "s1", "eu", true)}, 10, ""},
		{"memory counts: a big copy and small ones", []Server{srv("s1", "eu", true), srv("s2", "eu", true)},
			[]Copy{{Key: "a:prod", Process: "api", Server: "s1", MemoryMB: 1024, Serving: true},
				{Key: "b:prod", Process: "api", Server: "s1", MemoryMB: 128, Serving: true},
				{Key: "c:prod", Process: "api", Server: "s2", MemoryMB: 128, Serving: true}}, 10,
			"b:prod:s1>s2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Servers: tc.servers, Copies: tc.copies}
			moves := Plan(in, tc.max)
			if got := show(moves); got != tc.want {
				t.Fatalf("moves %q, want %q", got, tc.want)
			}
			if len(moves) > 0 && Cost(Apply(in, moves)) >= Cost(in) {
				t.Fatal("the plan did not even the fleet out")
			}
		})
	}
}

func TestServers(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ss := []slum.Server{{ID: "ok", State: slum.ServerActive}, {ID: "cordoned", State: slum.ServerCordoned},
		{ID: "draining", State: slum.ServerDraining}, {ID: "dead", State: slum.ServerActive},
		{ID: "back", State: slum.ServerActive}, {ID: "fencing", State: slum.ServerActive}, {ID: "home", State: slum.ServerActive}}
	hour := now.Add(-time.Hour)
	status := []slum.ServerStatus{{ServerID: "ok", Health: slum.HealthOnline, HealthSince: hour},
		{ServerID: "cordoned", Health: slum.HealthOnline, HealthSince: hour}, {ServerID: "draining", Health: slum.HealthOnline, HealthSince: hour},
		{ServerID: "dead", Health: slum.HealthDead, HealthSince: hour}, {ServerID: "back", Health: slum.HealthOnline, HealthSince: now.Add(-5 * time.Second)},
		{ServerID: "fencing", Health: slum.HealthOnline, HealthSince: hour, Failover: slum.FailoverFencing},
		{ServerID: "home", Health: slum.HealthOnline, HealthSince: hour, Failover: slum.FailoverDone}}
	var got []string
	for _, s := range Servers(ss, status, now, 30*time.Second) {
		got = append(got, fmt.Sprintf("%s=%v", s.ID, s.Takes))
	}
	if g := strings.Join(got, " "); g != "ok=true cordoned=false draining=false dead=false back=false fencing=false home=true" {
		t.Fatal(g)
	}
}

// randomFleet is a fleet of a few servers in two regions, some taking
// nothing, with copies placed anywhere (lopsided on purpose).
func randomFleet(r *rand.Rand) Input {
	var in Input
	ns := 2 + r.IntN(5)
	for i := range ns {
		in.Servers = append(in.Servers, Server{ID: fmt.Sprintf("s%d", i), Region: []string{"eu", "us"}[r.IntN(2)],
			CapacityMB: int64(512 * (1 + r.IntN(4))), Takes: r.IntN(5) > 0, Online: r.IntN(6) > 0})
	}
	used := map[string]int64{}
	for tn := range 1 + r.IntN(8) {
		region := []string{"eu", "us", ""}[r.IntN(3)]
		for ci := range 1 + r.IntN(3) {
			s := in.Servers[r.IntN(min(ns, 1+r.IntN(2)))] // mostly the first servers
			mem := int64(64 * (1 + r.IntN(4)))
			if used[s.ID]+mem > s.CapacityMB {
				continue
			}
			used[s.ID] += mem
			in.Copies = append(in.Copies, Copy{Key: slum.KeyOf(fmt.Sprintf("t%d", tn), fmt.Sprintf("c%d", ci)), Process: "api",
				Server: s.ID, MemoryMB: mem, Region: region, Serving: ci == 0})
		}
	}
	return in
}

// check asserts what every plan keeps to: no more than max moves, each
// copy at most once, never onto a server that takes nothing, beyond
// capacity, beside a copy of the tenant's process or out of the copy's
// region from within it, nothing off a server not online, and never a
// less even fleet.
func check(t *testing.T, in Input, max int) {
	moves := Plan(in, max)
	if len(moves) > max {
		t.Fatalf("%d moves, max %d", len(moves), max)
	}
	servers := map[string]Server{}
	for _, s := range in.Servers {
		servers[s.ID] = s
	}
	seen := map[slum.InstanceKey]bool{}
	for _, m := range moves {
		if seen[m.Instance] {
			t.Fatalf("%s moved twice", m.Instance)
		}
		seen[m.Instance] = true
		if !servers[m.To].Takes || !servers[m.From].Online {
			t.Fatalf("move %+v onto a server that takes nothing or off one not online", m)
		}
	}
	after := Apply(in, moves)
	used, has := map[string]int64{}, map[string]int{}
	for i, c := range after.Copies {
		used[c.Server] += c.MemoryMB
		k := hasKey(c.Server, c)
		has[k]++
		before := in.Copies[i]
		if before.Server != c.Server && has[k] > 1 {
			t.Fatalf("%s moved beside another copy of its tenant's process", c.Key)
		}
		if before.Server != c.Server && c.Region != "" && servers[before.Server].Region == c.Region && servers[c.Server].Region != c.Region {
			t.Fatalf("%s moved out of its region", c.Key)
		}
	}
	for _, m := range moves {
		if used[m.To] > servers[m.To].CapacityMB {
			t.Fatalf("%s over capacity: %d MB of %d", m.To, used[m.To], servers[m.To].CapacityMB)
		}
	}
	if Cost(after) > Cost(in)+1e-12 {
		t.Fatalf("less even: %f > %f", Cost(after), Cost(in))
	}
}

func TestPlanKeepsTheRules(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		check(t, randomFleet(r), 1+r.IntN(6))
	}
}

func FuzzPlan(f *testing.F) {
	f.Add(uint64(1), uint64(2), 3)
	f.Add(uint64(7), uint64(0), 1)
	f.Fuzz(func(t *testing.T, a, b uint64, max int) {
		if max < 0 || max > 50 {
			return
		}
		check(t, randomFleet(rand.New(rand.NewPCG(a, b))), max)
	})
}
