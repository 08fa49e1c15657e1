package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slum-fleet/slum/experiment"
)

func TestExperimentRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "none.db")
	out := filepath.Join(dir, "out")
	notOurs := t.TempDir()
	if err := os.WriteFile(filepath.Join(notOurs, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"experiment", "--fault", "kil", "--out", out}, exitUsage, `unknown fault "kil"`},
		{[]string{"experiment", "--trials", "0", "--out", out}, exitInvalid, "--trials"},
		{[]string{"experiment", "--servers", "1", "--out", out}, exitInvalid, "--servers"},
		{[]string{"experiment", "--rate", "0", "--out", out}, exitInvalid, "--rate"},
		{[]string{"experiment", "--dead-after", "0", "--out", out}, exitInvalid, "dead_after"},
		{[]string{"experiment", "-f", filepath.Join(dir, "missing.yaml"), "--out", out}, exitInvalid, "cannot be read"},
		{[]string{"experiment", "--observe", "--trials", "3", "--out", out}, exitUsage, "--trials does not go with --observe"},
		{[]string{"experiment", "--duration", "1m", "--out", out}, exitUsage, "go with --observe"},
		{[]string{"experiment", "--observe", "--router", "nowhere", "--out", out}, exitInvalid, "--router"},
		{[]string{"experiment", "--observe", "--out", out}, exitNotFound, "slum init"},
		{[]string{"experiment", "--backend", "simulator", "--out", notOurs}, exitConflict, "not an experiment's directory"},
		{[]string{"experiment", "--fault", "leader-kill", "--out", out}, exitUsage, "give --db postgres://"},
		{[]string{"experiment", "--fault", "kill,leader-kill", "--out", out}, exitUsage, "runs several controllers over Postgres"},
		{[]string{"experiment", "--data", "--fault", "partition", "--out", out}, exitUsage, `unknown fault "partition" with --data`},
		{[]string{"experiment", "--data", "--tenants", "3", "--out", out}, exitUsage, "--tenants does not go with --data"},
		{[]string{"experiment", "--data", "--backend", "simulator", "--out", out}, exitUsage, "--backend does not go with --data"},
		{[]string{"experiment", "--data", "--observe", "--out", out}, exitUsage, "--observe does not go with --data"},
		{[]string{"experiment", "--data", "--rate", "5", "--out", out}, exitUsage, "--rate does not go with --data"},
		{[]string{"experiment", "--db", "postgres://nobody@127.0.0.1:1/none", "--fault", "leader-cut", "--backend", "simulator", "--out", out}, exitUsage, "needs real tenement servers"},
	}
	for _, c := range cases {
		r := cli(t, db, "", c.args...)
		expect(t, r, c.code, "", c.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("refused runs made %s: %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(notOurs, "keep")); err != nil {
		t.Errorf("a refused run touched a directory not its own: %v", err)
	}
}

// A short experiment on the simulator, as anyone can run it: one trial of
// kill -9 and one of a controller killed mid-failover (a 'slum run' of its
// own, killed with SIGKILL). The figures must be there and sane.
func TestExperimentOnTheSimulator(t *testing.T) {
	out := filepath.Join(t.TempDir(), "exp")
	r := cli(t, filepath.Join(t.TempDir(), "unused.db"), "", "experiment", "--backend", "simulator", "--fault", "kill,controller-kill",
		"--trials", "1", "--servers", "3", "--tenants", "3", "--out", out, "-o", "json")
	expect(t, r, 0, `"backend": "simulator"`, "SIMULATED")
	var rep experiment.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Trials) != 2 {
		t.Fatalf("%d trials", len(rep.Trials))
	}
	for _, tr := range rep.Trials {
		if tr.Error != "" || len(tr.LeftBehind) > 0 {
			t.Fatalf("%s: error %q, left behind %v", tr.Fault, tr.Error, tr.LeftBehind)
		}
		if tr.Detected == nil || tr.Replaced == nil || tr.ServedAgain == nil || tr.Displaced == 0 || tr.Requests == 0 {
			t.Errorf("%s: detected %v, replaced %v, served again %v, %d displaced, %d requests", tr.Fault, tr.Detected, tr.Replaced, tr.ServedAgain, tr.Displaced, tr.Requests)
		}
		if tr.OnTwoServersAfterReturn != 0 {
			t.Errorf("%s: %+v on two servers after the return", tr.Fault, tr.OnTwoServers)
		}
	}
	ck := rep.Trials[1]
	if ck.ControllerKilled == nil || ck.ControllerBack == nil || ck.ControllerBack.D() < ck.ControllerKilled.D() {
		t.Errorf("controller-kill: killed at %v, another took over at %v", ck.ControllerKilled, ck.ControllerBack)
	}
	if _, err := os.Stat(filepath.Join(out, "results.json")); err != nil {
		t.Error(err)
	}
	if len(rep.Pictures) != 8 {
		t.Errorf("pictures %v", rep.Pictures)
	}
}

func TestTrialLineOfADataTrial(t *testing.T) {
	m := func(d time.Duration) *experiment.Millis { v := experiment.Millis(d); return &v }
	cases := []struct {
		data *experiment.DataTrial
		left []string
		want string
	}{
		{&experiment.DataTrial{ServedWithData: m(3500 * time.Millisecond), Lost: 4, LostSpan: experiment.Millis(250 * time.Millisecond), Acked: 160},
			nil, "served again with its data 3.50s, 4 acknowledged writes lost (0.25s of writes), 0 accepted by two copies (0 in the new history), 160 acknowledged"},
		{&experiment.DataTrial{AcceptedByTwo: 9, TwoWriters: 2, OldOnly: 7, NewGone: 1, Acked: 10},
			[]string{"x"}, "served again with its data never, 0 acknowledged writes lost (0.00s of writes), 9 accepted by two copies (2 in the new history), 7 on the old copy's disk only, 1 OF THE NEW COPY'S GONE, 1 left behind, 10 acknowledged"},
	}
	for _, c := range cases {
		if got := trialLine(&experiment.Trial{Fault: experiment.FaultCut, Data: c.data, LeftBehind: c.left}); got != c.want {
			t.Errorf("trialLine =\n %s\nwant\n %s", got, c.want)
		}
	}
}
