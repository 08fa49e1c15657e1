package experiment

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// steady makes a tenant's samples every 50 ms from..to (ms from the
// fault), each answered in 2 ms; fail says which fail and how.
func steady(tenant string, from, to int, fail func(ms int) string) []Sample {
	var out []Sample
	for ms := from; ms < to; ms += 50 {
		s := Sample{Tenant: tenant, Sent: at(ms), Latency: 2 * time.Millisecond, Outcome: OutcomeOK, Copy: tenant + "--prod"}
		if o := fail(ms); o != "" {
			s.Outcome, s.Copy = o, ""
		}
		out = append(out, s)
	}
	return out
}

func never(int) string { return "" }

func between(lo, hi int, outcome string) func(int) string {
	return func(ms int) string {
		if ms >= lo && ms < hi {
			return outcome
		}
		return ""
	}
}

func ms(m *Millis) float64 {
	if m == nil {
		return -1
	}
	return float64(m.D()) / float64(time.Millisecond)
}

// measureCase is a trial's samples and what Measure must make of them.
type measureCase struct {
	name    string
	samples []Sample
	warm    map[string]bool
	down    map[string]bool
	dead    int // ms; -1 for never
	heal    int // ms; -1 for never
	// wanted
	served                 float64 // -1: nil
	failed, before, warmNo int
	afterHeal              int
	gap                    float64
	gapTenant              string
	failures               map[string]int
}

func TestMeasureLoad(t *testing.T) {
	cases := []measureCase{
		{name: "nothing fails", samples: steady("a", -1000, 3000, never), dead: -1, heal: -1,
			served: 0, gap: 50, gapTenant: "a", failures: map[string]int{}},
		{name: "a cold tenant is down a second",
			samples: append(steady("a", -1000, 3000, between(0, 1000, "503")), steady("b", -1000, 3000, never)...),
			dead:    500, heal: -1,
			// the first request after the last failure (950) is sent at
			// 1000 and answered at 1002
			served: 1002, failed: 20, gap: 1050, gapTenant: "a", failures: map[string]int{"503": 20}},
		{name: "a warm tenant's failures after detection are counted apart",
			samples: steady("w", -1000, 3000, between(0, 700, "502")), warm: map[string]bool{"w": true},
			dead: 500, heal: -1, served: 702, failed: 14, warmNo: 4, gap: 750, gapTenant: "w", failures: map[string]int{"502": 14}},
		{name: "an answer held by a hung server does not hide the earlier answers after it",
			samples: func() []Sample {
				ss := steady("a", -1000, 3000, between(0, 500, "timeout"))
				for i := range ss {
					if ss[i].Sent.Equal(at(500)) {
						ss[i].Latency = 2500 * time.Millisecond // answered when the server resumed
					}
				}
				return ss
			}(),
			dead: 300, heal: -1, served: 552, failed: 10, gap: 600, gapTenant: "a", failures: map[string]int{"timeout": 10}},
		{name: "a lone failure after the outage is counted but does not move served-again",
			samples: steady("a", -1000, 3000, func(ms int) string {
				if ms >= 0 && ms < 500 || ms == 2000 {
					return "502-tenement"
				}
				return ""
			}),
			dead: 300, heal: -1, served: 502, failed: 11, gap: 550, gapTenant: "a", failures: map[string]int{"502-tenement": 11}},
		{name: "two failures in a row are an outage",
			samples: steady("a", -1000, 3000, func(ms int) string {
				if ms >= 0 && ms < 500 || ms == 2000 || ms == 2050 {
					return "503"
				}
				return ""
			}),
			dead: 300, heal: -1, served: 2102, failed: 12, gap: 550, gapTenant: "a", failures: map[string]int{"503": 12}},
		{name: "failures before the fault are not the fault's",
			samples: steady("a", -1000, 3000, between(-500, -400, "timeout")), dead: -1, heal: -1,
			served: 0, before: 2, gap: 150, gapTenant: "a", failures: map[string]int{}},
		{name: "a tenant never served again leaves the trial without a time",
			samples: append(steady("a", -1000, 3000, between(0, 5000, "503")), steady("b", -1000, 3000, never)...),
			dead:    500, heal: -1, served: -1, failed: 60, gap: 3048, gapTenant: "a", failures: map[string]int{"503": 60}},
		{name: "a tenant expected down does not hold up the others",
			samples: append(steady("d", -1000, 3000, between(0, 5000, "503")), steady("b", -1000, 3000, between(0, 300, "503"))...),
			down:    map[string]bool{"d": true}, dead: 200, heal: -1, served: 302, failed: 66, gap: 3048, gapTenant: "d",
			failures: map[string]int{"503": 66}},
		{name: "failures once the fault is undone are counted apart and do not move served-again",
			samples: steady("a", -1000, 4000, func(ms int) string {
				if ms >= 0 && ms < 500 || ms >= 2500 && ms < 2600 {
					return "502"
				}
				return ""
			}),
			dead: 300, heal: 2000, served: 502, failed: 12, afterHeal: 2, gap: 550, gapTenant: "a", failures: map[string]int{"502": 12}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Record{Fault: FaultKill, FaultAt: t0, LoadStart: at(-1000), LoadEnd: at(3000), Samples: c.samples, Warm: c.warm, Down: c.down}
			if c.dead >= 0 {
				r.DeadAt = at(c.dead)
			}
			if c.heal >= 0 {
				r.HealAt = at(c.heal)
				r.LoadEnd = at(4000)
			}
			c.check(t, Measure(r))
		})
	}
}

