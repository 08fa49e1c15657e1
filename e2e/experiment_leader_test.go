package e2e

import (
	"bytes"
	"context"
	"encoding/json"
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

// TestExperimentLeaderKill runs the leader-kill fault as a user would, the
// built binary against real tenement servers and a real Postgres (its URL,
// password and all, in SLUM_DB_URL): two trials of two controllers, the
// leader killed with SIGKILL. The standby leads, no request through its
// router fails, nothing runs on two servers, and the password shows
// nowhere in the output or the logs.
func TestExperimentLeaderKill(t *testing.T) {
	harness.RequireTen(t)
	harness.RequireNetns(t)
	pg := pgtest.ServeTCP(t, []string{"127.0.0.1"}, leaderExpPort, "127.0.0.1/32")
	out := filepath.Join(t.TempDir(), "exp")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, slumBin, "experiment", "--fault", "leader-kill", "--trials", "2", "--seed", "5", "--out", out, "-o", "json")
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
	for _, tr := range rep.Trials {
		if tr.Error != "" {
			t.Fatalf("trial %d: %s\n%s", tr.Trial, tr.Error, stderr.String())
		}
		if tr.ControllerBack == nil || tr.ControllerBack.D() > 5*time.Second {
			t.Errorf("trial %d: the standby led %v after the leader's kill, want within 5s", tr.Trial, tr.ControllerBack)
		}
		if tr.Requests < 100 || tr.Failed != 0 {
			t.Errorf("trial %d: %d of %d requests through the standby's router failed, want 0", tr.Trial, tr.Failed, tr.Requests)
		}
		if len(tr.OnTwoServers) > 0 || len(tr.LeftBehind) > 0 {
			t.Errorf("trial %d: on two servers %v, left behind %v", tr.Trial, tr.OnTwoServers, tr.LeftBehind)
		}
		if tr.ControllerBack != nil {
			figure(t, "experiment leader-kill: the standby leads (from the kill)", tr.ControllerBack.D())
		}
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
