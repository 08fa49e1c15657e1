package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/slum-fleet/slum/e2e/harness"
	"github.com/slum-fleet/slum/experiment"
)

// TestExperiment runs a short experiment as a user would, the built binary
// against real tenement servers of its own: one kill -9 trial and one
// partition trial. It checks that the figures are produced and sane, not
// the targets (a single trial proves no percentile); the 20-trial table is
// made by hand (see README).
func TestExperiment(t *testing.T) {
	harness.RequireTen(t)
	harness.RequireNetns(t)
	out := filepath.Join(t.TempDir(), "exp")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, slumBin, "experiment", "--fault", "kill,partition", "--trials", "1", "--seed", "3", "--out", out, "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("slum experiment: %v\n%s", err, stderr.String())
	}
	figure(t, "experiment: kill and partition, one trial each, in all", time.Since(start))
	var rep experiment.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, stdout.String())
	}
	if rep.Backend != "tenement" || len(rep.Trials) != 2 || rep.Interrupted {
		t.Fatalf("backend %q, %d trials, interrupted %v\n%s", rep.Backend, len(rep.Trials), rep.Interrupted, stderr.String())
	}
	if len(rep.LeftBehind) > 0 {
		t.Errorf("the experiment left behind %v", rep.LeftBehind)
	}
	for _, tr := range rep.Trials {
		if tr.Error != "" {
			t.Fatalf("%s trial: %s", tr.Fault, tr.Error)
		}
		if tr.Requests < 100 {
			t.Errorf("%s trial sent %d requests", tr.Fault, tr.Requests)
		}
		if len(tr.LeftBehind) > 0 {
			t.Errorf("%s trial left behind %v", tr.Fault, tr.LeftBehind)
		}
		if tr.Detected == nil || tr.Detected.D() <= 0 || tr.Detected.D() > 10*time.Second {
			t.Errorf("%s: detected %v after the fault", tr.Fault, tr.Detected)
		}
		if tr.OnTwoServersAfterReturn != 0 {
			t.Errorf("%s: %d instances still on two servers after the return: %+v", tr.Fault, tr.OnTwoServersAfterReturn, tr.OnTwoServers)
		}
	}
	kill, part := rep.Trials[0], rep.Trials[1]
	if kill.Displaced == 0 || kill.Replaced == nil || kill.Replaced.D() < kill.Detected.D() || kill.Replaced.D() > 15*time.Second {
		t.Errorf("kill: %d displaced, running again %v after the fault (detected %v)", kill.Displaced, kill.Replaced, kill.Detected)
	}
	if kill.ServedAgain == nil || kill.ServedAgain.D() > 15*time.Second || kill.Failed == 0 || kill.Failed > kill.Requests {
		t.Errorf("kill: served again %v, %d of %d requests failed", kill.ServedAgain, kill.Failed, kill.Requests)
	}
	figure(t, "experiment kill: every tenant served again", kill.ServedAgain.D())
	if part.Held == nil {
		t.Errorf("partition: the controller never said it held the failover back: %+v", part.Marks)
	}
	// Nothing moves while the partition lasts. (What happens as the
	// servers return one by one is a figure: instances moved.)
	for _, m := range part.Marks {
		if m.Kind == experiment.MarkFailover && part.Healed != nil && m.At < *part.Healed {
			t.Errorf("partition: %s moved during the partition, %v after it began", m.Subject, m.At.D())
		}
	}
	t.Logf("experiment partition: %d instances moved as the servers returned: %v", len(part.Moved), part.Moved)
	for _, p := range rep.Pictures {
		if fi, err := os.Stat(p); err != nil || fi.Size() < 1000 {
			t.Errorf("picture %s: %v", p, err)
		}
	}
	if len(rep.Pictures) < 6 {
		t.Errorf("pictures %v", rep.Pictures)
	}
}