// check compares a trial's measure with what the case wants.
func (c measureCase) check(t *testing.T, tr Trial) {
	t.Helper()
	if got := ms(tr.ServedAgain); got != c.served {
		t.Errorf("served again at %v ms, want %v", got, c.served)
	}
	if tr.Failed != c.failed || tr.FailedBefore != c.before || tr.WarmFailedAfterDetection != c.warmNo || tr.FailedAfterHeal != c.afterHeal {
		t.Errorf("failed %d, before %d, warm after detection %d, after heal %d; want %d, %d, %d, %d",
			tr.Failed, tr.FailedBefore, tr.WarmFailedAfterDetection, tr.FailedAfterHeal, c.failed, c.before, c.warmNo, c.afterHeal)
	}
	if got := float64(tr.LongestGap.D()) / 1e6; got != c.gap || tr.LongestGapTenant != c.gapTenant {
		t.Errorf("longest gap %v ms for %s, want %v for %s", got, tr.LongestGapTenant, c.gap, c.gapTenant)
	}
	if len(tr.Failures) != len(c.failures) {
		t.Errorf("failures %v, want %v", tr.Failures, c.failures)
	}
	for k, v := range c.failures {
		if tr.Failures[k] != v {
			t.Errorf("failures %v, want %v", tr.Failures, c.failures)
		}
	}
	if len(tr.FailedReqs) != tr.Failed {
		t.Errorf("%d failed requests listed, %d counted", len(tr.FailedReqs), tr.Failed)
	}
}

