package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startUnreaped starts 'slum run' without anyone waiting for it: killed,
// it stays a zombie until reap is called.
func (e *env) startUnreaped(t *testing.T, extra ...string) (cmd *exec.Cmd, reap func()) {
	t.Helper()
	e.runs++
	logf, err := os.Create(filepath.Join(e.dir, fmt.Sprintf("run-%d.log", e.runs)))
	if err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(slumBin, append([]string{"--db", e.db, "run", "--metrics-addr", "", "--log-level", "debug", "--backoff-max", "2s"}, extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := false
	reap = func() {
		if !reaped {
			reaped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			logf.Close()
		}
	}
	t.Cleanup(reap)
	return cmd, reap
}

func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "gone"
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return "?"
}

// kill -9 of 'slum run' in the middle of a failover, and a new one started
// at once while the old is a zombie (not reaped): the new one leads within
// a second, finishes the failover, and no instance runs on two servers.
func TestKilledControllerRestartedAtOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.slum("apply", "-f", e.fleetFile("fleet.yaml", failoverTenants))
	old, reapOld := e.startUnreaped(t)
	e.converge(map[string][]string{"s1": {"api:alice--prod", "api:bob--prod", "api:carol--prod"},
		"s2": {"api:alice--backup"}, "s3": {"api:dave--prod"}}, 60*time.Second)
	st := e.store()

	// s1 dies; the moment its failover is committed, the controller is
	// killed.
	s1 := e.member("s1")
	s1.Ten.Kill()
	defer func() { _ = s1.Ten.Launch(context.Background()) }()
	eventually(t, 15*time.Second, "bob's failover committed", func() bool {
		in, err := st.GetInstance(ctx, "bob:prod")
		return err == nil && in.ServerID != "s1"
	})
	if err := old.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the killed controller a zombie", func() bool { return procState(old.Process.Pid) == "Z" })
	started := time.Now()
	fresh, _ := e.startUnreaped(t)
	want := strconv.Itoa(fresh.Process.Pid)
	eventually(t, 10*time.Second, "the new controller leads", func() bool {
		parts := strings.Split(controllerLease(st).Holder, "/")
		return len(parts) == 3 && parts[1] == want
	})
	took := time.Since(started)
	figure(t, "kill -9 of slum run, zombie, restart: the new one leads (from its start)", took)
	if took > time.Second {
		t.Errorf("the new controller led %v after it started, want within 1s", took)
	}
	if s := procState(old.Process.Pid); s != "Z" {
		t.Fatalf("the old controller was reaped meanwhile (state %s): the test proves nothing", s)
	}
	// The failover it took over finishes.
	took = eventually(t, 20*time.Second, "the failover finished", func() bool {
		s2, _ := e.running("s2")
		s3, _ := e.running("s3")
		return slices.Contains(s3, "api:alice--prod") && (slices.Contains(s2, "api:bob--prod") || slices.Contains(s3, "api:bob--prod"))
	})
	figure(t, "kill -9 of slum run mid-failover: the failover finished (after the new one led)", took)
	reapOld()
	// s1 returns: its stale copies are stopped; nothing runs twice.
	if err := s1.Ten.Launch(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "one copy of each instance", func() bool {
		copies := map[string]int{}
		for _, id := range []string{"s1", "s2", "s3"} {
			names, err := e.running(id)
			if err != nil {
				return false
			}
			for _, n := range names {
				copies[n]++
			}
		}
		for _, n := range copies {
			if n > 1 {
				return false
			}
		}
		return copies["api:bob--prod"] == 1 && copies["api:alice--prod"] == 1
	})
	time.Sleep(3 * time.Second)
	for _, id := range []string{"s1", "s2", "s3"} {
		names, _ := e.running(id)
		for _, other := range []string{"s1", "s2", "s3"} {
			if other == id {
				continue
			}
			theirs, _ := e.running(other)
			for _, n := range names {
				if slices.Contains(theirs, n) {
					t.Errorf("%s runs on %s and %s", n, id, other)
				}
			}
		}
	}
}
