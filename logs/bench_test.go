package logs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/observed/sim"
	"github.com/slum-fleet/slum/sqlite"
)

// copiesOfLines is n copies of per lines each, over the same second, each
// copy's a little out of order (stdout against stderr), as tenement keeps
// them.
func copiesOfLines(n, per int) [][]Line {
	r := rand.New(rand.NewPCG(1, 2))
	lists := make([][]Line, n)
	for c := range lists {
		copy := fmt.Sprintf("i%d@s%d", c, c)
		for i := 0; i < per; i++ {
			ms := i*1000/per + r.IntN(2)
			lists[c] = append(lists[c], Line{Time: t0.Add(time.Duration(ms) * time.Millisecond), Copy: copy, Message: fmt.Sprintf("GET /path/%d hits=%d", i, i)})
		}
	}
	return lists
}

// BenchmarkMerge is 10,000 lines of 10 copies put in order and merged.
func BenchmarkMerge(b *testing.B) {
	src := copiesOfLines(10, 1000)
	b.ReportAllocs()
	for b.Loop() {
		lists := make([][]Line, len(src))
		for i, l := range src {
			lists[i] = append([]Line(nil), l...)
			sortCopy(lists[i])
		}
		if out := merge(lists); len(out) != 10_000 {
			b.Fatal(len(out))
		}
	}
}

// BenchmarkGather is `slum logs` of a tenant with 10 copies on 10
// (simulated) servers, 1,000 lines each: the fleet read, 10 queries over
// HTTP, decoding, labelling and the merge.
func BenchmarkGather(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "slum.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var specs []slum.InstanceSpec
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("s%d", i)
		s := sim.New(sim.Config{Token: "tok", Processes: map[string]sim.Process{"api": {}}})
		u, err := s.Start("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if _, err := st.AddServer(ctx, slum.Server{ID: id, URL: u, CapacityMB: 1000, Token: "tok"}); err != nil {
			b.Fatal(err)
		}
		inst := fmt.Sprintf("i%d", i)
		specs = append(specs, slum.InstanceSpec{ID: inst, Process: "api", ServerID: id})
		for j := 0; j < 1000; j++ {
			s.Log("api", "alice--"+inst, "stdout", fmt.Sprintf("GET /path/%d hits=%d", j, j))
		}
	}
	if _, _, err := st.AddTenant(ctx, slum.Tenant{ID: "alice", Domain: "alice.example.com"}, specs...); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := Gather(ctx, st, Query{Tenant: "alice"}, Options{})
		if err != nil || len(res.Lines) != 10_000 {
			b.Fatal(len(res.Lines), err)
		}
	}
}

// BenchmarkFollowFlush is 10,000 lines of 10 copies through a follow's
// merge, arriving in batches of 100 every 10 ms (the window is 200 ms).
func BenchmarkFollowFlush(b *testing.B) {
	all := merge(copiesOfLines(10, 1000))
	b.ReportAllocs()
	for b.Loop() {
		clk := fakeclock.New(t0)
		n := 0
		fl := &follower{opt: Options{Clock: clk}.withDefaults(), live: true,
			out: Output{Line: func(Line) error { n++; return nil }}}
		for i := 0; i < len(all); i += 100 {
			fl.pend(all[i : i+100])
			clk.Advance(10 * time.Millisecond)
			if i%500 == 0 {
				_ = fl.flush(false)
			}
		}
		_ = fl.flush(true)
		if n != len(all) {
			b.Fatal(n)
		}
	}
}