func TestMeasureReplacedAndDuplicates(t *testing.T) {
	round := func(msAt int, lists map[string][]string) ListRound { return ListRound{At: at(msAt), Lists: lists} }
	displaced := map[string]string{"api:a--prod": "a", "api:b--prod": "b"}
	cases := []struct {
		name        string
		rounds      []ListRound
		allowVictim bool
		listFrom    int
		back        int
		replaced    float64
		each        int
		dups        []string
		dupFor      float64
		after       int
	}{
		{name: "both listed elsewhere: the later counts",
			rounds: []ListRound{
				round(-100, map[string][]string{"s1": {"api:a--prod", "api:b--prod"}}),
				round(800, map[string][]string{"s2": {"api:a--prod"}}),
				round(1000, map[string][]string{"s2": {"api:a--prod"}, "s3": {"api:b--prod"}}),
			},
			back: -1, replaced: 1000, each: 2, dups: nil},
		{name: "one never listed elsewhere: no time",
			rounds: []ListRound{round(800, map[string][]string{"s2": {"api:a--prod"}})},
			back:   -1, replaced: -1, each: 1},
		{name: "listed on the victim does not count, unless the victim may run it again",
			rounds: []ListRound{round(500, map[string][]string{"s1": {"api:a--prod", "api:b--prod"}})},
			back:   -1, replaced: -1, each: 0},
		{name: "a restarted victim runs them again",
			rounds:      []ListRound{round(500, map[string][]string{"s1": {"api:a--prod", "api:b--prod"}})},
			allowVictim: true, back: -1, replaced: 500, each: 2},
		{name: "what a restarting victim lists before its restart is done does not count",
			rounds: []ListRound{round(100, map[string][]string{"s1": {"api:a--prod", "api:b--prod"}}),
				round(1500, map[string][]string{"s1": {"api:a--prod"}}), round(1700, map[string][]string{"s1": {"api:a--prod", "api:b--prod"}})},
			allowVictim: true, listFrom: 1000, back: -1, replaced: 1700, each: 2},
		{name: "other servers count at once while the victim restarts",
			rounds: []ListRound{round(100, map[string][]string{"s1": {"api:a--prod", "api:b--prod"}}),
				round(900, map[string][]string{"s2": {"api:a--prod"}, "s3": {"api:b--prod"}})},
			allowVictim: true, listFrom: 10000, back: -1, replaced: 900, each: 2},
		{name: "a stale copy on the returned server until fenced",
			rounds: []ListRound{
				round(1000, map[string][]string{"s2": {"api:a--prod"}, "s3": {"api:b--prod"}}),
				round(5000, map[string][]string{"s1": {"api:a--prod"}, "s2": {"api:a--prod"}, "s3": {"api:b--prod"}}),
				round(7000, map[string][]string{"s1": {"api:a--prod"}, "s2": {"api:a--prod"}, "s3": {"api:b--prod"}}),
				round(7500, map[string][]string{"s1": {}, "s2": {"api:a--prod"}, "s3": {"api:b--prod"}}),
			},
			back: 4000, replaced: 1000, each: 2, dups: []string{"api:a--prod"}, dupFor: 2000, after: 1},
		{name: "fenced within the grace: nothing after the return",
			rounds: []ListRound{
				round(1000, map[string][]string{"s2": {"api:a--prod"}, "s3": {"api:b--prod"}}),
				round(5000, map[string][]string{"s1": {"api:a--prod"}, "s2": {"api:a--prod"}, "s3": {"api:b--prod"}}),
			},
			back: 4000, replaced: 1000, each: 2, dups: []string{"api:a--prod"}, dupFor: 0, after: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Record{Fault: FaultKill, FaultAt: t0, Victims: []string{"s1"}, Displaced: displaced, Rounds: c.rounds,
				AllowVictim: c.allowVictim, ReturnGrace: 2 * time.Second, LoadStart: at(-1000), LoadEnd: at(8000)}
			if c.back >= 0 {
				r.BackAt, r.HealAt = at(c.back), at(c.back-500)
			}
			if c.listFrom > 0 {
				r.ListFrom = at(c.listFrom)
			}
			tr := Measure(r)
			if got := ms(tr.Replaced); got != c.replaced {
				t.Errorf("replaced at %v ms, want %v", got, c.replaced)
			}
			if len(tr.ReplacedEach) != c.each {
				t.Errorf("replaced each %v, want %d of them", tr.ReplacedEach, c.each)
			}
			var names []string
			var longest Millis
			for _, d := range tr.OnTwoServers {
				names = append(names, d.Name)
				longest = max(longest, d.For)
			}
			if !slices.Equal(names, c.dups) {
				t.Errorf("on two servers %v, want %v", names, c.dups)
			}
			if got := float64(longest.D()) / 1e6; got != c.dupFor {
				t.Errorf("on two servers for %v ms, want %v", got, c.dupFor)
			}
			if tr.OnTwoServersAfterReturn != c.after {
				t.Errorf("%d on two servers after the return, want %d", tr.OnTwoServersAfterReturn, c.after)
			}
		})
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	twenty := make([]float64, 20)
	for i := range twenty {
		twenty[i] = float64(i + 1)
	}
	cases := []struct {
		values []float64
		q      float64
		want   float64
	}{
		{nil, 0.5, 0}, {[]float64{7}, 0.99, 7}, {twenty, 0.5, 10}, {twenty, 0.99, 20}, {twenty, 0.9, 18}, {[]float64{1, 2}, 0.5, 1},
	}
	for _, c := range cases {
		if got := percentile(c.values, c.q); got != c.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", c.values, c.q, got, c.want)
		}
	}
}

func TestSummarizeLeavesOutMissingFiguresAndBrokenTrials(t *testing.T) {
	m := func(s float64) *Millis { v := Millis(s * float64(time.Second)); return &v }
	trials := []Trial{
		{Fault: FaultKill, Trial: 1, Detected: m(0.5), ServedAgain: m(1), Failed: 3, Displaced: 1, Replaced: m(0.9), Failures: map[string]int{"503": 3}},
		{Fault: FaultKill, Trial: 2, Detected: m(0.7), ServedAgain: nil, Failed: 9, Displaced: 1, Replaced: m(1.2), Failures: map[string]int{"503": 8, "timeout": 1}},
		{Fault: FaultKill, Trial: 3, Error: "did not converge"},
		{Fault: FaultPartition, Trial: 1, Moved: []string{"a:prod: s1 -> s2"}},
	}
	sums := Summarize(trials)
	if len(sums) != 2 || sums[0].Fault != FaultKill || sums[1].Fault != FaultPartition {
		t.Fatalf("summaries %+v", sums)
	}
	k := sums[0]
	if k.Trials != 2 || k.Errors != 1 || k.Failures["503"] != 11 || k.Failures["timeout"] != 1 {
		t.Errorf("kill summary %+v", k)
	}
	served, _ := k.Figure("served_again")
	if served.N != 1 || served.Max != 1 {
		t.Errorf("served again over the trials that have it: %+v", served)
	}
	det, _ := k.Figure("detected")
	if det.N != 2 || det.P50 != 0.5 || det.P99 != 0.7 || det.Max != 0.7 {
		t.Errorf("detected %+v", det)
	}
	if _, ok := sums[1].Figure("replaced"); ok {
		t.Error("a partition has no replaced figure: nothing is to move")
	}
	rep := &Report{Summaries: sums}
	checks := rep.Targets()
	var partition Check
	for _, c := range checks {
		if c.Target == "partition: nothing moves" {
			partition = c
		}
	}
	if partition.Met || partition.Target == "" {
		t.Errorf("a partition that moved an instance must miss its target: %+v", checks)
	}
	for _, c := range checks {
		if c.Target == "kill -9: every tenant served again in under 5s, p99" && c.Met {
			t.Errorf("a trial never served again must miss the target: %+v", c)
		}
	}
}

