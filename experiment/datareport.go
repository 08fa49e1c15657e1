package experiment

import (
	"fmt"

	"github.com/slum-fleet/slum/litestream"
	"github.com/slum-fleet/slum/replica/lease"
)

func dataSecs(get func(*DataTrial) *Millis) func(Trial) (float64, bool) {
	return func(t Trial) (float64, bool) {
		if t.Data == nil {
			return 0, false
		}
		return secs(get(t.Data))
	}
}

func dataCount(get func(*DataTrial) int) func(Trial) (float64, bool) {
	return func(t Trial) (float64, bool) {
		if t.Data == nil {
			return 0, false
		}
		return count(get(t.Data))
	}
}

// dataMetrics are a data trial's figures, in the table's order.
var dataMetrics = []metric{
	{key: "detected", name: "detected: the controller declares the server dead", unit: Seconds, get: func(t Trial) (float64, bool) { return secs(t.Detected) }},
	{key: "controller_killed", name: "the controller killed mid-failover", unit: Seconds, get: func(t Trial) (float64, bool) { return secs(t.ControllerKilled) },
		only: []Fault{FaultControllerKill}},
	{key: "served_with_data", name: "served again with its data", unit: Seconds,
		get: dataSecs(func(d *DataTrial) *Millis { return d.ServedWithData })},
	{key: "lease_wait", name: "  the new guard waited for the lease", unit: Seconds, get: dataSecs(func(d *DataTrial) *Millis { return d.LeaseWait })},
	{key: "writer_wait", name: "  slum said it waited for the old writer", unit: Seconds, get: dataSecs(func(d *DataTrial) *Millis { return d.WriterWait })},
	{key: "restore", name: "  restore from the replica", unit: Seconds, get: dataSecs(func(d *DataTrial) *Millis { return d.Restore })},
	{key: "lost", name: "acknowledged writes lost", unit: Count, get: dataCount(func(d *DataTrial) int { return d.Lost })},
	{key: "lost_span", name: "  the seconds they span, back from the fault", unit: Seconds, get: dataSecs(func(d *DataTrial) *Millis { return &d.LostSpan })},
	{key: "accepted_by_two", name: "writes accepted by two copies (the old one's after the new one's first)", unit: Count,
		get: dataCount(func(d *DataTrial) int { return d.AcceptedByTwo })},
	{key: "two_writers", name: "  of which in the new copy's history: two writers (must be 0)", unit: Count, get: dataCount(func(d *DataTrial) int { return d.TwoWriters })},
	{key: "old_only", name: "old copy's writes after the fault, lost (on its disk only)", unit: Count, get: dataCount(func(d *DataTrial) int { return d.OldOnly })},
	{key: "old_wrote_for", name: "  the old copy still acknowledged writes for", unit: Seconds, get: dataSecs(func(d *DataTrial) *Millis { return &d.OldWroteFor })},
	{key: "new_gone", name: "new copy's writes gone after the return (must be 0)", unit: Count, get: dataCount(func(d *DataTrial) int { return d.NewGone })},
	{key: "acked", name: "acknowledged writes", unit: Count, get: dataCount(func(d *DataTrial) int { return d.Acked })},
	{key: "left_behind", name: "things left behind", unit: Count, get: func(t Trial) (float64, bool) { return count(len(t.LeftBehind)) }},
}

// dataTargets checks issue 17's targets against a data experiment's
// figures: p99 over the trials, nearest rank.
func (r *Report) dataTargets() []Check {
	lapse := lease.DefaultTiming.TTL
	var out []Check
	for _, s := range r.Summaries {
		if s.Trials == 0 {
			continue
		}
		served, _ := s.Figure("served_with_data")
		span, _ := s.Figure("lost_span")
		two, _ := s.Figure("two_writers")
		byTwo, _ := s.Figure("accepted_by_two")
		gone, _ := s.Figure("new_gone")
		left, _ := s.Figure("left_behind")
		servedIn := func(limit float64, what string) Check {
			return Check{Target: fmt.Sprintf("%s: served again with its data in under %s, p99", s.Fault, what),
				Measured: fmt.Sprintf("p99 %s over %d trials (%d of %d served again)", formatValue(served.P99, Seconds), s.Trials, served.N, s.Trials),
				Met:      served.N == s.Trials && served.P99 < limit}
		}
		switch s.Fault {
		case FaultWholeKill:
			out = append(out, servedIn(3, "3s"))
		case FaultKill, FaultHang, FaultCut:
			out = append(out, servedIn((lapse+3e9).Seconds(), fmt.Sprintf("the lease's lapse (%s) + 3s", lapse)))
		}
		out = append(out,
			Check{Target: fmt.Sprintf("%s: at most 1s of acknowledged writes lost, p99", s.Fault),
				Measured: fmt.Sprintf("p99 %s, max %s", formatValue(span.P99, Seconds), formatValue(span.Max, Seconds)), Met: span.P99 <= 1},
			Check{Target: fmt.Sprintf("%s: 0 writes in the new history from two writers, 0 of the new copy's gone, nothing left behind", s.Fault),
				Measured: fmt.Sprintf("max %.0f two-writer writes, %.0f gone, %.0f left behind in a trial", two.Max, gone.Max, left.Max),
				Met:      two.Max == 0 && gone.Max == 0 && left.Max == 0},
			Check{Target: fmt.Sprintf("%s: 0 writes accepted by two copies", s.Fault),
				Measured: fmt.Sprintf("max %.0f in a trial", byTwo.Max), Met: byTwo.Max == 0})
	}
	return out
}

// dataSetup says what a data experiment ran, for its table.
func dataSetup() string {
	return fmt.Sprintf("one replicated tenant: examples/replicated's app under 'slum guard' (lease TTL %s), real Litestream %s, its replica on a real SeaweedFS",
		lease.DefaultTiming.TTL, litestream.Version)
}
