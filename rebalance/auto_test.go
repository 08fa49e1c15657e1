package rebalance

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// reported stands in for the controller's reports over a real store:
// every server online for an hour, every copy running (or as phase says).
type reported struct {
	*store.Store
	now     time.Time
	phase   slum.Phase
	pending int64
}

func (r *reported) ListServerStatus(ctx context.Context) ([]slum.ServerStatus, error) {
	ss, err := r.ListServers(ctx)
	var out []slum.ServerStatus
	for _, s := range ss {
		out = append(out, slum.ServerStatus{ServerID: s.ID, Health: slum.HealthOnline, HealthSince: r.now.Add(-time.Hour), PendingStops: r.pending})
	}
	return out, err
}

func (r *reported) ListInstanceStatus(ctx context.Context) ([]slum.InstanceStatus, error) {
	ins, err := r.ListInstances(ctx)
	var out []slum.InstanceStatus
	for _, in := range ins {
		out = append(out, slum.InstanceStatus{TenantID: in.TenantID, InstanceID: in.ID, ServerID: in.ServerID, Phase: r.phase})
	}
	return out, err
}

func TestAutoMovesOneAtATimeOnlyWhenOnAndQuiet(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "slum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range []string{"s1", "s2"} {
		if _, err := st.AddServer(ctx, slum.Server{ID: id, URL: "http://127.0.0.1:9", Region: "eu", CapacityMB: 2048, Token: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range []string{"a", "b", "c", "d"} {
		if _, _, err := st.AddTenant(ctx, slum.Tenant{ID: tn, Domain: tn + ".example.com", Region: "eu"},
			slum.InstanceSpec{ID: "prod", Process: "api", ServerID: "s1"}); err != nil {
			t.Fatal(err)
		}
	}
	clk := fakeclock.New(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	f := &reported{Store: st, now: clk.Now(), phase: slum.PhaseRunning}
	auto := NewAuto(f, clk, slog.New(slog.DiscardHandler))
	onS2 := func() int {
		ins, _ := st.ListInstancesOnServer(ctx, "s2")
		return len(ins)
	}

	if moved, err := auto.Step(ctx, time.Time{}); err != nil || moved {
		t.Fatalf("off by default, yet moved=%v %v", moved, err)
	}
	set, _ := st.Settings(ctx)
	set.Rebalance = slum.RebalanceOn
	if _, err := st.SetSettings(ctx, set); err != nil {
		t.Fatal(err)
	}
	f.pending = 1
	if moved, _ := auto.Step(ctx, time.Time{}); moved {
		t.Fatal("moved while a stop was pending")
	}
	f.pending, f.phase = 0, slum.PhasePending
	if moved, _ := auto.Step(ctx, time.Time{}); moved {
		t.Fatal("moved while a copy was pending")
	}
	f.phase = slum.PhaseRunning
	ro, err := st.CreateRollout(ctx, slum.RestartSpec{All: true}, []slum.RolloutStep{{Instance: "a:prod", Server: "s1", State: slum.StepPending}}, "x")
	if err != nil {
		t.Fatal(err)
	}
	if moved, _ := auto.Step(ctx, time.Time{}); moved {
		t.Fatal("moved during a rolling restart")
	}
	if _, err := st.AbandonRollout(ctx, ro.ID); err != nil {
		t.Fatal(err)
	}
	if moved, err := auto.Step(ctx, time.Time{}); err != nil || !moved || onS2() != 1 {
		t.Fatalf("on and quiet: moved=%v %v, %d on s2", moved, err, onS2())
	}
	last := clk.Now()
	clk.Advance(set.RebalanceEvery - time.Second)
	if moved, _ := auto.Step(ctx, last); moved {
		t.Fatal("a second move before rebalance_every")
	}
	clk.Advance(time.Second)
	if moved, _ := auto.Step(ctx, last); !moved || onS2() != 2 {
		t.Fatalf("after rebalance_every: moved=%v, %d on s2", moved, onS2())
	}
	if moved, _ := auto.Step(ctx, clk.Now().Add(-time.Hour)); moved {
		t.Fatal("moved an even fleet")
	}
}