func TestParseFaults(t *testing.T) {
	got, err := ParseFaults("all")
	if err != nil || !slices.Equal(got, Faults) {
		t.Fatalf("all = %v, %v", got, err)
	}
	got, err = ParseFaults("kill, partition,kill")
	if err != nil || !slices.Equal(got, []Fault{FaultKill, FaultPartition}) {
		t.Fatalf("kill, partition,kill = %v, %v", got, err)
	}
	got, err = ParseFaults("leader-kill,kill")
	if err != nil || !slices.Equal(got, []Fault{FaultLeaderKill, FaultKill}) || !got[0].NeedsPostgres() || got[1].NeedsPostgres() {
		t.Fatalf("leader-kill,kill = %v, %v", got, err)
	}
	if slices.Contains(Faults, FaultLeaderKill) {
		t.Errorf("all includes leader-kill, which needs a Postgres database")
	}
	for _, bad := range []string{"", "kil", "kill,", "observed", "leader"} {
		if _, err := ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q) accepted", bad)
		}
	}
}

func TestMillisJSON(t *testing.T) {
	v := Millis(1234567 * time.Microsecond)
	b, err := json.Marshal(v)
	if err != nil || string(b) != "1234.6" {
		t.Fatalf("%s, %v", b, err)
	}
	var back Millis
	if err := json.Unmarshal(b, &back); err != nil || back.D() != 1234600*time.Microsecond {
		t.Fatalf("%v, %v", back.D(), err)
	}
}

// Failures of tenants the fault did not touch are the fleet's background
// noise, counted apart.
func TestMeasureCountsUnaffectedFailures(t *testing.T) {
	samples := append(steady("a", -1000, 3000, between(0, 500, "503")), steady("b", -1000, 3000, between(2000, 2100, "502"))...)
	tr := Measure(Record{Fault: FaultKill, FaultAt: t0, LoadStart: at(-1000), LoadEnd: at(3000), Samples: samples,
		Affected: map[string]bool{"a": true}})
	if tr.Failed != 12 || tr.UnaffectedFailed != 2 {
		t.Fatalf("failed %d, of them unaffected %d; want 12 and 2", tr.Failed, tr.UnaffectedFailed)
	}
}

// Each instance whose stale copy was stopped after the return counts once.
func TestMeasureCountsFencedInstancesOnce(t *testing.T) {
	tr := Measure(Record{Fault: FaultCut, FaultAt: t0, HealAt: at(3000), LoadStart: at(-1000), LoadEnd: at(6000), Marks: []Mark{
		{At: at(2000), Kind: MarkFenced, Subject: "t09:prod"}, // before the return: not the return's
		{At: at(3100), Kind: MarkFenced, Subject: "t01:prod"},
		{At: at(3100), Kind: MarkFenced, Subject: "t02:prod"},
		{At: at(5100), Kind: MarkFenced, Subject: "t01:prod"},
	}})
	if tr.Fenced != 2 {
		t.Fatalf("fenced %d, want 2", tr.Fenced)
	}
}

func TestTakeoverAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, c := range []struct {
		name   string
		leases []LeaseChange
		want   time.Time
	}{
		{"none seen", nil, time.Time{}},
		{"the first leader only", []LeaseChange{{Epoch: 1, Holder: "a", Seen: at(0)}}, time.Time{}},
		{"lapsed, nobody holds it yet", []LeaseChange{{Epoch: 1, Holder: "a", Seen: at(0)}, {Epoch: 1, Holder: "", Seen: at(1)}}, time.Time{}},
		{"released, then taken", []LeaseChange{{Epoch: 1, Holder: "a", Seen: at(0)}, {Epoch: 2, Holder: "", Seen: at(1)}, {Epoch: 2, Holder: "b", Seen: at(2)}}, at(2)},
		{"the first takeover counts", []LeaseChange{{Epoch: 1, Holder: "a", Seen: at(0)}, {Epoch: 2, Holder: "b", Seen: at(3)}, {Epoch: 3, Holder: "a", Seen: at(9)}}, at(3)},
	} {
		if got := takeoverAt(c.leases); !got.Equal(c.want) {
			t.Errorf("%s: takeoverAt = %v, want %v", c.name, got, c.want)
		}
	}
}
