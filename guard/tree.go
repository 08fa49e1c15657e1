package guard

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slum-fleet/slum/clock"
)

// The app is frozen and killed as a process tree: an app started through
// a shell or a process manager takes writes in a descendant, which a
// signal to the app's own pid alone would miss.

// descendants lists the processes below pid, read from /proc, each after
// its parent.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, pp, ok := procStat(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	for queue := children[pid]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, children[queue[0]]...)
	}
	return out
}

// procStat reads a process's state letter and parent pid from
// /proc/PID/stat, whose second field (the command) may hold spaces and
// parentheses: the fields after its last ')' are state, then the parent.
func procStat(pid int) (state string, parent int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return "", 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return f[0], pp, err == nil
}

// signalTree sends sig to the child and to every process below it. The
// descendants are found before the child is signalled (once it is killed
// they are reparented, no longer below it), and for SIGSTOP once more
// after: a stopped child forks nothing new, but may have just forked.
// It returns the descendants it signalled.
func (c *child) signalTree(sig syscall.Signal) []int {
	if c.exited() {
		return nil
	}
	below := descendants(c.cmd.Process.Pid)
	c.signal(sig)
	if sig == syscall.SIGSTOP {
		below = append(below, descendants(c.cmd.Process.Pid)...)
	}
	for _, p := range below {
		_ = syscall.Kill(p, sig)
	}
	return below
}

// waitGone waits, at most limit on clk, until none of pids runs (a
// zombie is gone: it runs no code).
func waitGone(clk clock.Clock, pids []int, limit time.Duration) {
	deadline := clk.Now().Add(limit)
	for _, p := range pids {
		for clk.Now().Before(deadline) {
			if st, _, _ := procStat(p); st == "" || st == "Z" || st == "X" {
				break
			}
			<-clk.After(5 * time.Millisecond)
		}
	}
}
