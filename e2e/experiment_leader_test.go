package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum/e2e/harness"
	"github.com/slum-fleet/slum/experiment"
	"github.com/slum-fleet/slum/internal/pgtest"
)

// leaderExpPort is the Postgres port of the leader-kill experiment's test.
const leaderExpPort = 25433

// TestExperimentLeaderFaults runs the leader faults as a user would, the
// built binary against real tenement servers and a real Postgres on
// loopback (its URL, password and all, in SLUM_DB_URL): a trial of two
// controllers with the leader killed with SIGKILL, and one of two
// controllers in network namespaces with the leader's link cut. The
// standby leads, no request through its router fails, nothing runs on two
// servers, nothing is left behind, and the password shows nowhere in the
// output or the logs. (One trial proves no percentile: the bound is a
// sanity check; the README's table is made by hand.)
func TestExperimentLeaderFaults(t *testing.T) {
	harness.RequireTen(t)
	harness.RequireNetns(t)
	pg := pgtest.ServeTCP(t, []string{"127.0.0.1"}, leaderExpPort, "127.0.0.1/32")
	out := filepath.Join(t.TempDir(), "exp")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, slumBin, "experiment", "--fault", "leader-kill,leader-cut", "--trials", "1", "--seed", "5", "--out", out, "-o", "json")
	cmd.Env = append(os.Environ(), "SLUM_DB=", "SLUM_DB_URL="+pg.URL("127.0.0.1"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("slum experiment: %v\n%s", err, stderr.String())
	}
	var rep experiment.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, stdout.String())
	}
	if len(rep.Trials) != 2 || rep.Interrupted || len(rep.LeftBehind) > 0 {
		t.Fatalf("%d trials, interrupted %v, left behind %v\n%s", len(rep.Trials), rep.Interrupted, rep.LeftBehind, stderr.String())
	}
	var wrong []string
	for _, tr := range rep.Trials {
		if tr.Error != "" {
			t.Fatalf("%s: %s\n%s", tr.Fault, tr.Error, stderr.String())
		}
		if tr.ControllerBack == nil || tr.ControllerBack.D() > 10*time.Second {
			wrong = append(wrong, fmt.Sprintf("%s: the standby led %v after the fault, want within 10s", tr.Fault, tr.ControllerBack))
		}
		if tr.Requests < 100 || tr.Failed != 0 {
			wrong = append(wrong, fmt.Sprintf("%s: %d of %d requests through the standby's router failed, want 0", tr.Fault, tr.Failed, tr.Requests))
		}
		if len(tr.OnTwoServers) > 0 || len(tr.LeftBehind) > 0 {
			wrong = append(wrong, fmt.Sprintf("%s: on two servers %v, left behind %v", tr.Fault, tr.OnTwoServers, tr.LeftBehind))
		}
		if tr.ControllerBack != nil {
			figure(t, "experiment "+string(tr.Fault)+": the standby leads (from the fault)", tr.ControllerBack.D())
		}
	}
	if len(wrong) > 0 {
		// The controllers' logs without the routers' request lines, then
		// what went wrong: last, where a truncated CI log still shows it.
		t.Logf("the experiment's progress:\n%s", stderr.String())
		for _, log := range []string{"leader-kill-1/slum-standby.log", "leader-cut-1/slum.log", "leader-cut-1/slum-standby.log"} {
			if b, err := os.ReadFile(filepath.Join(out, log)); err == nil {
				t.Logf("%s (tail, without request lines):\n%s", log, tail(withoutRequests(strings.ReplaceAll(string(b), pg.Password, "xxxxx")), 40))
			}
		}
		t.Error(strings.Join(wrong, "\n"))
	}
	// The password is nowhere: output, progress, logs, results.
	seen := stdout.String() + stderr.String()
	_ = filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && (strings.HasSuffix(p, ".log") || strings.HasSuffix(p, ".json")) {
			b, _ := os.ReadFile(p)
			seen += string(b)
		}
		return nil
	})
	if strings.Contains(seen, pg.Password) {
		t.Errorf("the database password shows in the experiment's output or logs")
	}
}

// withoutRequests is a log without its "msg=request" lines.
func withoutRequests(log string) string {
	var keep []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, " msg=request ") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}
