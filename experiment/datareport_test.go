package experiment

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

// dataReport is a data experiment's report: whole-kill trials that meet
// the targets and cut trials one of which had a second writer.
func dataReport() *Report {
	m := func(s float64) *Millis { v := Millis(s * float64(time.Second)); return &v }
	var trials []Trial
	for i := 1; i <= 3; i++ {
		f := float64(i) / 10
		trials = append(trials, Trial{Fault: FaultWholeKill, Trial: i, Detected: m(0.5), LeftBehind: []string{},
			Data: &DataTrial{Acked: 500, ServedWithData: m(2 + f), LeaseWait: m(0.4), Restore: m(0.2), Lost: 10 * i, LostSpan: Millis(f * float64(time.Second))}})
		trials = append(trials, Trial{Fault: FaultCut, Trial: i, Detected: m(2.7), LeftBehind: []string{},
			Data: &DataTrial{Acked: 900, ServedWithData: m(4 + f), Lost: 3, LostSpan: Millis(300 * time.Millisecond), TwoWriters: i / 3, AcceptedByTwo: i / 3, OldOnly: 40, OldWroteFor: *m(1.2)}})
	}
	trials = append(trials, Trial{Fault: FaultCut, Trial: 4, Error: "no copy on another server acknowledged a write within 60s", Data: &DataTrial{}})
	rep := &Report{Backend: "tenement", Servers: 2, Tenants: 1, Settings: slum.DefaultSettings(), TrialsAsked: 3, Faults: []Fault{FaultWholeKill, FaultCut},
		Trials: trials, Data: true}
	rep.Summaries = Summarize(rep.Trials)
	return rep
}

func TestSummarizeDataTrials(t *testing.T) {
	rep := dataReport()
	if len(rep.Summaries) != 2 {
		t.Fatalf("%d summaries", len(rep.Summaries))
	}
	wk, cut := rep.Summaries[0], rep.Summaries[1]
	if _, ok := wk.Figure("served_again"); ok {
		t.Error("a data summary has the stateless figure served_again")
	}
	served, _ := wk.Figure("served_with_data")
	lost, _ := wk.Figure("lost")
	if served.N != 3 || served.Max != 2.3 || lost.P50 != 20 || lost.Max != 30 {
		t.Errorf("whole-kill: served %+v, lost %+v", served, lost)
	}
	two, _ := cut.Figure("two_writers")
	if cut.Trials != 3 || cut.Errors != 1 || two.Max != 1 || two.N != 3 {
		t.Errorf("cut: %d trials, %d errors, two writers %+v", cut.Trials, cut.Errors, two)
	}
	if wait, _ := cut.Figure("lease_wait"); wait.N != 0 {
		t.Errorf("cut: a lease wait never seen has %d values", wait.N)
	}
}

func TestDataTargets(t *testing.T) {
	got := map[string]bool{}
	for _, c := range dataReport().Targets() {
		got[c.Target] = c.Met
	}
	want := map[string]bool{
		"whole-kill: served again with its data in under 3s, p99":                                                 true,
		"whole-kill: at most 1s of acknowledged writes lost, p99":                                                 true,
		"whole-kill: 0 writes in the new history from two writers, 0 of the new copy's gone, nothing left behind": true,
		"whole-kill: 0 writes accepted by two copies":                                                             true,
		"cut: served again with its data in under the lease's lapse (2s) + 3s, p99":                               true,
		"cut: at most 1s of acknowledged writes lost, p99":                                                        true,
		"cut: 0 writes in the new history from two writers, 0 of the new copy's gone, nothing left behind":        false,
		"cut: 0 writes accepted by two copies":                                                                    false,
	}
	for target, met := range want {
		if m, ok := got[target]; !ok || m != met {
			t.Errorf("target %q: met %v (checked: %v), want met %v", target, m, ok, met)
		}
	}
	if len(got) != len(want) {
		t.Errorf("targets %v, want %d", got, len(want))
	}
}

func TestWriteDataTable(t *testing.T) {
	var b bytes.Buffer
	if err := dataReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"slum experiment --data", "real Litestream", "whole-kill: the whole server dies", "served again with its data",
		"writes accepted by two copies", "two writers (must be 0)", "issue 17", "MISSED cut: 0 writes accepted by two copies", "could not run to its end"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "requests/s per tenant") {
		t.Errorf("a data table speaks of request load:\n%s", out)
	}
}

func TestWriteDataPictures(t *testing.T) {
	files, err := WritePictures(dataReport(), t.TempDir())
	if err != nil || len(files) != 8 {
		t.Fatalf("WritePictures = %v, %v; want 8 files", files, err)
	}
}

func TestParseDataFaults(t *testing.T) {
	all, err := ParseDataFaults("all")
	if err != nil || len(all) != 5 || all[0] != FaultWholeKill {
		t.Errorf("all = %v, %v", all, err)
	}
	if got, err := ParseDataFaults("cut, whole-kill,cut"); err != nil || len(got) != 2 || got[1] != FaultWholeKill {
		t.Errorf("cut, whole-kill,cut = %v, %v", got, err)
	}
	for _, bad := range []string{"partition", "restart", "leader-kill", ""} {
		if _, err := ParseDataFaults(bad); err == nil || !strings.Contains(err.Error(), "with --data") {
			t.Errorf("ParseDataFaults(%q) = %v, want an error naming --data", bad, err)
		}
	}
	if got, err := ParseFaults("whole-kill"); err != nil || got[0] != FaultWholeKill {
		t.Errorf("whole-kill without --data = %v, %v", got, err)
	}
	if got, _ := ParseFaults("all"); len(got) != len(Faults) {
		t.Errorf("all = %v: whole-kill is asked for by name", got)
	}
}
