package guard

import (
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// An app that takes its writes in a grandchild (a shell running the real
// server) is frozen, resumed and killed as a whole tree.
func TestSignalTreeReachesGrandchildren(t *testing.T) {
	sp := newSpawner(nil)
	c, err := sp.start("app", exec.Command("sh", "-c", "sleep 30 & sleep 30 & wait"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.signalTree(syscall.SIGKILL)
	var below []int
	if ok, _ := waitFor(5*time.Second, func() bool { below = descendants(c.cmd.Process.Pid); return len(below) == 2 }); !ok {
		t.Fatalf("descendants of the shell: %v, want its two sleeps", below)
	}
	all := append([]int{c.cmd.Process.Pid}, below...)
	states := func() []string {
		var out []string
		for _, p := range all {
			out = append(out, processState(p))
		}
		return out
	}
	for _, step := range []struct {
		sig  syscall.Signal
		want string
	}{{syscall.SIGSTOP, "T"}, {syscall.SIGCONT, "S"}} {
		c.signalTree(step.sig)
		if ok, _ := waitFor(2*time.Second, func() bool {
			return !slices.ContainsFunc(states(), func(s string) bool { return s != step.want })
		}); !ok {
			t.Fatalf("after %v the tree's states are %v, want all %q", step.sig, states(), step.want)
		}
	}
	c.signalTree(syscall.SIGSTOP)
	c.signalTree(syscall.SIGKILL) // a frozen tree dies too
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the frozen app did not die of SIGKILL")
	}
	if ok, _ := waitFor(2*time.Second, func() bool {
		return processState(below[0]) == "" || processState(below[0]) == "Z"
	}); !ok {
		t.Fatalf("a grandchild outlived the kill: state %q", processState(below[0]))
	}
}
