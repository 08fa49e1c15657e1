package experiment

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
)

// Unit is what a figure counts.
type Unit string

const (
	Seconds Unit = "s"
	Count   Unit = "n"
)

// Figure is one measure over a fault's trials.
type Figure struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	Unit Unit   `json:"unit"`
	// N trials had the figure (a tenant never served again has none).
	N      int       `json:"n"`
	P50    float64   `json:"p50"`
	P99    float64   `json:"p99"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

// Summary is a fault's figures over its trials.
type Summary struct {
	Fault    Fault          `json:"fault"`
	Trials   int            `json:"trials"`
	Errors   int            `json:"trials_with_errors"`
	Figures  []Figure       `json:"figures"`
	Failures map[string]int `json:"failures_by_outcome"`
	// WarmAfterDetection: failed requests of tenants with a warm spare,
	// sent after the detection, by outcome, all trials.
	WarmAfterDetection map[string]int `json:"warm_failed_after_detection_by_outcome"`
}

// metric reads one figure of a trial; ok is false when the trial has none.
type metric struct {
	key, name string
	unit      Unit
	get       func(Trial) (float64, bool)
	// only: the faults it applies to (none: all).
	only []Fault
}

func secs(m *Millis) (float64, bool) {
	if m == nil {
		return 0, false
	}
	return m.D().Seconds(), true
}

func count(n int) (float64, bool) { return float64(n), true }

var metrics = []metric{
	{key: "detected", name: "detected: the controller declares it dead", unit: Seconds, get: func(t Trial) (float64, bool) { return secs(t.Detected) },
		only: []Fault{FaultKill, FaultWholeKill, FaultHang, FaultCut, FaultRestart, FaultControllerKill, FaultPartition, FaultObserved}},
	{key: "controller_back", name: "another controller holds the lease", unit: Seconds, get: func(t Trial) (float64, bool) { return secs(t.ControllerBack) }, only: []Fault{FaultControllerKill, FaultLeaderKill, FaultLeaderCut}},
	{key: "running_at_controller_kill", name: "displaced instances running when it was killed", unit: Count, get: func(t Trial) (float64, bool) {
		return count(t.RunningAtControllerKill)
	}, only: []Fault{FaultControllerKill}},
	{key: "failover_started", name: "first instance placed elsewhere", unit: Seconds, get: func(t Trial) (float64, bool) { return secs(t.FailoverStarted) }, only: []Fault{FaultKill, FaultWholeKill, FaultHang, FaultCut, FaultControllerKill, FaultRestart}},
	{key: "replaced", name: "every displaced instance runs again", unit: Seconds, get: func(t Trial) (float64, bool) {
		if t.Displaced == 0 {
			return 0, false
		}
		return secs(t.Replaced)
	}, only: []Fault{FaultKill, FaultWholeKill, FaultHang, FaultCut, FaultControllerKill, FaultRestart}},
	{key: "unplaceable", name: "displaced instances nowhere could take", unit: Count, get: func(t Trial) (float64, bool) { return count(len(t.Unplaceable)) },
		only: []Fault{FaultKill, FaultWholeKill, FaultHang, FaultCut, FaultControllerKill}},
	{key: "served_again", name: "every tenant served again", unit: Seconds, get: func(t Trial) (float64, bool) { return secs(t.ServedAgain) },
		only: []Fault{FaultKill, FaultWholeKill, FaultHang, FaultCut, FaultControllerKill, FaultRestart, FaultObserved}},
	{key: "served_again", name: "tenants with a copy outside served again", unit: Seconds, get: func(t Trial) (float64, bool) { return secs(t.ServedAgain) },
		only: []Fault{FaultPartition}},
	{key: "served_after_heal", name: "every tenant served again, from the partition's end", unit: Seconds, get: func(t Trial) (float64, bool) { return secs(t.ServedAfterHeal) }, only: []Fault{FaultPartition}},
	{key: "longest_gap", name: "longest gap a tenant saw", unit: Seconds, get: func(t Trial) (float64, bool) { return t.LongestGap.D().Seconds(), true }},
	{key: "slowest", name: "slowest answer served", unit: Seconds, get: func(t Trial) (float64, bool) {
		var m Millis
		for _, tf := range t.Tenants {
			m = max(m, tf.Max)
		}
		return m.D().Seconds(), true
	}},
	{key: "failed", name: "failed requests", unit: Count, get: func(t Trial) (float64, bool) { return count(t.Failed) }},
	{key: "warm_failed_after_detection", name: "  of tenants with a warm spare, sent after detection", unit: Count, get: func(t Trial) (float64, bool) { return count(t.WarmFailedAfterDetection) }},
	{key: "unaffected_failed", name: "  of tenants the fault did not touch", unit: Count, get: func(t Trial) (float64, bool) { return count(t.UnaffectedFailed) }},
	{key: "failed_after_heal", name: "  sent after the fault was undone", unit: Count, get: func(t Trial) (float64, bool) { return count(t.FailedAfterHeal) }},
	{key: "on_two_servers", name: "instances seen on two servers", unit: Count, get: func(t Trial) (float64, bool) { return count(len(t.OnTwoServers)) }},
	{key: "on_two_servers_for", name: "  longest time on two servers", unit: Seconds, get: func(t Trial) (float64, bool) {
		var m Millis
		for _, d := range t.OnTwoServers {
			m = max(m, d.For)
		}
		return m.D().Seconds(), true
	}},
	{key: "on_two_servers_after_return", name: "  still on two one poll after the return", unit: Count, get: func(t Trial) (float64, bool) { return count(t.OnTwoServersAfterReturn) }},
	{key: "fenced", name: "stale copies fenced after the return", unit: Count, get: func(t Trial) (float64, bool) { return count(t.Fenced) }},
	{key: "moved", name: "instances moved", unit: Count, get: func(t Trial) (float64, bool) { return count(len(t.Moved)) }},
	{key: "left_behind", name: "things left behind", unit: Count, get: func(t Trial) (float64, bool) { return count(len(t.LeftBehind)) }},
}

func (m metric) applies(f Fault) bool {
	if len(m.only) == 0 {
		return true
	}
	for _, o := range m.only {
		if o == f {
			return true
		}
	}
	return false
}

// Summarize computes each fault's figures over its trials. Trials that
// could not run to their end are counted apart and left out.
func Summarize(trials []Trial) []Summary {
	var order []Fault
	by := map[Fault][]Trial{}
	for _, t := range trials {
		if _, ok := by[t.Fault]; !ok {
			order = append(order, t.Fault)
		}
		by[t.Fault] = append(by[t.Fault], t)
	}
	out := make([]Summary, 0, len(order))
	for _, f := range order {
		s := Summary{Fault: f, Failures: map[string]int{}, WarmAfterDetection: map[string]int{}}
		var good []Trial
		for _, t := range by[f] {
			if t.Error != "" {
				s.Errors++
				continue
			}
			good = append(good, t)
			for k, v := range t.Failures {
				s.Failures[k] += v
			}
			for k, v := range t.WarmAfterDetection {
				s.WarmAfterDetection[k] += v
			}
		}
		s.Trials = len(good)
		ms := metrics
		if by[f][0].Data != nil {
			ms = dataMetrics
		}
		for _, m := range ms {
			if !m.applies(f) {
				continue
			}
			fig := Figure{Key: m.key, Name: m.name, Unit: m.unit, Values: []float64{}}
			for _, t := range good {
				if v, ok := m.get(t); ok {
					fig.Values = append(fig.Values, v)
				}
			}
			sorted := append([]float64(nil), fig.Values...)
			sort.Float64s(sorted)
			fig.N = len(sorted)
			if fig.N > 0 {
				fig.P50, fig.P99, fig.Max = percentile(sorted, 0.5), percentile(sorted, 0.99), sorted[len(sorted)-1]
			}
			s.Figures = append(s.Figures, fig)
		}
		out = append(out, s)
	}
	return out
}

// Figure returns the summary's figure of that key.
func (s Summary) Figure(key string) (Figure, bool) {
	for _, f := range s.Figures {
		if f.Key == key {
			return f, true
		}
	}
	return Figure{}, false
}

func sum(vs []float64) float64 {
	t := 0.0
	for _, v := range vs {
		t += v
	}
	return t
}

func formatValue(v float64, u Unit) string {
	if u == Count {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2fs", v)
}

// WriteTable writes the report as a table per fault: p50, p99 and max
// over its trials (nearest rank: with fewer than 100 trials, p99 is the
// worst but one only from 100 on).
func (r *Report) WriteTable(w io.Writer) error {
	backend := "real tenement servers, each in its own network namespace"
	if r.Backend != "tenement" {
		backend = "SIMULATED tenement servers (" + r.BackendReason + ")"
	}
	if r.Observe {
		backend = "an existing fleet, observed"
	}
	s := r.Settings
	if r.Data {
		fmt.Fprintf(w, "slum experiment --data: %s; %d servers, %s\n", backend, r.Servers, dataSetup())
		fmt.Fprintf(w, "settings: probe_interval %s, probe_timeout %s, dead_after %d; writes as fast as the serving copy acknowledges them; seed %d\n",
			s.ProbeInterval, s.ProbeTimeout, s.DeadAfter, r.Seed)
	} else {
		fmt.Fprintf(w, "slum experiment: %s; %d servers, %d tenants (%d with two copies or more)\n", backend, r.Servers, r.Tenants, r.WarmTenants)
		fmt.Fprintf(w, "settings: probe_interval %s, probe_timeout %s, dead_after %d, partition_fraction %g, failover_rate %d/min; load %g requests/s per tenant; seed %d\n",
			s.ProbeInterval, s.ProbeTimeout, s.DeadAfter, s.PartitionFraction, s.FailoverRate, r.Rate, r.Seed)
	}
	if len(r.LoadAverage) > 0 {
		fmt.Fprintf(w, "this machine's load average (1, 5, 15 min) at the start and the end: %s (it has %d cores; other work skews the figures)\n",
			strings.Join(r.LoadAverage, " -> "), runtime.NumCPU())
	}
	if r.Interrupted {
		fmt.Fprintf(w, "INTERRUPTED: %d trials finished\n", len(r.Trials))
	}
	for _, sum := range r.Summaries {
		fmt.Fprintf(w, "\n%s: %s, %d trials", sum.Fault, sum.Fault.Title(), sum.Trials)
		if sum.Errors > 0 {
			fmt.Fprintf(w, " (and %d that could not run to their end: see the JSON)", sum.Errors)
		}
		fmt.Fprintln(w)
		width := len("figure")
		for _, f := range sum.Figures {
			width = max(width, len(f.Name))
		}
		fmt.Fprintf(w, "  %-*s  %8s  %8s  %8s  %6s\n", width, "figure", "p50", "p99", "max", "trials")
		for _, f := range sum.Figures {
			p50, p99, mx := "-", "-", "-"
			if f.N > 0 {
				p50, p99, mx = formatValue(f.P50, f.Unit), formatValue(f.P99, f.Unit), formatValue(f.Max, f.Unit)
			}
			fmt.Fprintf(w, "  %-*s  %8s  %8s  %8s  %6s\n", width, f.Name, p50, p99, mx, fmt.Sprintf("%d/%d", f.N, sum.Trials))
		}
		if len(sum.Failures) > 0 {
			keys := make([]string, 0, len(sum.Failures))
			for k := range sum.Failures {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = fmt.Sprintf("%s ×%d", k, sum.Failures[k])
			}
			fmt.Fprintf(w, "  failed requests by outcome, all trials: %s\n", strings.Join(parts, ", "))
		}
	}
	if checks := r.Targets(); len(checks) > 0 {
		head := "issue 13; meant for default settings on three real tenement servers"
		if r.Data {
			head = "issue 17; meant for default settings on real tenement servers"
		}
		fmt.Fprintf(w, "\ntargets (%s):\n", head)
		for _, c := range checks {
			verdict := "met"
			if !c.Met {
				verdict = "MISSED"
			}
			fmt.Fprintf(w, "  %-6s %s: %s\n", verdict, c.Target, c.Measured)
		}
	}
	for _, t := range r.Trials {
		if len(t.LeftBehind) > 0 {
			fmt.Fprintf(w, "\n%s trial %d left behind: %s\n", t.Fault, t.Trial, strings.Join(t.LeftBehind, "; "))
		}
		if t.Error != "" {
			fmt.Fprintf(w, "\n%s trial %d could not run to its end: %s\n", t.Fault, t.Trial, t.Error)
		}
	}
	if len(r.LeftBehind) > 0 {
		fmt.Fprintf(w, "\nthe experiment left behind: %s\n", strings.Join(r.LeftBehind, "; "))
	}
	if len(r.Pictures) > 0 {
		fmt.Fprintf(w, "\npictures: %s\n", strings.Join(r.Pictures, ", "))
	}
	return nil
}

// Check is a target and whether the experiment met it.
type Check struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// Targets checks issue 13's targets against the figures measured.
func (r *Report) Targets() []Check {
	if r.Data {
		return r.dataTargets()
	}
	var out []Check
	for _, s := range r.Summaries {
		if s.Trials == 0 {
			continue
		}
		switch s.Fault {
		case FaultKill:
			if f, ok := s.Figure("served_again"); ok {
				out = append(out, Check{Target: "kill -9: every tenant served again in under 5s, p99",
					Measured: fmt.Sprintf("p99 %s over %d trials (%d of %d served again)", formatValue(f.P99, Seconds), s.Trials, f.N, s.Trials),
					Met:      f.N == s.Trials && f.P99 < 5})
			}
			if f, ok := s.Figure("on_two_servers_after_return"); ok {
				out = append(out, Check{Target: "kill -9: 0 instances on two servers after the return",
					Measured: fmt.Sprintf("max %.0f", f.Max), Met: f.Max == 0})
			}
			if f, ok := s.Figure("warm_failed_after_detection"); ok {
				measured := fmt.Sprintf("max %.0f in a trial", f.Max)
				if n := s.WarmAfterDetection[OutcomeUpstream502]; n > 0 {
					measured += fmt.Sprintf("; %d of the %.0f in all trials were 502s answered by tenement itself, not the router",
						n, sum(f.Values))
				}
				if f, ok := s.Figure("unaffected_failed"); ok && f.Max > 0 {
					measured += fmt.Sprintf("; tenants the fault did not touch lost up to %.0f a trial", f.Max)
				}
				out = append(out, Check{Target: "kill -9: 0 failed requests for tenants with a warm spare after detection",
					Measured: measured, Met: f.Max == 0})
			}
		case FaultPartition:
			if f, ok := s.Figure("moved"); ok {
				out = append(out, Check{Target: "partition: nothing moves",
					Measured: fmt.Sprintf("max %.0f instances moved in a trial", f.Max), Met: f.Max == 0})
			}
		}
	}
	return out
}
